//! The management API, on LiteLLM's paths and field names: keys, users, teams, models, MCP
//! servers, spend.
//! Callers need the master key or a key with admin rights; every change is applied to the
//! store and to this process's directory at once (other processes follow the change feed).

mod audit;
mod config;
mod credentials;
mod keys;
mod mcp_servers;
mod models;
mod spend;
mod teams;
mod users;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::{get, patch as patch_route, post};
use serde::{Deserialize, Deserializer};
use tollgate_store::Page;

use tollgate_guard::{JsonBodiesOnly, SameOriginOnly};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::Caller;
use crate::guard;
use crate::state::AppState;

pub use crate::ops::input::{
    LimitsBody, MAX_FIELD_CHARS, MAX_FREE_FORM_BYTES, MAX_LIST_ENTRIES, bad, check_limit_changes,
    check_limits, store_error,
};

/// Routes of the management API. In every mode they take JSON bodies only and no cross-site
/// browser requests: a browser can then reach them only from tollgate's own pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/key/generate", post(keys::generate))
        .route("/key/update", post(keys::update))
        .route("/key/delete", post(keys::delete))
        .route("/key/info", get(keys::info))
        .route("/key/list", get(keys::list))
        .route("/key/block", post(keys::block))
        .route("/key/unblock", post(keys::unblock))
        .route("/key/regenerate", post(keys::regenerate))
        .route("/key/{key}/regenerate", post(keys::regenerate_path))
        .route("/user/new", post(users::new))
        .route("/user/info", get(users::info))
        .route("/user/update", post(users::update))
        .route("/user/delete", post(users::delete))
        .route("/user/list", get(users::list))
        .route("/team/new", post(teams::new))
        .route("/team/info", get(teams::info))
        .route("/team/update", post(teams::update))
        .route("/team/delete", post(teams::delete))
        .route("/team/list", get(teams::list))
        .route("/team/member_add", post(teams::member_add))
        .route("/team/member_delete", post(teams::member_delete))
        .route("/team/block", post(teams::block))
        .route("/team/unblock", post(teams::unblock))
        .route("/model/new", post(models::new))
        .route("/model/update", post(models::update))
        .route("/model/{id}/update", patch_route(models::patch))
        .route("/model/delete", post(models::delete))
        .route("/model/info", get(models::info))
        .route("/v1/model/info", get(models::info))
        .route("/model_group/info", get(models::group_info))
        .route("/health/test_connection", post(models::test_connection))
        .route("/credentials", post(credentials::create).get(credentials::list))
        .route(
            "/credentials/{name}",
            patch_route(credentials::update).delete(credentials::delete).get(credentials::get),
        )
        .route("/credentials/by_name/{name}", get(credentials::get))
        .route(
            "/v1/mcp/server",
            post(mcp_servers::create).put(mcp_servers::update).get(mcp_servers::list),
        )
        .route("/v1/mcp/server/{name}", get(mcp_servers::get).delete(mcp_servers::delete))
        .route("/v1/mcp/server/{name}/tools", get(mcp_servers::tools))
        .route("/audit/logs", get(audit::logs))
        .route("/config/reload", post(config::reload))
        .route("/spend/logs", get(spend::logs))
        .route("/spend/daily", get(spend::daily))
        .route_layer(guard::layer(JsonBodiesOnly))
        .route_layer(guard::layer(SameOriginOnly))
}

/// Extractor: a caller allowed to manage the gateway.
#[derive(Debug)]
pub struct Admin(pub Principal);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Caller(principal) = Caller::from_request_parts(parts, state).await?;
        if principal.is_admin(state.directory()) {
            Ok(Admin(principal))
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "This call needs the master key or a key with admin rights.",
            )
            .with_code("not_admin"))
        }
    }
}

/// `?page=&page_size=` of the list calls: page from 1, 100 per page, at most 1000.
#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery {
    #[serde(default)]
    page: Option<u32>,
    #[serde(default)]
    page_size: Option<u32>,
}

impl PageQuery {
    pub(crate) fn page(&self) -> Page {
        Page {
            page: self.page.unwrap_or(1).max(1),
            size: self.page_size.unwrap_or(100).clamp(1, 1000),
            ..Page::default()
        }
    }
}

/// A body field that can be absent (leave as is), `null` (clear) or a value.
pub(crate) fn patch<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Top-level fields whose content is bounded as a whole, not string by string: free-form
/// maps, and model parameters (a credential can be a long token).
const FREE_FORM: &[&str] = &[
    "metadata",
    "permissions",
    "litellm_params",
    "model_info",
    "credential_values",
    "credential_info",
];

/// Bounds what a management body may store: every entity is held in memory by every
/// process and reloaded at each reconcile, so a 20 MB alias would cost that everywhere.
fn check_sizes(value: &serde_json::Value, path: &mut String) -> Result<(), ApiError> {
    use serde_json::Value;
    let too_long = |path: &str, what: String| {
        Err(ApiError::new(StatusCode::BAD_REQUEST, format!("`{path}` is too long: {what}."))
            .with_code("value_too_long")
            .with_param(path.to_owned()))
    };
    match value {
        Value::String(s) if s.chars().count() > MAX_FIELD_CHARS => {
            too_long(path, format!("at most {MAX_FIELD_CHARS} characters"))
        }
        Value::Array(items) if items.len() > MAX_LIST_ENTRIES => {
            too_long(path, format!("at most {MAX_LIST_ENTRIES} entries"))
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                check_sizes(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Object(map) => {
            for (k, v) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                if FREE_FORM.contains(&path.as_str()) {
                    if v.to_string().len() > MAX_FREE_FORM_BYTES {
                        return too_long(
                            path,
                            format!("at most {MAX_FREE_FORM_BYTES} bytes of JSON"),
                        );
                    }
                } else {
                    check_sizes(v, path)?;
                }
                path.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Parses a JSON body into `T`, answering 400 with the offending field.
pub(crate) fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value = tollgate_protocol::openai::parse_object(bytes)?;
    check_sizes(&value, &mut String::new())?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let detail = e.into_inner().to_string();
        if path == "." {
            ApiError::new(StatusCode::BAD_REQUEST, format!("Invalid request body: {detail}."))
                .with_code("invalid_request")
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, format!("Invalid value for '{path}': {detail}."))
                .with_code("invalid_type")
                .with_param(path)
        }
    })
}
