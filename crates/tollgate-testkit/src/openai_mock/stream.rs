//! The SSE body of a streamed chat completion, rendered and sent one event at a time.

use std::{io, ops::Range, sync::Arc, time::Duration};

use axum::{
    body::Body,
    http::header,
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::{
    reply::{Meta, Reply, ReplySpec, ToolCall},
    tokens,
};

/// One SSE event of the plan; text is referenced by byte range so nothing is copied ahead.
enum Event {
    Role,
    Reasoning(Range<usize>),
    Content(Range<usize>),
    ToolStart(usize),
    ToolArguments(usize, Range<usize>),
    Finish,
    Usage,
    Done,
}

struct State {
    spec: Arc<ReplySpec>,
    meta: Meta,
    events: Vec<Event>,
    next: usize,
    finished: bool,
    shutdown: watch::Receiver<bool>,
}

/// A `text/event-stream` response that produces each event only when it is due.
pub(super) fn response(
    spec: Arc<ReplySpec>,
    meta: Meta,
    shutdown: watch::Receiver<bool>,
) -> Response {
    let events = plan(&spec, meta.include_usage);
    let state = State { spec, meta, events, next: 0, finished: false, shutdown };
    let body = Body::from_stream(futures_util::stream::unfold(state, step));
    ([(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], body)
        .into_response()
}

fn plan(spec: &ReplySpec, include_usage: bool) -> Vec<Event> {
    let mut events = vec![Event::Role];
    if let Some(reasoning) = &spec.reasoning {
        events.extend(tokens::split(reasoning, spec.chunks).into_iter().map(Event::Reasoning));
    }
    match &spec.reply {
        Reply::Text { text } => {
            events.extend(tokens::split(text, spec.chunks).into_iter().map(Event::Content));
        }
        Reply::ToolCalls { calls } => {
            for (i, call) in calls.iter().enumerate() {
                events.push(Event::ToolStart(i));
                let fragments = tokens::split_arguments(&call.arguments, spec.chunks);
                events.extend(fragments.into_iter().map(|r| Event::ToolArguments(i, r)));
            }
        }
        Reply::Error { .. } | Reply::Hang => {}
    }
    events.push(Event::Finish);
    if include_usage {
        events.push(Event::Usage);
    }
    events.push(Event::Done);
    events
}

async fn step(mut st: State) -> Option<(io::Result<Bytes>, State)> {
    if st.finished || st.next >= st.events.len() {
        return None;
    }
    if st.spec.end_after_chunks == Some(st.next) {
        return None;
    }
    if st.spec.cut_after_chunks == Some(st.next) {
        // Pending once so hyper flushes what it has buffered: the client must receive the
        // chunks before the connection dies, as it would from a crashed upstream.
        tokio::task::yield_now().await;
        return abort(st, "mock upstream: cut_after_chunks");
    }
    if st.next > 0 && st.spec.chunk_interval_ms > 0 {
        let interval = tokio::time::sleep(Duration::from_millis(st.spec.chunk_interval_ms));
        let stopped = tokio::select! {
            () = interval => false,
            _ = st.shutdown.wait_for(|stopped| *stopped) => true,
        };
        if stopped {
            return abort(st, "mock upstream: shutting down");
        }
    }
    let bytes = render(&st, &st.events[st.next]);
    st.next += 1;
    Some((bytes, st))
}

/// An error from the body stream makes hyper drop the connection mid-body.
fn abort(mut st: State, why: &'static str) -> Option<(io::Result<Bytes>, State)> {
    st.finished = true;
    Some((Err(io::Error::new(io::ErrorKind::ConnectionAborted, why)), st))
}

fn render(st: &State, event: &Event) -> io::Result<Bytes> {
    let spec = &*st.spec;
    let value = match event {
        Event::Role => match &spec.reply {
            Reply::Text { .. } => chunk(st, json!({"role": "assistant", "content": ""}), None),
            _ => chunk(st, json!({"role": "assistant", "content": null}), None),
        },
        Event::Reasoning(range) => {
            let reasoning = spec.reasoning.as_deref().unwrap_or_default();
            chunk(st, json!({"reasoning_content": &reasoning[range.clone()]}), None)
        }
        Event::Content(range) => {
            let text = match &spec.reply {
                Reply::Text { text } => text.as_str(),
                _ => "",
            };
            chunk(st, json!({"content": &text[range.clone()]}), None)
        }
        Event::ToolStart(i) => {
            let call = &calls(spec)[*i];
            let delta = json!({"tool_calls": [{
                "index": i,
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }]});
            chunk(st, delta, None)
        }
        Event::ToolArguments(i, range) => {
            let arguments = &calls(spec)[*i].arguments[range.clone()];
            chunk(
                st,
                json!({"tool_calls": [{"index": i, "function": {"arguments": arguments}}]}),
                None,
            )
        }
        Event::Finish => chunk(st, json!({}), Some(finish_reason(spec))),
        Event::Usage => json!({
            "id": st.meta.id,
            "object": "chat.completion.chunk",
            "created": st.meta.created,
            "model": st.meta.model,
            "system_fingerprint": null,
            "choices": [],
            "usage": tokens::usage(spec, st.meta.prompt_tokens),
        }),
        Event::Done => return Ok(Bytes::from_static(b"data: [DONE]\n\n")),
    };
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(b"data: ");
    serde_json::to_writer(&mut buf, &value).map_err(io::Error::other)?;
    buf.extend_from_slice(b"\n\n");
    Ok(Bytes::from(buf))
}

fn chunk(st: &State, delta: Value, finish_reason: Option<&str>) -> Value {
    let mut value = json!({
        "id": st.meta.id,
        "object": "chat.completion.chunk",
        "created": st.meta.created,
        "model": st.meta.model,
        "system_fingerprint": null,
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
    });
    // OpenAI puts `"usage": null` on every chunk once usage was asked for.
    if st.meta.include_usage {
        value["usage"] = Value::Null;
    }
    value
}

fn calls(spec: &ReplySpec) -> &[ToolCall] {
    match &spec.reply {
        Reply::ToolCalls { calls } => calls,
        _ => &[],
    }
}

/// The `finish_reason` of a reply: the override, else what its kind implies.
pub(super) fn finish_reason(spec: &ReplySpec) -> &str {
    match (&spec.finish_reason, &spec.reply) {
        (Some(reason), _) => reason,
        (None, Reply::ToolCalls { .. }) => "tool_calls",
        (None, _) => "stop",
    }
}
