//! OpenAI-compatible upstreams: OpenAI itself, OpenRouter, vLLM, and anything that speaks
//! `/chat/completions`.

use bytes::Bytes;
use http::HeaderMap;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};
use tollgate_config::ModelEntry;

use crate::headers::{apply_extra_headers, sensitive, set};
use tollgate_protocol::{Operation, Protocol};

use crate::CallContext;

/// Builds the request: `{api_base}/chat/completions` (or `/responses`, `/embeddings`), the
/// deployment's key as a bearer token, then its `extra_headers`, which replace anything
/// before them.
pub(crate) fn build(
    http: &reqwest::Client,
    entry: &ModelEntry,
    operation: Operation,
    body: Bytes,
    ctx: &CallContext,
) -> reqwest::RequestBuilder {
    let base = entry.api_base.as_deref().or(entry.provider.default_api_base()).unwrap_or_default();
    let path = match operation {
        Operation::Embeddings => "/embeddings",
        Operation::Generate(Protocol::Responses) => "/responses",
        // The gateway translates every other operation to a chat completion first.
        Operation::Generate(_) | Operation::CountTokens => "/chat/completions",
    };
    let mut headers = HeaderMap::with_capacity(4 + entry.extra_headers.len());
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(ACCEPT, HeaderValue::from_static(accept(ctx)));
    if let Some(value) =
        entry.api_key.as_ref().and_then(|k| sensitive(&format!("Bearer {}", k.expose())))
    {
        headers.insert(AUTHORIZATION, value);
    }
    if !ctx.request_id.is_empty() {
        set(&mut headers, HeaderName::from_static("x-request-id"), &ctx.request_id);
    }
    apply_extra_headers(&mut headers, &entry.extra_headers);
    crate::http::post(http, base, path).headers(headers).body(body)
}

/// What a streamed or a whole answer is asked for as.
pub(crate) fn accept(ctx: &CallContext) -> &'static str {
    if ctx.stream { "text/event-stream" } else { "application/json" }
}
