//! GitHub's endpoints under the API URL: the token exchange (`/copilot_internal/v2/token`),
//! the account's plan and quota (`/copilot_internal/user`), and the signed-in user (`/user`).

use std::{
    sync::{Arc, MutexGuard},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    Json,
    extract::State as Extract,
    http::{HeaderMap, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::state::{Inner, Issued, MockQuota, State, hex};
use crate::openai_mock::RecordedRequest;

/// `GET /copilot_internal/v2/token`: a fresh Copilot token for a known account with a seat;
/// 401 for unknown or revoked OAuth tokens, 403 for accounts without a seat.
pub(super) async fn token(
    Extract(state): Extract<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let oauth = oauth_token(&headers);
    let delay = {
        let mut inner = state.lock();
        inner.github_requests.push(record(&method, &uri, &headers));
        inner.exchanges += 1;
        if let Some(account) = oauth.as_deref().and_then(|t| inner.accounts.get_mut(t)) {
            account.exchanges += 1;
        }
        inner.exchange_delay
    };
    // Outside the lock: a slow exchange must not hold up the rest of the stand-in.
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    let mut inner = state.lock();
    if let Some(status) = inner.exchange_errors.pop_front() {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({"message": format!("stand-in exchange error {}", status.as_u16())});
        return (status, Json(body)).into_response();
    }
    let account = oauth.as_deref().and_then(|t| inner.accounts.get(t)).filter(|a| !a.revoked);
    let Some(account) = account else {
        return bad_credentials();
    };
    if !account.seat {
        let body = json!({
            "message": "Resource not accessible by integration",
            "error_details": {
                "title": "No Copilot access",
                "message": "No access to GitHub Copilot found for this account.",
                "notification_id": "no_copilot_access",
            },
        });
        return (StatusCode::FORBIDDEN, Json(body)).into_response();
    }
    let now = unix(SystemTime::now());
    let expires_at = now + inner.expires_in;
    let token = format!(
        "tid={};exp={expires_at};sku=copilot_mock;proxy-ep={};8kp=1:{}",
        hex(32),
        state.origin.trim_start_matches("http://"),
        hex(64),
    );
    inner.tokens.insert(
        token.clone(),
        Issued { expires_at: UNIX_EPOCH + Duration::from_secs(expires_at), revoked: false },
    );
    let api = state.copilot_api_url();
    Json(json!({
        "token": token,
        "expires_at": expires_at,
        "refresh_in": inner.refresh_in,
        "endpoints": {
            "api": api,
            "origin-tracker": format!("{}/origin-tracker", state.origin),
            "proxy": format!("{}/proxy", state.origin),
            "telemetry": format!("{}/telemetry", state.origin),
        },
        "chat_enabled": true,
        "annotations_enabled": false,
        "sku": "copilot_mock",
        "individual": true,
        "tracking_id": hex(32),
    }))
    .into_response()
}

/// Records a GitHub API request; the mock's state, locked, when its OAuth token is a known,
/// unrevoked account's (callers answer `Bad credentials` otherwise).
fn known_account<'a>(
    state: &'a State,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Option<MutexGuard<'a, Inner>> {
    let oauth = oauth_token(headers);
    let mut inner = state.lock();
    inner.github_requests.push(record(method, uri, headers));
    let known = oauth.as_deref().and_then(|t| inner.accounts.get(t)).is_some_and(|a| !a.revoked);
    known.then_some(inner)
}

/// `GET /copilot_internal/user`: plan and quota snapshots for a known account.
pub(super) async fn user(
    Extract(state): Extract<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    match known_account(&state, &method, &uri, &headers) {
        Some(inner) => Json(user_document(&inner.quota)).into_response(),
        None => bad_credentials(),
    }
}

/// `GET /user`: the login set with [`crate::MockGitHub::set_login`], for a known account.
pub(super) async fn github_user(
    Extract(state): Extract<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let Some(inner) = known_account(&state, &method, &uri, &headers) else {
        return bad_credentials();
    };
    match &inner.login {
        Some(login) => Json(json!({"login": login, "id": 1, "type": "User"})).into_response(),
        None => (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))).into_response(),
    }
}

fn user_document(quota: &MockQuota) -> Value {
    let percent = if quota.premium_unlimited || quota.premium_entitlement <= 0.0 {
        100.0
    } else {
        quota.premium_remaining / quota.premium_entitlement * 100.0
    };
    let unlimited = |id: &str| {
        json!({
            "entitlement": 0, "remaining": 0, "quota_remaining": 0.0, "percent_remaining": 100.0,
            "unlimited": true, "overage_permitted": false, "overage_count": 0, "quota_id": id,
        })
    };
    json!({
        "login": "mock-user",
        "access_type_sku": "copilot_mock",
        "copilot_plan": quota.plan,
        "chat_enabled": true,
        "quota_reset_date": quota.reset_date,
        "quota_snapshots": {
            "premium_interactions": {
                "entitlement": quota.premium_entitlement,
                "remaining": quota.premium_remaining,
                "quota_remaining": quota.premium_remaining,
                "percent_remaining": percent,
                "unlimited": quota.premium_unlimited,
                "overage_permitted": quota.overage_permitted,
                "overage_count": 0,
                "quota_id": "premium_interactions",
            },
            "chat": unlimited("chat"),
            "completions": unlimited("completions"),
        },
    })
}

/// The OAuth token of `Authorization: token X` (GitHub also accepts `Bearer X`).
fn oauth_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer"))
        .then(|| token.trim().to_owned())
}

fn bad_credentials() -> Response {
    let body =
        json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"});
    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
}

fn record(method: &Method, uri: &Uri, headers: &HeaderMap) -> RecordedRequest {
    RecordedRequest {
        method: method.as_str().to_owned(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: headers
            .iter()
            .map(|(name, value)| {
                (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned())
            })
            .collect(),
        body: Value::Null,
    }
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
