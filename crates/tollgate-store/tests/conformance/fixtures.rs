//! Builders for test data.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde_json::json;
use tollgate_store::{NewKey, NewTeam, NewUser, SpendRecord, StoreError, TeamMember};

/// An instant from RFC 3339 text.
pub fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).expect("RFC 3339 time").with_timezone(&Utc)
}

/// Now, at the stores' microsecond precision.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A key with only its hash and display name.
pub fn key(hash: &str) -> NewKey {
    NewKey {
        token_hash: hash.to_owned(),
        key_name: format!("sk-...{}", &hash[hash.len().saturating_sub(4)..]),
        limits: long_premium_period(),
        ..NewKey::default()
    }
}

/// A user with only an id.
pub fn user(id: &str) -> NewUser {
    NewUser { user_id: id.to_owned(), limits: long_premium_period(), ..NewUser::default() }
}

/// A team with only an id.
pub fn team(id: &str) -> NewTeam {
    NewTeam { team_id: id.to_owned(), limits: long_premium_period(), ..NewTeam::default() }
}

/// No limits, and a premium period far longer than any test's clock moves, so that counts of
/// budget resets do not depend on whether a test runs across the end of a month.
fn long_premium_period() -> tollgate_store::Limits {
    tollgate_store::Limits {
        premium_budget_duration: Some("3650d".into()),
        ..tollgate_store::Limits::default()
    }
}

/// A membership.
pub fn member(user_id: &str, role: &str) -> TeamMember {
    TeamMember { user_id: user_id.to_owned(), role: role.to_owned() }
}

/// A successful chat completion costing 0.5 (binary-exact, so sums compare exactly).
pub fn record(id: &str, started_at: DateTime<Utc>) -> SpendRecord {
    SpendRecord {
        request_id: id.to_owned(),
        client_request_id: None,
        started_at,
        ended_at: started_at + Duration::milliseconds(1500),
        token_hash: None,
        user_id: None,
        team_id: None,
        api: "chat_completions".to_owned(),
        requested_model: "gpt-4o".to_owned(),
        model_group: "gpt-4o".to_owned(),
        served_model: "openai/gpt-4o".to_owned(),
        provider: "openai".to_owned(),
        prompt_tokens: 10,
        completion_tokens: 20,
        cached_tokens: 2,
        cost: 0.5,
        premium_units: 0.0,
        latency_ms: 1500.0,
        ttft_ms: Some(250.0),
        status: 200,
        outcome: "success".to_owned(),
        attempts: json!([{"deployment": "openai-1", "status": 200}]),
        stream: false,
        request_body: None,
        response_body: None,
    }
}

/// A record attributed to a key, user and team.
pub fn owned_record(
    id: &str,
    started_at: DateTime<Utc>,
    key: &str,
    user: &str,
    team: &str,
) -> SpendRecord {
    SpendRecord {
        token_hash: Some(key.to_owned()),
        user_id: Some(user.to_owned()),
        team_id: Some(team.to_owned()),
        ..record(id, started_at)
    }
}

/// Asserts an error is `NotFound` for this kind.
pub fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>, kind: &str) {
    match result {
        Err(StoreError::NotFound { kind: k, .. }) if k == kind => {}
        other => panic!("expected {kind} not found, got {other:?}"),
    }
}

/// Asserts an error is `Conflict` with a message containing `needle`.
pub fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>, needle: &str) {
    match result {
        Err(StoreError::Conflict(msg)) if msg.contains(needle) => {}
        other => panic!("expected a conflict mentioning `{needle}`, got {other:?}"),
    }
}

/// Asserts an error is `Invalid`.
pub fn assert_invalid<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    match result {
        Err(StoreError::Invalid(_)) => {}
        other => panic!("expected invalid, got {other:?}"),
    }
}

/// Whether two instants are within a few seconds (for times the store computes from its own
/// clock).
pub fn close_to(a: DateTime<Utc>, b: DateTime<Utc>) -> bool {
    (a - b).num_seconds().abs() <= 5
}
