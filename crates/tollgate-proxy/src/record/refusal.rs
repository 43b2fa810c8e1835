//! Requests refused before any upstream was asked: blocked or expired keys, models the key may
//! not use, budgets and rate limits. They cost nothing, but the admin needs to see who keeps
//! hitting a limit, so each leaves a metric, a log line and — for keys that exist — a spend
//! record.

use std::sync::Arc;

use chrono::Utc;
use serde_json::Value;
use tollgate_store::SpendRecord;

use super::{Outcome, SpendSink};
use crate::access::KeyEntry;
use crate::error::ApiError;
use crate::request_id::RequestId;

/// A refused request.
#[derive(Debug)]
pub struct Refusal<'a> {
    /// The request's ids.
    pub request_id: &'a RequestId,
    /// `chat_completions`, `messages`, ...
    pub api: &'static str,
    /// The model the client asked for (empty if its body could not be read).
    pub requested_model: &'a str,
    /// The model group it resolved to, if it did.
    pub model_group: &'a str,
    /// The key, when the credential named one that exists.
    pub key: Option<&'a Arc<KeyEntry>>,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// When the request started.
    pub started_at: chrono::DateTime<Utc>,
}

impl Refusal<'_> {
    /// Records the refusal answered with `error`.
    pub fn record(self, sink: &SpendSink, error: &ApiError) {
        let status = error.status().as_u16();
        let reason = error.code().unwrap_or("refused");
        crate::metrics::record_refusal(self.api, reason);
        tracing::info!(
            request_id = %self.request_id.id,
            client_request_id = self.request_id.client.as_deref(),
            api = self.api,
            model = %self.requested_model,
            key = self.key.map(|k| k.record.key_name.as_str()),
            status,
            outcome = Outcome::Refused.as_str(),
            reason,
            "request refused"
        );
        let Some(key) = self.key.map(|k| &k.record) else { return };
        let now = Utc::now();
        sink.writer.record(SpendRecord {
            request_id: self.request_id.id.clone(),
            client_request_id: self.request_id.client.clone(),
            started_at: self.started_at,
            ended_at: now,
            token_hash: Some(key.token_hash.clone()),
            user_id: key.user_id.clone(),
            team_id: key.team_id.clone(),
            api: self.api.to_owned(),
            requested_model: self.requested_model.to_owned(),
            model_group: self.model_group.to_owned(),
            served_model: String::new(),
            provider: String::new(),
            prompt_tokens: 0,
            completion_tokens: 0,
            cached_tokens: 0,
            cost: 0.0,
            premium_units: 0.0,
            latency_ms: (now - self.started_at)
                .num_microseconds()
                .map_or(0.0, |us| us as f64 / 1000.0),
            ttft_ms: None,
            status: i32::from(status),
            outcome: Outcome::Refused.as_str().to_owned(),
            attempts: Value::Array(vec![
                serde_json::json!({ "outcome": "refused", "reason": reason }),
            ]),
            stream: self.stream,
            request_body: None,
            response_body: None,
        });
    }
}
