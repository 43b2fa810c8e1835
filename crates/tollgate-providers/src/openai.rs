//! OpenAI-compatible upstreams: OpenAI itself, OpenRouter, vLLM, and anything that speaks
//! `/chat/completions`.

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use tollgate_config::ModelEntry;

use crate::{CallContext, Endpoint};

/// Builds the request: `{api_base}/chat/completions` (or `/embeddings`), the deployment's key
/// as a bearer token, then its `extra_headers`, which may override anything before them.
pub(crate) fn build(
    http: &reqwest::Client,
    entry: &ModelEntry,
    endpoint: Endpoint,
    body: Bytes,
    ctx: &CallContext,
) -> reqwest::RequestBuilder {
    let base = entry.api_base.as_deref().or(entry.provider.default_api_base()).unwrap_or_default();
    let path = match endpoint {
        Endpoint::Embeddings => "/embeddings",
        Endpoint::ChatCompletions | Endpoint::Messages | Endpoint::CountTokens => {
            "/chat/completions"
        }
    };
    let mut request = crate::http::post(http, base, path)
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, if ctx.stream { "text/event-stream" } else { "application/json" })
        .body(body);
    if let Some(key) = &entry.api_key {
        request = request.header(AUTHORIZATION, format!("Bearer {}", key.expose()));
    }
    if !ctx.request_id.is_empty() {
        request = request.header("x-request-id", &ctx.request_id);
    }
    for (name, value) in &entry.extra_headers {
        request = request.header(name.as_str(), value.expose().as_str());
    }
    request
}
