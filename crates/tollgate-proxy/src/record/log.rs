//! The one log line each proxied request writes.

use std::time::Duration;

use super::{Outcome, RequestRecord};

/// Logs a finished request.
pub(super) fn finished(
    r: &RequestRecord,
    status: u16,
    outcome: Outcome,
    latency: Duration,
    cost: f64,
) {
    let error = match outcome {
        Outcome::UpstreamFailed(reason) | Outcome::StreamFailed(reason) => Some(reason),
        _ => None,
    };
    let u = r.usage;
    tracing::info!(
        request_id = %r.request_id.id,
        client_request_id = r.request_id.client.as_deref(),
        api = r.labels.api,
        model = %r.requested_model,
        model_group = %r.labels.model_group,
        served_model = %r.served_model,
        key = r.key.as_ref().map(|k| k.record.key_name.as_str()),
        stream = r.stream,
        status,
        outcome = outcome.as_str(),
        error,
        latency_ms = latency.as_secs_f64() * 1000.0,
        ttft_ms = r.ttft.map(|t| t.as_secs_f64() * 1000.0),
        prompt_tokens = u.prompt_tokens,
        completion_tokens = u.completion_tokens,
        cost,
        "request"
    );
}
