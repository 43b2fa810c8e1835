//! Spend records for tests that put them in the store directly: one answered chat request of
//! `model` at `at`, one token each way, free; tests change what they look at.

use chrono::{DateTime, Utc};
use serde_json::json;
use tollgate_store::SpendRecord;

/// A successful, anonymous chat completion of `model`, served by `openai/<model>`.
pub fn spend_record(id: &str, at: DateTime<Utc>, model: &str) -> SpendRecord {
    SpendRecord {
        request_id: id.to_owned(),
        client_request_id: None,
        started_at: at,
        ended_at: at,
        token_hash: None,
        user_id: None,
        team_id: None,
        api: "chat_completions".to_owned(),
        requested_model: model.to_owned(),
        model_group: model.to_owned(),
        served_model: format!("openai/{model}"),
        provider: "openai".to_owned(),
        prompt_tokens: 1,
        completion_tokens: 1,
        cached_tokens: 0,
        cost: 0.0,
        premium_units: 0.0,
        latency_ms: 1.0,
        ttft_ms: None,
        status: 200,
        outcome: "success".to_owned(),
        attempts: json!([]),
        stream: false,
        request_body: None,
        response_body: None,
    }
}
