//! Anthropic-format upstreams: Anthropic itself and compatible endpoints (Z.ai's
//! `/api/anthropic`, Kimi, ...). Requests go to `{api_base}/v1/messages`.

use bytes::Bytes;
use http::HeaderMap;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};
use tollgate_config::ModelEntry;

use crate::headers::{apply_extra_headers, sensitive, set};
use tollgate_protocol::Operation;

use crate::CallContext;

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
/// the client's own in pass-through mode). The deployment's `extra_headers` come last and
/// replace anything before them.
pub(crate) fn build(
    http: &reqwest::Client,
    entry: &ModelEntry,
    operation: Operation,
    body: Bytes,
    ctx: &CallContext,
    credential: Option<&str>,
) -> reqwest::RequestBuilder {
    let base = entry.api_base.as_deref().or(entry.provider.default_api_base()).unwrap_or_default();
    let path = match operation {
        Operation::CountTokens => "/v1/messages/count_tokens",
        _ => "/v1/messages",
    };
    let mut headers = HeaderMap::with_capacity(5 + entry.extra_headers.len());
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(ACCEPT, HeaderValue::from_static(crate::openai::accept(ctx)));
    let credential = credential.or(entry.api_key.as_ref().map(|k| k.expose().as_str()));
    let oauth = credential.is_some_and(is_oauth_token);
    version_and_betas(&mut headers, ctx, if oauth { &[OAUTH_BETA] } else { &[] });
    let (name, value) = match credential {
        Some(c) if oauth => (AUTHORIZATION, sensitive(&format!("Bearer {c}"))),
        Some(c) => (HeaderName::from_static("x-api-key"), sensitive(c)),
        None => (AUTHORIZATION, None),
    };
    if let Some(value) = value {
        headers.insert(name, value);
    }
    apply_extra_headers(&mut headers, &entry.extra_headers);
    crate::http::post(http, base, path).headers(headers).body(body)
}

/// `anthropic-version` (the client's, else [`DEFAULT_VERSION`]) and `anthropic-beta` (the
/// client's flags plus `more`, once each), for every Anthropic-format upstream.
pub(crate) fn version_and_betas(headers: &mut HeaderMap, ctx: &CallContext, more: &[&str]) {
    let version = ctx.anthropic_version.as_deref().unwrap_or(DEFAULT_VERSION);
    set(headers, HeaderName::from_static("anthropic-version"), version);
    let mut betas: Vec<&str> = ctx.anthropic_beta.iter().map(String::as_str).collect();
    for flag in more {
        if !betas.contains(flag) {
            betas.push(flag);
        }
    }
    if !betas.is_empty() {
        set(headers, HeaderName::from_static("anthropic-beta"), &betas.join(","));
    }
}
