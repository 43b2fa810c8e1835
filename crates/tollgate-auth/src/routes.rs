//! The HTTP layer: `/github`, `/github/relink`, `/github/status`. Handlers extract, call
//! one function, and map the result to a page.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::access::{Caller, Denied, Presented, session_cookie, session_from_cookies};
use crate::flows::{Flow, FlowState, start_failure};
use crate::pages::{self, FlowPage, LinkedPage};
use crate::state::{AuthState, Begin, BeginError};

pub(crate) fn routes() -> Router<AuthState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/github") }))
        .route("/github", get(github_page))
        .route("/github/relink", post(relink))
        .route("/github/status", get(status))
}

/// The client's address, when the server was started with connect info.
struct Peer(Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())))
    }
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    key: Option<String>,
}

/// `GET /github`: the caller's pending flow, their linked account, or a new flow.
async fn github_page(
    State(state): State<AuthState>,
    Query(query): Query<PageQuery>,
    Peer(peer): Peer,
    headers: HeaderMap,
) -> Response {
    let caller = match authorize(&state, query.key.as_deref(), &headers, peer).await {
        Ok(caller) => caller,
        Err(denied) => return denied_page(&denied),
    };
    let cookie = caller.new_session.as_deref().map(|id| session_cookie(id, is_https(&headers)));
    match state.begin(&caller, false).await {
        Ok(Begin::Flow(flow)) => flow_page(&flow, cookie.as_deref()),
        Ok(Begin::Linked(record)) => {
            let nonce = pages::nonce();
            let page = LinkedPage {
                nonce: nonce.clone(),
                title: "GitHub Copilot linked",
                owner_label: &caller.owner_label,
                login: record.label.as_deref(),
                linked_at: record.updated_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            };
            pages::html(StatusCode::OK, &nonce, &page, cookie.as_deref())
        }
        Err(e) => begin_error(&e),
    }
}

/// `POST /github/relink`: starts a new flow even though an account is linked, then shows it.
/// The router refuses the form from any page but the helper's own.
async fn relink(State(state): State<AuthState>, Peer(peer): Peer, headers: HeaderMap) -> Response {
    let caller = match authorize(&state, None, &headers, peer).await {
        Ok(caller) => caller,
        Err(denied) => return denied_page(&denied),
    };
    match state.begin(&caller, true).await {
        // The page finds the pending flow; a reload of it does not resend the form.
        Ok(_) => Redirect::to("/github").into_response(),
        Err(e) => begin_error(&e),
    }
}

#[derive(Debug, Deserialize)]
struct StatusQuery {
    flow: Option<String>,
}

/// What `/github/status` answers.
#[derive(Debug, Serialize)]
struct StatusBody<'a> {
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verification_uri: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    login: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

/// `GET /github/status?flow=<id>`: a flow's state as JSON; the id is the capability.
async fn status(State(state): State<AuthState>, Query(query): Query<StatusQuery>) -> Response {
    let Some(flow) = query.flow.as_deref().and_then(|id| state.flows().get(id)) else {
        let body = StatusBody {
            state: "error",
            user_code: None,
            verification_uri: None,
            login: None,
            message: Some("This linking attempt is unknown or long finished. Start again.".into()),
        };
        return no_store((StatusCode::NOT_FOUND, Json(body)).into_response());
    };
    let (name, login, message) = match flow.state() {
        FlowState::Pending => ("pending", None, None),
        FlowState::Linked { login } => ("linked", login, None),
        FlowState::Expired => ("expired", None, Some("The code expired. Start again.".to_owned())),
        FlowState::Denied => ("denied", None, Some("Access was denied on GitHub.".to_owned())),
        FlowState::Failed { message } => ("error", None, Some(message)),
    };
    let body = StatusBody {
        state: name,
        user_code: Some(&flow.user_code),
        verification_uri: Some(&flow.verification_uri),
        login,
        message,
    };
    no_store(Json(body).into_response())
}

fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn authorize(
    state: &AuthState,
    query_key: Option<&str>,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
) -> Result<Caller, Denied> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    let session = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(session_from_cookies);
    let presented = Presented { query_key, bearer, session, peer };
    state.access().authorize(&presented).await
}

fn flow_page(flow: &Flow, cookie: Option<&str>) -> Response {
    let nonce = pages::nonce();
    let page = FlowPage {
        nonce: nonce.clone(),
        title: "Link GitHub Copilot",
        owner_label: &flow.owner_label,
        user_code: &flow.user_code,
        verification_uri: &flow.verification_uri,
        status_url: format!("/github/status?flow={}", flow.id),
    };
    pages::html(StatusCode::OK, &nonce, &page, cookie)
}

fn denied_page(denied: &Denied) -> Response {
    const HOW: &str = "Open /github?key=<master key> to link the shared account, or \
                       /github?key=<your virtual key> to link your own GitHub account to your key.";
    match denied {
        Denied::NeedsCredential => pages::error(
            StatusCode::UNAUTHORIZED,
            "Sign-in needed",
            "Linking the shared Copilot account needs the admin's master key.",
            Some(HOW),
        ),
        Denied::InvalidKey => pages::error(
            StatusCode::UNAUTHORIZED,
            "Key not accepted",
            "That key is neither the master key nor a virtual key of this gateway.",
            Some(HOW),
        ),
        Denied::KeyRefused(why) => pages::error(
            StatusCode::FORBIDDEN,
            "Key not usable",
            why,
            Some("Ask the gateway's admin about this key."),
        ),
        Denied::NotLocal => pages::error(
            StatusCode::FORBIDDEN,
            "Only from this machine",
            "This gateway has no master key, so accounts can only be linked from the machine \
             it runs on.",
            Some(
                "Open http://localhost:4001/github there, or set TOLLGATE_MASTER_KEY and open \
                 /github?key=<master key>.",
            ),
        ),
        Denied::Unavailable => pages::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again shortly",
            "The database is not available right now.",
            None,
        ),
    }
}

fn begin_error(e: &BeginError) -> Response {
    match e {
        BeginError::Store => pages::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again shortly",
            "The database is not available right now.",
            None,
        ),
        BeginError::Github(e) => {
            tracing::warn!(error = %e, "cannot start GitHub's device flow");
            pages::error(
                StatusCode::BAD_GATEWAY,
                "Cannot reach GitHub",
                &start_failure(e),
                Some("Reload the page to try again."),
            )
        }
    }
}

/// Whether the request is secure from the browser's side (directly or behind a proxy).
fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}
