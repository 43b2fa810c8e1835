//! What happened to one proxied request: usage, cost, timings and outcome, recorded exactly
//! once — when it finishes, fails, or its client goes away — as metrics, a log line, a
//! charge against the caller's budgets, and a spend record for the batched writer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;
use tollgate_protocol::openai::Usage;
use tollgate_router::InFlight;
use tollgate_router::pricing::Price;
use tollgate_store::{SpendRecord, SpendWriter};

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
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::UpstreamFailed(_) => "upstream_failed",
            Self::StreamFailed(_) => "stream_failed",
            Self::ClientDisconnected => "client_disconnected",
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
    /// Rate-limit slots, released when the record is finished.
    pub admitted: Option<Admitted>,
    /// The request body, redacted, when prompts are kept.
    pub request_body: Option<Value>,
    /// The response, when prompts are kept.
    pub response_body: Option<Value>,
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

    /// Records the end of the request: metrics, the log line, the charge and the spend record.
    pub fn finish(mut self, status: u16, outcome: Outcome) {
        let latency = self.started.elapsed();
        let u = self.usage;
        let cost = self
            .price
            .map_or(0.0, |p| p.cost(u.prompt_tokens, u.completion_tokens, u.cached_tokens));
        self.labels.record_request(status, latency);
        self.labels.record_tokens(u.prompt_tokens, u.completion_tokens, u.cached_tokens);
        let error = match outcome {
            Outcome::UpstreamFailed(r) | Outcome::StreamFailed(r) => {
                self.labels.record_upstream_error(r);
                Some(r)
            }
            _ => None,
        };
        tracing::info!(
            request_id = %self.request_id.id,
            client_request_id = self.request_id.client.as_deref(),
            api = self.labels.api,
            model = %self.requested_model,
            model_group = %self.labels.model_group,
            served_model = %self.served_model,
            key = self.key.as_ref().map(|k| k.record.key_name.as_str()),
            stream = self.stream,
            status,
            outcome = outcome.as_str(),
            error,
            latency_ms = latency.as_secs_f64() * 1000.0,
            ttft_ms = self.ttft.map(|t| t.as_secs_f64() * 1000.0),
            prompt_tokens = u.prompt_tokens,
            completion_tokens = u.completion_tokens,
            cost,
            "request"
        );
        // A request no deployment answered used no premium requests.
        let premium_units = match outcome {
            Outcome::UpstreamFailed(_) => 0.0,
            _ => self.premium_units,
        };
        if premium_units > 0.0 {
            // Multipliers can be fractional (0.33), so the running total is a float gauge.
            metrics::gauge!(
                crate::metrics::COPILOT_PREMIUM_UNITS,
                "model_group" => self.labels.model_group.clone()
            )
            .increment(premium_units);
        }
        // Slots are free before the record is queued, so a waiting request is not held up.
        drop(self.admitted.take());
        if let Some(slot) = self.slot.take() {
            slot.deployment()
                .health
                .add_tokens(Instant::now(), u.prompt_tokens + u.completion_tokens);
        }
        let Some(sink) = self.sink.take() else { return };
        let key = self.key.as_ref().map(|k| &k.record);
        let record = SpendRecord {
            request_id: self.request_id.id,
            client_request_id: self.request_id.client,
            started_at: self.started_at,
            ended_at: Utc::now(),
            token_hash: key.map(|k| k.token_hash.clone()),
            user_id: key.and_then(|k| k.user_id.clone()),
            team_id: key.and_then(|k| k.team_id.clone()),
            api: self.labels.api.to_owned(),
            requested_model: self.requested_model,
            model_group: self.labels.model_group.to_string(),
            served_model: self.served_model.clone(),
            provider: self.provider.to_owned(),
            prompt_tokens: u.prompt_tokens as i64,
            completion_tokens: u.completion_tokens as i64,
            cached_tokens: u.cached_tokens as i64,
            cost,
            premium_units,
            latency_ms: latency.as_secs_f64() * 1000.0,
            ttft_ms: self.ttft.map(|t| t.as_secs_f64() * 1000.0),
            status: i32::from(status),
            outcome: outcome.as_str().to_owned(),
            attempts: Value::Array(self.attempts),
            stream: self.stream,
            request_body: self.request_body,
            response_body: self.response_body,
        };
        sink.directory.charge(&record);
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
