//! `POST /v1/responses`: the OpenAI Responses API, answered from the same reply queue as chat
//! completions.
//!
//! A reply becomes output items in this order: a `reasoning` item when the spec has
//! reasoning (its summary is the reasoning text; `encrypted_content` only when `include`
//! asks for `reasoning.encrypted_content`, see [`encrypted_reasoning`]), then one `message`
//! for a text reply or one `function_call` per tool call. Item ids are
//! `rs_mockN_I`, `msg_mockN_I` and `fc_mockN_I` for response `resp_mockN` and output index
//! `I`. A stream sends, with `sequence_number` 0, 1, ...:
//!
//! - `response.created`, `response.in_progress`;
//! - per item `response.output_item.added`, then for reasoning
//!   `response.reasoning_summary_part.added`, `response.reasoning_summary_text.delta`…,
//!   `response.reasoning_summary_text.done`, `response.reasoning_summary_part.done`; for a
//!   message `response.content_part.added`, `response.output_text.delta`…,
//!   `response.output_text.done`, `response.content_part.done`; for a call
//!   `response.function_call_arguments.delta`…, `response.function_call_arguments.done`;
//!   then `response.output_item.done`;
//! - `response.completed` (or `response.incomplete`) with the whole Response.
//!
//! [`ReplySpec::failure`](crate::ReplySpec::failure) puts `response.failed` in place of one
//! of these and ends the stream there.

mod items;
mod stream;

use std::sync::Arc;

use axum::{
    extract::State,
    http::{HeaderMap, Method, Uri},
    response::Response,
};
use bytes::Bytes;
use serde_json::Value;

pub use items::encrypted_reasoning;

use super::{
    Shared,
    chat::{invalid_request, json_response, parse_body, unix_now, unless_success},
};

/// Answers a Responses API request with the next programmed reply.
pub(crate) async fn responses(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(body) = parse_body(&shared, &method, &uri, &headers, &body) else {
        return invalid_request("the request body is not valid JSON");
    };
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let outline = items::Outline::new(shared.serial(), unix_now(), &body);
    shared.record(&method, &uri, &headers, body);

    // Until the response head is ready: the delay and error replies are inside it.
    let _busy = shared.busy();
    let spec = shared.next_reply();
    if let Some(response) = unless_success(&shared, &spec).await {
        return response;
    }
    if stream {
        stream::response(spec, outline, shared.shutdown.clone())
    } else {
        json_response(&spec, &items::final_response(&spec, &outline))
    }
}
