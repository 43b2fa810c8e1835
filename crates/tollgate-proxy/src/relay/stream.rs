//! Relaying an SSE stream event by event, with accounting that survives failures and
//! disconnects.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::time::Duration;

use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tollgate_protocol::Protocol;
use tollgate_protocol::sse::SseFramer;
use tollgate_providers::UpstreamError;

use super::shape::Shape;
use super::strip::Strip;
use crate::record::{Outcome, RecordGuard};

/// How long a quiet upstream may leave an Anthropic client without a `ping`.
const KEEPALIVE: Duration = Duration::from_secs(10);

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// An upstream stream whose first event has arrived, not yet handed to a client.
pub struct OpenStream {
    upstream: ByteStream,
    framer: SseFramer,
    pending: VecDeque<Bytes>,
    status: u16,
    ended: bool,
    /// Longest gap allowed between upstream chunks.
    idle: Duration,
}

impl std::fmt::Debug for OpenStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenStream").field("status", &self.status).finish_non_exhaustive()
    }
}

impl OpenStream {
    /// Waits for the first complete event, so that an upstream failing before it sends
    /// anything is still an error the caller can act on (fall back, or answer with a status).
    pub async fn open(
        upstream: reqwest::Response,
        deadline: tokio::time::Instant,
        timeout: Duration,
    ) -> Result<Self, UpstreamError> {
        let status = upstream.status().as_u16();
        let mut s = Self {
            upstream: Box::pin(upstream.bytes_stream()),
            framer: SseFramer::new(),
            pending: VecDeque::new(),
            status,
            ended: false,
            idle: timeout,
        };
        while s.pending.is_empty() {
            match tokio::time::timeout_at(deadline, s.upstream.next()).await {
                Err(_) => return Err(UpstreamError::Timeout(timeout)),
                Ok(None) => {
                    s.pending.extend(s.framer.finish());
                    if s.pending.is_empty() {
                        return Err(UpstreamError::Io(
                            "the stream ended before its first event".into(),
                        ));
                    }
                    s.ended = true;
                }
                Ok(Some(Err(e))) => return Err(UpstreamError::Io(e.without_url().to_string())),
                Ok(Some(Ok(chunk))) => s.push(&chunk),
            }
        }
        // A success status over something that is not an event stream (an HTML page, a JSON
        // body) is a broken deployment, found while the plan can still move on.
        if !s.pending.front().is_some_and(|f| is_sse(f)) {
            return Err(UpstreamError::Io("the upstream's answer is not an event stream".into()));
        }
        Ok(s)
    }

    fn push(&mut self, chunk: &[u8]) {
        self.framer.push(chunk);
        while let Some(frame) = self.framer.next_frame() {
            self.pending.push_back(frame);
        }
    }

    /// The response that relays the rest of the stream to the client, passed through or
    /// translated as `shape` says.
    pub fn into_response(self, guard: RecordGuard, shape: Shape, strip: Option<Strip>) -> Response {
        let status = self.status;
        let idle = self.idle;
        let relay = StreamRelay {
            stream: self,
            guard,
            shape,
            strip,
            idle,
            out: VecDeque::new(),
            complete: false,
        };
        let body = futures_util::stream::unfold(relay, |mut relay| async move {
            relay.next_event().await.map(|bytes| (Ok::<_, Infallible>(bytes), relay))
        });
        let mut response = Response::new(Body::from_stream(body));
        *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        response
    }
}

