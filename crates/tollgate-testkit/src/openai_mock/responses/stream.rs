//! The SSE body of a streamed Responses API reply: named events with a `sequence_number`,
//! sent one at a time with the pacing, cuts and ends the chat stream honours.

use std::{io, ops::Range, sync::Arc, time::Duration};

use axum::{
    body::Body,
    http::header,
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::items::{self, Ending, Item, Outline};
use crate::openai_mock::{reply::ReplySpec, tokens};

/// One SSE event of the plan; numbers are output indexes, text is referenced by byte range.
enum Event {
    Created,
    InProgress,
    ItemAdded(usize),
    SummaryPartAdded(usize),
    SummaryDelta(usize, Range<usize>),
    SummaryDone(usize),
    SummaryPartDone(usize),
    PartAdded(usize),
    TextDelta(usize, Range<usize>),
    TextDone(usize),
    PartDone(usize),
    /// Output index, index of the call in the reply, fragment.
    ArgumentsDelta(usize, usize, Range<usize>),
    ArgumentsDone(usize, usize),
    ItemDone(usize),
    /// `response.completed` or `response.incomplete`.
    End,
}

struct State {
    spec: Arc<ReplySpec>,
    outline: Outline,
    items: Vec<Item>,
    ending: Ending,
    events: Vec<Event>,
    /// Where `response.failed` takes the place of the planned event, when the reply fails.
    fail_at: Option<usize>,
    next: usize,
    finished: bool,
    shutdown: watch::Receiver<bool>,
}

/// A `text/event-stream` response that produces each event only when it is due.
pub(super) fn response(
    spec: Arc<ReplySpec>,
    outline: Outline,
    shutdown: watch::Receiver<bool>,
) -> Response {
    let items = items::layout(&spec);
    let events = plan(&spec, &items);
    // A failure planned beyond the end fails instead of the last event: it always happens.
    let fail_at = spec.failure.as_ref().map(|f| f.after_chunks.min(events.len() - 1));
    let ending = Ending::of(&spec);
    let state =
        State { spec, outline, items, ending, events, fail_at, next: 0, finished: false, shutdown };
    let body = Body::from_stream(futures_util::stream::unfold(state, step));
    ([(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], body)
        .into_response()
}

fn plan(spec: &ReplySpec, items: &[Item]) -> Vec<Event> {
    let mut events = vec![Event::Created, Event::InProgress];
    for (index, item) in items.iter().enumerate() {
        events.push(Event::ItemAdded(index));
        match *item {
            Item::Reasoning => {
                events.push(Event::SummaryPartAdded(index));
                let pieces = tokens::split(items::reasoning(spec), spec.chunks);
                events.extend(pieces.into_iter().map(|r| Event::SummaryDelta(index, r)));
                events.push(Event::SummaryDone(index));
                events.push(Event::SummaryPartDone(index));
            }
            Item::Message => {
                events.push(Event::PartAdded(index));
                let pieces = tokens::split(items::text(spec), spec.chunks);
                events.extend(pieces.into_iter().map(|r| Event::TextDelta(index, r)));
                events.push(Event::TextDone(index));
                events.push(Event::PartDone(index));
            }
            Item::Call(i) => {
                let arguments = &items::calls(spec)[i].arguments;
                let pieces = tokens::split_arguments(arguments, spec.chunks);
                events.extend(pieces.into_iter().map(|r| Event::ArgumentsDelta(index, i, r)));
                events.push(Event::ArgumentsDone(index, i));
            }
        }
        events.push(Event::ItemDone(index));
    }
    events.push(Event::End);
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
        // Pending once so hyper flushes what it has buffered before the connection dies.
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
    let bytes = if st.fail_at == Some(st.next) {
        st.finished = true;
        frame("response.failed", st.next, failed(&st))
    } else {
        frame_event(&st, &st.events[st.next])
    };
    st.next += 1;
    Some((bytes, st))
}

/// An error from the body stream makes hyper drop the connection mid-body.
fn abort(mut st: State, why: &'static str) -> Option<(io::Result<Bytes>, State)> {
    st.finished = true;
    Some((Err(io::Error::new(io::ErrorKind::ConnectionAborted, why)), st))
}

/// `response.failed`: the items finished so far, and the failure's error.
fn failed(st: &State) -> Value {
    let output = st.events[..st.next]
        .iter()
        .filter_map(|event| match event {
            Event::ItemDone(index) => Some(*index),
            _ => None,
        })
        .map(|index| {
            items::finished(&st.spec, &st.outline, index, st.items[index], Ending::Completed)
        })
        .collect();
    let error = items::failure(&st.spec);
    json!({"response": items::response(&st.outline, "failed", output, Value::Null, error)})
}

fn frame_event(st: &State, event: &Event) -> io::Result<Bytes> {
    let spec = &*st.spec;
    let outline = &st.outline;
    let id = |index: usize| items::item_id(outline, index, st.items[index]);
    let in_progress =
        || items::response(outline, "in_progress", Vec::new(), Value::Null, Value::Null);
    let reasoning = items::reasoning(spec);
    let text = items::text(spec);
    let (kind, data) = match event {
        Event::Created => ("response.created", json!({"response": in_progress()})),
        Event::InProgress => ("response.in_progress", json!({"response": in_progress()})),
        Event::ItemAdded(i) => (
            "response.output_item.added",
            json!({"output_index": i, "item": items::opened(spec, outline, *i, st.items[*i])}),
        ),
        Event::SummaryPartAdded(i) => (
            "response.reasoning_summary_part.added",
            json!({"item_id": id(*i), "output_index": i, "summary_index": 0,
                   "part": items::summary_text("")}),
        ),
        Event::SummaryDelta(i, range) => (
            "response.reasoning_summary_text.delta",
            json!({"item_id": id(*i), "output_index": i, "summary_index": 0,
                   "delta": &reasoning[range.clone()]}),
        ),
        Event::SummaryDone(i) => (
            "response.reasoning_summary_text.done",
            json!({"item_id": id(*i), "output_index": i, "summary_index": 0, "text": reasoning}),
        ),
        Event::SummaryPartDone(i) => (
            "response.reasoning_summary_part.done",
            json!({"item_id": id(*i), "output_index": i, "summary_index": 0,
                   "part": items::summary_text(reasoning)}),
        ),
        Event::PartAdded(i) => (
            "response.content_part.added",
            json!({"item_id": id(*i), "output_index": i, "content_index": 0,
                   "part": items::output_text("")}),
        ),
        Event::TextDelta(i, range) => (
            "response.output_text.delta",
            json!({"item_id": id(*i), "output_index": i, "content_index": 0,
                   "delta": &text[range.clone()], "logprobs": []}),
        ),
        Event::TextDone(i) => (
            "response.output_text.done",
            json!({"item_id": id(*i), "output_index": i, "content_index": 0,
                   "text": text, "logprobs": []}),
        ),
        Event::PartDone(i) => (
            "response.content_part.done",
            json!({"item_id": id(*i), "output_index": i, "content_index": 0,
                   "part": items::output_text(text)}),
        ),
        Event::ArgumentsDelta(i, call, range) => {
            let arguments = &items::calls(spec)[*call].arguments;
            (
                "response.function_call_arguments.delta",
                json!({"item_id": id(*i), "output_index": i, "delta": &arguments[range.clone()]}),
            )
        }
        Event::ArgumentsDone(i, call) => {
            let call = &items::calls(spec)[*call];
            (
                "response.function_call_arguments.done",
                json!({"item_id": id(*i), "output_index": i, "name": call.name,
                       "arguments": call.arguments}),
            )
        }
        Event::ItemDone(i) => (
            "response.output_item.done",
            json!({"output_index": i,
                   "item": items::finished(spec, outline, *i, st.items[*i], st.ending)}),
        ),
        Event::End => {
            (st.ending.event(), json!({"response": items::final_response(spec, outline)}))
        }
    };
    frame(kind, st.next, data)
}

/// `event: KIND` and `data:` with `type` and `sequence_number` added to `data`.
fn frame(kind: &str, sequence_number: usize, mut data: Value) -> io::Result<Bytes> {
    data["type"] = json!(kind);
    data["sequence_number"] = json!(sequence_number);
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(b"event: ");
    buf.extend_from_slice(kind.as_bytes());
    buf.extend_from_slice(b"\ndata: ");
    serde_json::to_writer(&mut buf, &data).map_err(io::Error::other)?;
    buf.extend_from_slice(b"\n\n");
    Ok(Bytes::from(buf))
}
