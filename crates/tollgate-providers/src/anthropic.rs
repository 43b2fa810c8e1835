//! Anthropic-format upstreams: Anthropic itself and compatible endpoints (Z.ai's
//! `/api/anthropic`, Kimi, ...). Requests go to `{api_base}/v1/messages`.

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use tollgate_config::ModelEntry;

use crate::{CallContext, Endpoint};

/// The Messages API version sent when the client did not say.
pub const DEFAULT_VERSION: &str = "2023-06-01";
/// The beta flag Claude OAuth tokens need.
pub const OAUTH_BETA: &str = "oauth-2025-04-20";

/// Whether a credential is a Claude OAuth token (sent as a bearer token) rather than an API
/// key (sent as `x-api-key`).
pub fn is_oauth_token(credential: &str) -> bool {
    credential.starts_with("sk-ant-oat")
}

/// Builds the request. `credential` overrides the deployment's key (a pooled OAuth token, or
/// the client's own in pass-through mode).
pub(crate) fn build(
    http: &reqwest::Client,
    entry: &ModelEntry,
    endpoint: Endpoint,
    body: Bytes,
    ctx: &CallContext,
    credential: Option<&str>,
) -> reqwest::RequestBuilder {
    let base = entry.api_base.as_deref().or(entry.provider.default_api_base()).unwrap_or_default();
    let path = match endpoint {
        Endpoint::CountTokens => "/v1/messages/count_tokens",
        _ => "/v1/messages",
    };
    let mut request = crate::http::post(http, base, path)
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, if ctx.stream { "text/event-stream" } else { "application/json" })
        .header("anthropic-version", ctx.anthropic_version.as_deref().unwrap_or(DEFAULT_VERSION))
        .body(body);
    let credential = credential.or(entry.api_key.as_ref().map(|k| k.expose().as_str()));
    let mut betas: Vec<&str> = ctx.anthropic_beta.iter().map(String::as_str).collect();
    match credential {
        Some(c) if is_oauth_token(c) => {
            request = request.header(AUTHORIZATION, format!("Bearer {c}"));
            if !betas.contains(&OAUTH_BETA) {
                betas.push(OAUTH_BETA);
            }
        }
        Some(c) => request = request.header("x-api-key", c),
        None => {}
    }
    if !betas.is_empty() {
        request = request.header("anthropic-beta", betas.join(","));
    }
    for (name, value) in &entry.extra_headers {
        request = request.header(name.as_str(), value.expose().as_str());
    }
    request
}