/// Whether a frame reads as a server-sent event: every line a field (`data:`, `event:`,
/// `id:`, `retry:`) or a comment.
fn is_sse(frame: &[u8]) -> bool {
    let mut lines = frame.split(|b| *b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    lines.all(|line| {
        line.is_empty()
            || line[0] == b':'
            || [&b"data"[..], b"event", b"id", b"retry"].iter().any(|field| {
                line.strip_prefix(*field).is_some_and(|rest| rest.is_empty() || rest[0] == b':')
            })
    })
}

/// Whether an upstream frame is the one that ends its protocol's stream: `[DONE]` for
/// OpenAI, `message_stop` for Anthropic. A stream that ends without it was cut short.
fn ends_stream(frame: &[u8], upstream: Protocol) -> bool {
    let mentions = |needle: &[u8]| super::shape::mentions(frame, needle);
    match upstream {
        Protocol::Messages => frame.len() < 256 && mentions(b"message_stop"),
        Protocol::Chat => frame.len() < 64 && mentions(b"[DONE]"),
        // The terminal event carries the whole response, so it is not small.
        Protocol::Responses => {
            mentions(b"\"response.completed\"")
                || mentions(b"\"response.incomplete\"")
                || mentions(b"\"response.failed\"")
        }
    }
}

struct StreamRelay {
    stream: OpenStream,
    guard: RecordGuard,
    shape: Shape,
    /// Removes reasoning first, for `strip_thinking` deployments.
    strip: Option<Strip>,
    idle: Duration,
    /// Events ready for the client (a translated frame can become several).
    out: VecDeque<Bytes>,
    /// Whether the upstream sent its protocol's end of stream.
    complete: bool,
}

impl StreamRelay {
    /// The next event for the client, or `None` at the end.
    async fn next_event(&mut self) -> Option<Bytes> {
        let mut quiet = Duration::ZERO;
        loop {
            if let Some(event) = self.out.pop_front() {
                if let Some(r) = self.guard.get_mut() {
                    r.first_byte_sent();
                }
                return Some(event);
            }
            if let Some(frame) = self.stream.pending.pop_front() {
                let upstream = self.shape.upstream();
                self.complete |= ends_stream(&frame, upstream);
                let frame = match (&mut self.strip, upstream) {
                    (None, _) => frame,
                    (Some(s), Protocol::Messages) => match s.anthropic_frame(frame) {
                        Some(f) => f,
                        None => continue,
                    },
                    (Some(s), Protocol::Chat) => s.openai_frame(frame),
                    // Reasoning items of a Responses upstream are the client's to pass back
                    // (their encrypted content carries the model's state): never stripped.
                    (Some(_), Protocol::Responses) => frame,
                };
                let events = self.shape.frame(frame);
                self.emit(events);
                self.note_usage();
                continue;
            }
            if self.stream.ended {
                if self.guard.get_mut().is_some() && !self.complete {
                    tracing::warn!("upstream stream ended before its end-of-stream event");
                    self.abort_with(
                        "The upstream stream ended before it was complete.",
                        "incomplete",
                    );
                    continue;
                }
                if self.guard.get_mut().is_some() {
                    let tail = self.shape.end();
                    self.emit(tail);
                    self.note_usage();
                    self.guard.finish(self.stream.status, Outcome::Success);
                    continue;
                }
                return None;
            }
            let wait = match self.shape.keepalive() {
                Some(_) => KEEPALIVE.min(self.idle.saturating_sub(quiet)),
                None => self.idle,
            };
            match tokio::time::timeout(wait, self.stream.upstream.next()).await {
                Ok(Some(Ok(chunk))) => {
                    quiet = Duration::ZERO;
                    self.stream.push(&chunk);
                }
                Ok(None) => {
                    let rest = self.stream.framer.finish();
                    self.stream.pending.extend(rest);
                    self.stream.ended = true;
                }
                Ok(Some(Err(e))) => {
                    tracing::warn!(error = %e.without_url(), "upstream stream broke");
                    self.abort("The upstream stream was interrupted.");
                }
                Err(_) => {
                    quiet += wait;
                    if quiet < self.idle
                        && let Some(ping) = self.shape.keepalive()
                    {
                        self.out.push_back(ping);
                        continue;
                    }
                    let msg = format!(
                        "The upstream stopped sending for {}s and the stream was ended.",
                        self.idle.as_secs_f64()
                    );
                    self.abort(&msg);
                }
            }
        }
    }

    /// Queues events for the client, noting them in the transcript when bodies are kept.
    fn emit(&mut self, events: Vec<Bytes>) {
        if let Some(t) = self.guard.get_mut().and_then(|r| r.transcript.as_mut()) {
            events.iter().for_each(|e| t.observe(e));
        }
        self.out.extend(events);
    }

    fn note_usage(&mut self) {
        if let (Some(u), Some(r)) = (self.shape.usage(), self.guard.get_mut()) {
            r.usage = u;
        }
    }

    /// Ends the stream with the client protocol's error event.
    fn abort(&mut self, message: &str) {
        self.abort_with(message, "stream");
    }

    fn abort_with(&mut self, message: &str, reason: &'static str) {
        self.stream.ended = true;
        self.stream.pending.clear();
        let events = self.shape.fail(message);
        self.emit(events);
        self.note_usage();
        self.guard.finish(self.stream.status, Outcome::StreamFailed(reason));
    }
}
