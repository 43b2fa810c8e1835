//! The spend record a finished request leaves in the database.

use std::time::Duration;

use chrono::Utc;
use serde_json::Value;
use tollgate_store::SpendRecord;

use super::{Outcome, RequestRecord};

/// The row for `r`, which ended with `status` and `outcome`.
pub(super) fn spend_record(
    r: RequestRecord,
    status: u16,
    outcome: Outcome,
    cost: f64,
    premium_units: f64,
    latency: Duration,
) -> SpendRecord {
    let key = r.key.as_ref().map(|k| &k.record);
    let u = r.usage;
    SpendRecord {
        request_id: r.request_id.id,
        client_request_id: r.request_id.client,
        started_at: r.started_at,
        ended_at: Utc::now(),
        token_hash: key.map(|k| k.token_hash.clone()),
        user_id: key.and_then(|k| k.user_id.clone()),
        team_id: key.and_then(|k| k.team_id.clone()),
        api: r.labels.api.to_owned(),
        requested_model: r.requested_model,
        model_group: r.labels.model_group.to_string(),
        served_model: r.served_model,
        provider: r.provider.to_owned(),
        prompt_tokens: u.prompt_tokens as i64,
        completion_tokens: u.completion_tokens as i64,
        cached_tokens: u.cached_tokens as i64,
        cost,
        premium_units,
        latency_ms: latency.as_secs_f64() * 1000.0,
        ttft_ms: r.ttft.map(|t| t.as_secs_f64() * 1000.0),
        status: i32::from(status),
        outcome: outcome.as_str().to_owned(),
        attempts: Value::Array(r.attempts),
        stream: r.stream,
        request_body: r.request_body,
        response_body: r.response_body,
    }
}
