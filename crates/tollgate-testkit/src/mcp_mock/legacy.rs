//! The HTTP+SSE transport of protocol revision 2024-11-05: `GET /sse` opens a stream whose
//! first event names the POST endpoint; every answer travels back on that stream.

use std::{convert::Infallible, sync::Arc};

use axum::{
    Json,
    body::Bytes,
    extract::{Query, State as Extract},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use futures_util::{StreamExt, stream};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::{
    call::Caller,
    http::{event_stream, gate, message_event, plain, until_stopped},
    session::{Accepted, Answer, parse_error},
    state::{McpTransport, State, header_list},
};

/// `GET /sse`: the `endpoint` event, then one `message` event per server message. Closing
/// the stream ends the session.
pub(super) async fn open(Extract(state): Extract<Arc<State>>, headers: HeaderMap) -> Response {
    if let Some(refusal) = gate(&state, &headers) {
        return refusal;
    }
    let (out, rx) = mpsc::unbounded_channel();
    let id = state.open_legacy(out);
    let endpoint = Bytes::from(format!("event: endpoint\ndata: /messages?sessionId={id}\n\n"));
    let guard = CloseOnDrop { state: Arc::clone(&state), id };
    let messages = UnboundedReceiverStream::new(rx).map(move |message| {
        let _ = &guard; // dropped with the stream, when the client goes
        message_event(&message)
    });
    let mut shutdown = state.shutdown.clone();
    let frames = stream::once(async { endpoint })
        .chain(messages)
        .take_until(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .map(Ok::<_, Infallible>);
    event_stream(frames)
}

#[derive(Debug, Deserialize)]
pub(super) struct Target {
    #[serde(rename = "sessionId")]
    session_id: Option<String>,
}

/// `POST /messages?sessionId=…`: 202 at once; the answer follows on the session's stream.
pub(super) async fn post(
    Extract(state): Extract<Arc<State>>,
    Query(target): Query<Target>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = serde_json::from_slice::<Value>(&body);
    state.record(
        McpTransport::Sse,
        target.session_id.clone(),
        parsed.as_ref().map_err(|_| &body[..]),
        &headers,
    );
    if let Some(refusal) = gate(&state, &headers) {
        return refusal;
    }
    let Some(id) = target.session_id else {
        return plain(StatusCode::BAD_REQUEST, "Bad Request: the sessionId parameter is required");
    };
    let Some((session, out)) = state.legacy(&id) else {
        return plain(StatusCode::NOT_FOUND, "Not Found: no such session");
    };
    let message = match parsed {
        Ok(message) => message,
        Err(error) => return (StatusCode::BAD_REQUEST, Json(parse_error(&error))).into_response(),
    };
    let work = match session.accept(message) {
        Accepted::Noted => return accepted(),
        Accepted::Invalid(error) => return (StatusCode::BAD_REQUEST, Json(error)).into_response(),
        Accepted::Request(work) => work,
    };
    let caller = Caller::Http(header_list(&headers));
    let shutdown = state.shutdown.clone();
    let delay = state.delay();
    tokio::spawn(async move {
        let answer = until_stopped(&shutdown, async {
            tokio::time::sleep(delay).await;
            work.run(&caller, &out).await
        });
        match answer.await {
            Some(Answer::Reply(reply) | Answer::Crash(reply)) => {
                let _ = out.send(reply);
            }
            Some(Answer::Cancelled) | None => {}
        }
    });
    accepted()
}

fn accepted() -> Response {
    plain(StatusCode::ACCEPTED, "Accepted")
}

/// Ends an SSE session when its stream is dropped.
struct CloseOnDrop {
    state: Arc<State>,
    id: String,
}

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.state.close_legacy(&self.id);
    }
}
