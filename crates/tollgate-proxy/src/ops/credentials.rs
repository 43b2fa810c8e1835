//! Named provider credentials (`/credentials`): encrypted at rest, referred to by models with
//! `litellm_params.litellm_credential_name`, so rotating one key updates every model using it.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tollgate_store::{CredentialRecord, ModelRecord};

use super::input::{MAX_FIELD_CHARS, bad, store_error};
use super::{Actor, Subject, audit};
use crate::error::ApiError;
use crate::models::seal::{REDACTED, redacted};
use crate::models::{
    CREDENTIAL_NAME_PARAM, CREDENTIAL_PROVIDER, CredentialContent, open_credential,
};
use crate::state::AppState;

/// `POST /credentials`.
#[derive(Debug, Deserialize)]
pub struct NewCredentialBody {
    /// The name models refer to.
    pub credential_name: String,
    /// `api_key`, `api_base`, ...
    pub credential_values: Map<String, Value>,
    /// A description; never secret.
    #[serde(default)]
    pub credential_info: Option<Map<String, Value>>,
}

/// `PATCH /credentials/{name}`: values given replace the stored ones (`null` removes one,
/// `"<redacted>"` keeps it); info given replaces the stored info.
#[derive(Debug, Default, Deserialize)]
pub struct CredentialChange {
    /// Values to change.
    #[serde(default)]
    pub credential_values: Option<Map<String, Value>>,
    /// New info.
    #[serde(default)]
    pub credential_info: Option<Map<String, Value>>,
}

fn not_found(name: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("No credential is named `{name}`."))
        .with_code("not_found")
}

fn subject(name: &str) -> Subject<'_> {
    Subject { object_type: "credential", object_id: name }
}

/// A credential as answers show it: values redacted (all but `api_base`-like settings).
fn shown(name: &str, c: &CredentialContent) -> Value {
    json!({
        "credential_name": name,
        "credential_values": redacted(&c.credential_values),
        "credential_info": c.credential_info,
    })
}

fn check_name(name: &str) -> Result<&str, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_FIELD_CHARS || name.contains('/') {
        return Err(bad("credential_name", "must be 1 to 256 characters, without `/`"));
    }
    Ok(name)
}

fn check_values(values: &Map<String, Value>) -> Result<(), ApiError> {
    for (k, v) in values {
        if v.as_str() == Some(REDACTED) {
            return Err(bad(&format!("credential_values.{k}"), "is `<redacted>`: give the value"));
        }
        if crate::models::seal::is_secret_param(k) && !v.is_string() {
            return Err(bad(&format!("credential_values.{k}"), "must be a string"));
        }
        if k == "api_base"
            && let Some(url) = v.as_str()
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(bad("credential_values.api_base", "must be an http:// or https:// URL"));
        }
        if !(v.is_string() || v.is_number() || v.is_boolean()) {
            return Err(bad(
                &format!("credential_values.{k}"),
                "must be a string, number or boolean",
            ));
        }
    }
    Ok(())
}

async fn read(state: &AppState, name: &str) -> Result<Option<CredentialContent>, ApiError> {
    let record =
        state.store().get_credential(CREDENTIAL_PROVIDER, name).await.map_err(store_error)?;
    record.map(|r| open_credential(state.secret_box(), &r).map_err(store_error)).transpose()
}

async fn write(
    state: &AppState,
    name: &str,
    c: &CredentialContent,
) -> Result<CredentialRecord, ApiError> {
    let text = serde_json::to_string(c).unwrap_or_default();
    let sealed = state
        .secret_box()
        .seal_credential(CREDENTIAL_PROVIDER, name, None, &text)
        .map_err(store_error)?;
    let record = state.store().put_credential(sealed).await.map_err(store_error)?;
    // Models naming it are rebuilt with the new values from the next request on.
    if let Err(e) = state.models().rebuild(state.store(), state.secret_box()).await {
        tracing::warn!(error = %e, "model table not rebuilt now; the change feed will retry");
    }
    Ok(record)
}

/// Stores a new credential; 409 if the name is taken.
pub async fn create(
    state: &AppState,
    actor: &Actor,
    body: NewCredentialBody,
) -> Result<Value, ApiError> {
    let name = check_name(&body.credential_name)?.to_owned();
    check_values(&body.credential_values)?;
    if read(state, &name).await?.is_some() {
        return Err(ApiError::new(StatusCode::CONFLICT, format!("Credential `{name}` exists."))
            .with_code("conflict"));
    }
    let content = CredentialContent {
        credential_values: body.credential_values,
        credential_info: body.credential_info.unwrap_or_default(),
    };
    write(state, &name, &content).await?;
    let answer = shown(&name, &content);
    audit(state, actor, "create", subject(&name), None, Some(&answer)).await;
    Ok(answer)
}

