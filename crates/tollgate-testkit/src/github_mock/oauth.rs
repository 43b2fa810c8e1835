//! GitHub's OAuth device flow: `/login/device/code`, `/login/oauth/access_token`, and a
//! placeholder `/login/device` page for browsers that follow the verification link.

use std::{collections::HashMap, sync::Arc, time::Instant};

use axum::{
    Json,
    extract::State as Extract,
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use bytes::Bytes;
use serde_json::{Value, json};

use super::state::{DeviceRequest, Flow, FlowStatus, ScriptedPoll, State, hex, user_code};

/// The device grant of RFC 8628; any other `grant_type` is refused.
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// RFC 8628's step for `slow_down`.
const SLOW_DOWN_STEP: u64 = 5;

/// `POST /login/device/code`: starts a flow and records `client_id` and `scope`.
pub(super) async fn device_code(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = params(&headers, &body);
    let client_id = params.get("client_id").cloned();
    let mut inner = state.lock();
    inner
        .device_requests
        .push(DeviceRequest { client_id: client_id.clone(), scope: params.get("scope").cloned() });
    let Some(client_id) = client_id.filter(|id| !id.is_empty()) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "client_id is required");
    };
    let flow = Flow {
        device_code: hex(40),
        user_code: user_code(),
        client_id,
        status: FlowStatus::Pending,
        interval: inner.interval,
        expires: Instant::now() + std::time::Duration::from_secs(inner.device_expires_in),
        last_poll: None,
    };
    let answer = json!({
        "device_code": flow.device_code,
        "user_code": flow.user_code,
        "verification_uri": format!("{}/login/device", state.origin),
        "expires_in": inner.device_expires_in,
        "interval": flow.interval,
    });
    inner.flows.push(flow);
    Json(answer).into_response()
}

/// `POST /login/oauth/access_token`: the next scripted outcome, else the flow's state.
/// OAuth errors are answered with 200, as GitHub does.
pub(super) async fn access_token(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = params(&headers, &body);
    let now = Instant::now();
    let mut inner = state.lock();
    inner.polls.push(now);
    if params.get("grant_type").map(String::as_str) != Some(DEVICE_GRANT) {
        return oauth_error(StatusCode::OK, "unsupported_grant_type", "use the device grant");
    }
    let device_code = params.get("device_code").map(String::as_str).unwrap_or_default();
    let enforce = inner.enforce_interval;
    let scripted = inner.script.pop_front();
    let Some(flow) = inner.flows.iter_mut().find(|f| f.device_code == device_code) else {
        return oauth_error(StatusCode::OK, "incorrect_device_code", "unknown device code");
    };
    if params.get("client_id") != Some(&flow.client_id) {
        return oauth_error(StatusCode::OK, "incorrect_client_credentials", "wrong client_id");
    }
    let too_soon = flow.last_poll.is_some_and(|last| {
        // A little slack for timer jitter on a busy test machine.
        now.duration_since(last).as_millis() + 100 < u128::from(flow.interval) * 1000
    });
    flow.last_poll = Some(now);
    if flow.status == FlowStatus::Pending && now >= flow.expires {
        flow.status = FlowStatus::Expired;
    }
    match scripted {
        Some(ScriptedPoll::Pending) => return pending(),
        Some(ScriptedPoll::SlowDown) => return slow_down(flow),
        Some(ScriptedPoll::Expired) => flow.status = FlowStatus::Expired,
        Some(ScriptedPoll::Denied) => flow.status = FlowStatus::Denied,
        None => {}
    }
    match &flow.status {
        FlowStatus::Approved(token) => {
            Json(json!({"access_token": token, "token_type": "bearer", "scope": "read:user"}))
                .into_response()
        }
        FlowStatus::Denied => {
            oauth_error(StatusCode::OK, "access_denied", "The authorization request was denied.")
        }
        FlowStatus::Expired => {
            oauth_error(StatusCode::OK, "expired_token", "The device code has expired.")
        }
        FlowStatus::Pending if enforce && too_soon => slow_down(flow),
        FlowStatus::Pending => pending(),
    }
}

/// `GET /login/device`: where the verification link leads; the stand-in approves through
/// [`crate::MockGitHub::approve`], not through this page.
pub(super) async fn device_page() -> Html<&'static str> {
    Html(
        "<!doctype html><title>Device activation (stand-in)</title>\
         <h1>Device activation</h1><p>This is tollgate's GitHub stand-in.</p>",
    )
}

fn pending() -> Response {
    oauth_error(
        StatusCode::OK,
        "authorization_pending",
        "The authorization request is still pending.",
    )
}

fn slow_down(flow: &mut Flow) -> Response {
    flow.interval += SLOW_DOWN_STEP;
    let body = json!({
        "error": "slow_down",
        "error_description": "Too many requests have been made in the same timeframe.",
        "error_uri": "https://docs.github.com/developers/apps/authorizing-oauth-apps#error-codes-for-the-device-flow",
        "interval": flow.interval,
    });
    Json(body).into_response()
}

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    (status, Json(json!({"error": code, "error_description": description}))).into_response()
}

/// The request's parameters, from a JSON object or a form body.
fn params(headers: &HeaderMap, body: &Bytes) -> HashMap<String, String> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"));
    if json {
        let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        return value
            .as_object()
            .map(|object| {
                object
                    .iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
    }
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (form_decode(k), form_decode(v)))
        .collect()
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex_value(bytes[i + 1]), hex_value(bytes[i + 2]))
            {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(byte: u8) -> Option<u8> {
    char::from(byte).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// `POST /__mock/approve`: approves the most recent device flow, as the person at GitHub's
/// page would; 404 when no flow was started.
pub(super) async fn approve_latest(Extract(state): Extract<Arc<State>>) -> Response {
    let mut inner = state.lock();
    let approved = inner.flows.len().checked_sub(1).and_then(|i| inner.approve(i));
    match approved {
        Some(token) => Json(json!({"approved": true, "access_token": token})).into_response(),
        None => (StatusCode::NOT_FOUND, Json(json!({"error": "no device flow to approve"})))
            .into_response(),
    }
}

/// `POST /__mock/account` `{"access_token": "ghu_…"}`: knows that account again (with a seat),
/// as GitHub would after this stand-in restarted and forgot it.
pub(super) async fn remember_account(
    Extract(state): Extract<Arc<State>>,
    Json(body): Json<Value>,
) -> Response {
    let Some(token) = body.get("access_token").and_then(Value::as_str) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "access_token is required"})))
            .into_response();
    };
    let mut inner = state.lock();
    let account = inner.accounts.entry(token.to_owned()).or_default();
    account.seat = true;
    account.revoked = false;
    Json(json!({"remembered": true})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_forms() {
        assert_eq!(form_decode("read%3Auser+repo"), "read:user repo");
        assert_eq!(form_decode("a%2"), "a%2");
        assert_eq!(form_decode("100%"), "100%");
        assert_eq!(form_decode("%é%41"), "%éA");
        assert_eq!(
            form_decode("urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code"),
            DEVICE_GRANT
        );
    }
}
