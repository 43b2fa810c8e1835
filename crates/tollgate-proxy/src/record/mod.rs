//! What happened to one proxied request: usage, cost, timings and outcome, recorded exactly
//! once — when it finishes, fails, is refused, or its client goes away. Finishing is four
//! jobs, each in its own place: metrics ([`crate::metrics`]), the log line ([`log`]), the
//! charge against the caller's budgets ([`Directory::charge`]) and the spend record for the
//! batched writer ([`row`]).

mod log;
mod refusal;
mod row;
mod transcript;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;
use tollgate_protocol::openai::Usage;
use tollgate_router::InFlight;
use tollgate_router::pricing::Price;
use tollgate_store::SpendWriter;

pub use refusal::Refusal;
pub use transcript::Transcript;

use crate::access::{Admitted, Directory, KeyEntry};
use crate::metrics::RequestLabels;
use crate::request_id::RequestId;

/// How a proxied request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The upstream answered and the answer was delivered.
    Success,
    /// The upstream failed before answering.
    UpstreamFailed(&'static str),
    /// A stream broke after bytes had reached the client.
    StreamFailed(&'static str),
    /// The client disconnected before the end.
    ClientDisconnected,
    /// Authentication or admission refused it; no upstream was asked.
    Refused,
}

impl Outcome {
    /// The name spend records and logs use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::UpstreamFailed(_) => "upstream_failed",
            Self::StreamFailed(_) => "stream_failed",
            Self::ClientDisconnected => "client_disconnected",
            Self::Refused => "refused",
        }
    }
}

/// Where finished requests are charged and recorded.
#[derive(Debug, Clone)]
pub struct SpendSink {
    /// The batched writer of spend records.
    pub writer: SpendWriter,
    /// The in-memory budgets and limits.
    pub directory: Arc<Directory>,
}

/// A request in flight.
#[derive(Debug)]
pub struct RequestRecord {
    /// The request's ids: its own names the spend record.
    pub request_id: RequestId,
    /// Metric labels.
    pub labels: RequestLabels,
    /// The model name the client asked for.
    pub requested_model: String,
    /// `provider/model` that served it.
    pub served_model: String,
    /// The provider prefix.
    pub provider: &'static str,
    /// Whether it streamed.
    pub stream: bool,
    /// When the request started.
    pub started: Instant,
    /// The same, as wall-clock time.
    pub started_at: DateTime<Utc>,
    /// When the first streamed event was handed to the client.
    pub ttft: Option<Duration>,
    /// Token usage reported by the upstream.
    pub usage: Usage,
    /// Price of the served model, when known.
    pub price: Option<Price>,
    /// The virtual key used, if any.
    pub key: Option<Arc<KeyEntry>>,
    /// Rate-limit slots and budget reservations, given back once the cost is charged.
    pub admitted: Option<Admitted>,
    /// The request body, redacted, when prompts are kept.
    pub request_body: Option<Value>,
    /// The response, when prompts are kept.
    pub response_body: Option<Value>,
    /// A streamed response as it is assembled, when prompts are kept.
    pub transcript: Option<Box<Transcript>>,
    /// Deployments tried, in order, with their results.
    pub attempts: Vec<Value>,
    /// Copilot premium request units the answering model uses per request.
    pub premium_units: f64,
    /// The answering deployment's in-flight slot, released when the record is finished.
    pub slot: Option<InFlight>,
    /// Where to charge and record it.
    pub sink: Option<SpendSink>,
}

impl RequestRecord {
    /// Marks the first event of a stream as sent, once.
    pub fn first_byte_sent(&mut self) {
        if self.ttft.is_none() {
            let ttft = self.started.elapsed();
            self.ttft = Some(ttft);
            self.labels.record_ttft(ttft);
        }
    }

    /// Whether request and response bodies are kept in the spend record.
    pub fn keeps_bodies(&self) -> bool {
        self.request_body.is_some()
    }

    /// Records the end of the request: metrics, the log line, the charge and the spend record.
    pub fn finish(mut self, status: u16, outcome: Outcome) {
        let latency = self.started.elapsed();
        let u = self.usage;
        let cost = self
            .price
            .map_or(0.0, |p| p.cost(u.prompt_tokens, u.completion_tokens, u.cached_tokens));
        self.labels.record_request(status, latency);
        self.labels.record_tokens(u.prompt_tokens, u.completion_tokens, u.cached_tokens);
        // Upstream failures were counted attempt by attempt; a broken stream is counted here,
        // where it is known.
        if let Outcome::StreamFailed(reason) = outcome {
            self.labels.record_upstream_error(reason);
        }
        log::finished(&self, status, outcome, latency, cost);
        // A request no deployment answered used no premium requests.
        let premium_units = match outcome {
            Outcome::UpstreamFailed(_) => 0.0,
            _ => self.premium_units,
        };
        if premium_units > 0.0 {
            crate::metrics::record_premium_units(&self.labels, premium_units);
        }
        if let Some(slot) = self.slot.take() {
            let health = &slot.deployment().health;
            health.add_tokens(Instant::now(), u.prompt_tokens + u.completion_tokens);
            if outcome == Outcome::Success && u.completion_tokens > 0 {
                health.record_completion(u.completion_tokens);
            }
        }
        let admitted = self.admitted.take();
        let Some(sink) = self.sink.take() else { return };
        if let Some(t) = self.transcript.take() {
            self.response_body = Some(t.into_value());
        }
        if let Some(body) = &mut self.response_body {
            crate::redact::redact(body);
        }
        let record = row::spend_record(self, status, outcome, cost, premium_units, latency);
        sink.directory.charge(&record);
        if let Some(admitted) = &admitted {
            admitted.charge_tokens((record.prompt_tokens + record.completion_tokens).max(0) as u64);
        }
        // The cost is counted now, so the reservation can go.
        drop(admitted);
        sink.writer.record(record);
    }
}

/// Holds a record until it is finished; if dropped first (the client went away mid-stream),
/// records the request as disconnected so nothing goes unaccounted.
#[derive(Debug)]
pub struct RecordGuard(Option<RequestRecord>);

impl RecordGuard {
    /// Guards a record.
    pub fn new(record: RequestRecord) -> Self {
        Self(Some(record))
    }

    /// The record, while unfinished.
    pub fn get_mut(&mut self) -> Option<&mut RequestRecord> {
        self.0.as_mut()
    }

    /// Finishes the record, once.
    pub fn finish(&mut self, status: u16, outcome: Outcome) {
        if let Some(record) = self.0.take() {
            record.finish(status, outcome);
        }
    }
}

impl Drop for RecordGuard {
    fn drop(&mut self) {
        self.finish(0, Outcome::ClientDisconnected);
    }
}