/// One credential as listings show it.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The name models refer to.
    pub name: String,
    /// Its values with every secret `"<redacted>"`; `None` when it cannot be opened (the
    /// secret key changed), with why in `error`.
    pub values: Option<Map<String, Value>>,
    /// Its description (`custom_llm_provider`, `description`, ...).
    pub info: Map<String, Value>,
    /// Why it cannot be opened.
    pub error: Option<String>,
    /// First stored.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// The stored models naming it, as `(id, model name)`.
    pub used_by: Vec<(String, String)>,
}

impl Listed {
    fn json(&self) -> Value {
        let mut v = match (&self.values, &self.error) {
            (Some(values), _) => json!({
                "credential_name": self.name,
                "credential_values": values,
                "credential_info": self.info,
            }),
            (None, error) => json!({ "credential_name": self.name, "error": error }),
        };
        v["created_at"] = json!(self.created_at);
        v["updated_at"] = json!(self.updated_at);
        v
    }
}

/// The stored models among `models` that name credential `name`.
fn users_of<'a>(
    models: &'a [ModelRecord],
    name: &'a str,
) -> impl Iterator<Item = &'a ModelRecord> + 'a {
    models.iter().filter(move |m| {
        m.litellm_params.get(CREDENTIAL_NAME_PARAM).and_then(Value::as_str) == Some(name)
    })
}

/// Every credential by name, values redacted, with the stored models (as this process
/// serves them) that use it.
pub async fn listing(state: &AppState) -> Result<Vec<Listed>, ApiError> {
    let records = state.store().list_credentials(CREDENTIAL_PROVIDER).await.map_err(store_error)?;
    let models = state.models().stored();
    Ok(records
        .iter()
        .map(|r| {
            let opened = open_credential(state.secret_box(), r);
            let used_by = users_of(&models, &r.owner)
                .map(|m| (m.model_id.clone(), m.model_name.clone()))
                .collect();
            let (values, info, error) = match opened {
                Ok(c) => (Some(redacted(&c.credential_values)), c.credential_info, None),
                Err(e) => (None, Map::new(), Some(e.to_string())),
            };
            Listed {
                name: r.owner.clone(),
                values,
                info,
                error,
                created_at: r.created_at,
                updated_at: r.updated_at,
                used_by,
            }
        })
        .collect())
}

/// Every credential, values redacted, with when it was stored and last changed.
pub async fn list(state: &AppState) -> Result<Value, ApiError> {
    let out: Vec<Value> = listing(state).await?.iter().map(Listed::json).collect();
    Ok(json!({ "credentials": out }))
}

/// One credential, values redacted.
pub async fn get(state: &AppState, name: &str) -> Result<Value, ApiError> {
    let c = read(state, name).await?.ok_or_else(|| not_found(name))?;
    Ok(shown(name, &c))
}

/// Changes a credential: every model naming it uses the new values from the next request on.
pub async fn update(
    state: &AppState,
    actor: &Actor,
    name: &str,
    change: CredentialChange,
) -> Result<Value, ApiError> {
    let old = read(state, name).await?.ok_or_else(|| not_found(name))?;
    let mut new = old.clone();
    if let Some(values) = change.credential_values {
        for (k, v) in values {
            match v {
                Value::Null => {
                    new.credential_values.remove(&k);
                }
                Value::String(s) if s == REDACTED => {}
                v => {
                    new.credential_values.insert(k, v);
                }
            }
        }
        check_values(&new.credential_values)?;
    }
    if let Some(info) = change.credential_info {
        new.credential_info = info;
    }
    write(state, name, &new).await?;
    let answer = shown(name, &new);
    // A rotated secret shows as a change although both sides read "<redacted>".
    let mut before = shown(name, &old);
    for (k, v) in &new.credential_values {
        if old.credential_values.get(k) != Some(v)
            && before["credential_values"][k] == answer["credential_values"][k]
        {
            before["credential_values"][k] = json!("<redacted: previous>");
        }
    }
    audit(state, actor, "update", subject(name), Some(&before), Some(&answer)).await;
    Ok(answer)
}

/// Deletes a credential no stored model refers to.
pub async fn delete(state: &AppState, actor: &Actor, name: &str) -> Result<Value, ApiError> {
    let old = read(state, name).await?.ok_or_else(|| not_found(name))?;
    let models = state.store().list_models().await.map_err(store_error)?;
    let users: Vec<&str> = users_of(&models, name).map(|m| m.model_id.as_str()).collect();
    if !users.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "Credential `{name}` is used by stored models {}; change them first.",
                users.join(", ")
            ),
        )
        .with_code("credential_in_use"));
    }
    state.store().delete_credential(CREDENTIAL_PROVIDER, name).await.map_err(store_error)?;
    audit(state, actor, "delete", subject(name), Some(&shown(name, &old)), None).await;
    Ok(json!({ "message": format!("Credential {name} deleted.") }))
}
