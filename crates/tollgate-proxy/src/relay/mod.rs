//! Forwarding a request along its fallback plan: each attempt goes to one deployment; a
//! failure before anything reached the client moves to the next step (a retry, or the next
//! model group), and the first answer is relayed — whole, or event by event.

mod attempt;
mod shape;
mod stream;
mod strip;

use std::time::Instant;

use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tollgate_providers::Endpoint;
use tollgate_router::{InFlight, Step};

pub use attempt::{Answer, Failure};
pub use shape::Shape;
pub use stream::OpenStream;

use crate::access::admit;
use crate::auth::Principal;
use crate::error::{ApiError, Protocol};
use crate::metrics::{self, RequestLabels};
use crate::record::{Outcome, RecordGuard, RequestRecord};
use crate::state::AppState;

/// The deployment that answered, on every proxied response.
pub const SERVED_MODEL: HeaderName = HeaderName::from_static("x-tollgate-served-model");
/// How many attempts the request took.
pub const ATTEMPTS: HeaderName = HeaderName::from_static("x-tollgate-attempts");

/// Marks a response whose request was accounted (and logged) by its record.
#[derive(Debug, Clone, Copy)]
pub struct Accounted;

/// One client request to forward.
#[derive(Debug)]
pub struct Call {
    /// API name for metrics and logs.
    pub api: &'static str,
    /// Upstream operation.
    pub endpoint: Endpoint,
    /// The caller's protocol, for errors.
    pub protocol: Protocol,
    /// The model the client asked for.
    pub model: String,
    /// The request as the client sent it, parsed.
    pub body: Value,
    /// The same, as the client's bytes: forwarded with only `model` changed when the
    /// deployment speaks the client's protocol.
    pub raw: bytes::Bytes,
    /// The client's `anthropic-version`.
    pub anthropic_version: Option<String>,
    /// The client's `anthropic-beta` flags.
    pub anthropic_beta: Vec<String>,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// Whether the client asked for the trailing usage chunk.
    pub include_usage: bool,
    /// The request id.
    pub request_id: String,
    /// Who is calling.
    pub caller: Principal,
    /// Whether the last message is the user's own text (not a tool result).
    pub initiator_user: bool,
    /// Whether the request carries images.
    pub vision: bool,
    /// Whether the history holds thinking blocks.
    pub has_thinking: bool,
    /// The client's own Claude token, used for Anthropic deployments without a key in
    /// pass-through mode; never sent anywhere else.
    pub claude_token: Option<String>,
}

impl Call {
    /// Whose Copilot account serves the call: the key's own when it linked one.
    pub fn account_owner(&self) -> Option<String> {
        self.caller.copilot_owner()
    }
}

/// Resolves the model's plan, admits the caller, and tries deployments until one answers.
pub async fn forward(state: &AppState, call: Call) -> Response {
    let protocol = call.protocol;
    match run(state, call).await {
        Ok(r) => r,
        Err(e) => e.in_protocol(protocol).into_response(),
    }
}

async fn run(state: &AppState, call: Call) -> Result<Response, ApiError> {
    let router = state.router();
    let mut plan = router
        .plan(&call.model)
        .ok_or_else(|| ApiError::unknown_model(&call.model, router.catalog().model_names()))?;
    let key = call.caller.key().cloned();
    let admitted = match &key {
        Some(k) => Some(admit(state.directory(), k, &plan.routes()[0], &call.model)?),
        None => None,
    };
    let request_body = state.settings().store_prompts.then(|| {
        let mut body = call.body.clone();
        crate::redact::redact(&mut body);
        body
    });
    let started = Instant::now();
    let Some(mut step) = plan.first(started) else {
        return Err(ApiError::unknown_model(&call.model, router.catalog().model_names()));
    };
    let mut record = RequestRecord {
        request_id: call.request_id.clone(),
        labels: labels(call.api, &step),
        requested_model: call.model.clone(),
        served_model: step.route.served_model(&step.deployment),
        provider: step.deployment.entry.provider.prefix(),
        stream: call.stream,
        started,
        started_at: chrono::Utc::now(),
        ttft: None,
        usage: Default::default(),
        price: None,
        key,
        admitted,
        request_body,
        response_body: None,
        attempts: Vec::new(),
        premium_units: 0.0,
        slot: None,
        sink: Some(state.sink().clone()),
    };

    loop {
        if !step.wait.is_zero() {
            tokio::time::sleep(step.wait).await;
        }
        let attempt_started = Instant::now();
        let upstream_model = step.route.upstream_model(&step.deployment);
        record.labels = labels(call.api, &step);
        record.served_model = step.route.served_model(&step.deployment);
        record.provider = step.deployment.entry.provider.prefix();
        record.price = tollgate_router::pricing::price_for(&step.deployment.entry, &upstream_model);
        let terms = state
            .providers()
            .terms(
                &step.deployment.entry,
                call.endpoint,
                &upstream_model,
                call.account_owner().as_deref(),
            )
            .await;
        record.premium_units = terms.premium_multiplier.unwrap_or(0.0);
        let slot = InFlight::enter(&step.deployment, attempt_started);

        match attempt::send(state, &call, &step, &upstream_model, &terms).await {
            Ok(answer) => {
                step.deployment.health.record_success(attempt_started.elapsed());
                record.attempts.push(json!({
                    "deployment": step.deployment.label(),
                    "served_model": record.served_model,
                    "outcome": "answered",
                    "latency_ms": attempt_started.elapsed().as_secs_f64() * 1000.0,
                }));
                record.slot = Some(slot);
                let tries = record.attempts.len();
                let served = record.served_model.clone();
                let response = deliver(answer, record, &call);
                return Ok(decorate(response, &served, tries));
            }
            Err(failure) => {
                drop(slot);
                let now = Instant::now();
                record.attempts.push(json!({
                    "deployment": step.deployment.label(),
                    "served_model": record.served_model,
                    "outcome": failure.kind.as_str(),
                    "status": failure.error.status().as_u16(),
                    "latency_ms": attempt_started.elapsed().as_secs_f64() * 1000.0,
                }));
                record.labels.record_upstream_error(failure.reason);
                let settings = router.settings();
                if let Some(until) = step.deployment.health.record_failure(
                    now,
                    failure.kind,
                    failure.retry_after,
                    settings,
                ) {
                    tracing::warn!(
                        deployment = step.deployment.label(),
                        reason = failure.kind.as_str(),
                        cooldown_s = until.saturating_duration_since(now).as_secs_f64(),
                        "deployment cooling down"
                    );
                }
                match plan.after_failure(failure.kind, failure.retry_after, now) {
                    Some(next) => {
                        log_next_step(&call, &step, &next, &failure);
                        step = next;
                    }
                    None => {
                        let tries = record.attempts.len();
                        let served = record.served_model.clone();
                        let status = failure.error.status().as_u16();
                        RecordGuard::new(record)
                            .finish(status, Outcome::UpstreamFailed(failure.reason));
                        let response = failure.error.in_protocol(call.protocol).into_response();
                        return Ok(decorate(response, &served, tries));
                    }
                }
            }
        }
    }
}

fn labels(api: &'static str, step: &Step) -> RequestLabels {
    RequestLabels {
        api,
        model_group: step.route.group.shared_name(),
        deployment: step.deployment.shared_label(),
    }
}

fn log_next_step(call: &Call, from: &Step, to: &Step, failure: &Failure) {
    let from_served = from.route.served_model(&from.deployment);
    let to_served = to.route.served_model(&to.deployment);
    if to.is_fallback {
        metrics::record_fallback(
            &from.route.group.name,
            &to.route.group.name,
            failure.kind.as_str(),
        );
        tracing::info!(
            request_id = %call.request_id,
            from = %from_served,
            to = %to_served,
            reason = failure.kind.as_str(),
            status = failure.error.status().as_u16(),
            "falling back"
        );
    } else {
        metrics::record_retry(&from.route.group.name, failure.kind.as_str());
        tracing::info!(
            request_id = %call.request_id,
            deployment = %from_served,
            next = %to_served,
            reason = failure.kind.as_str(),
            wait_ms = to.wait.as_millis() as u64,
            "retrying"
        );
    }
}

/// Hands the answer to the client with its record: whole bodies are accounted at once,
/// streams when they end (or their client goes away).
fn deliver(answer: Answer, mut record: RequestRecord, call: &Call) -> Response {
    match answer {
        Answer::Whole { status, body, shape, strip } => {
            let created = record.started_at.timestamp().max(0) as u64;
            let body = match (strip, shape.upstream_is_anthropic()) {
                (false, _) => body,
                (true, true) => strip::anthropic_whole(body),
                (true, false) => strip::openai_whole(body),
            };
            let (body, usage) = match shape.whole(body, &call.model, created) {
                Ok(translated) => translated,
                Err(e) => {
                    let status = e.status().as_u16();
                    RecordGuard::new(record)
                        .finish(status, Outcome::UpstreamFailed("invalid_response"));
                    return e.in_protocol(call.protocol).into_response();
                }
            };
            record.usage = usage;
            if record.request_body.is_some() {
                record.response_body = serde_json::from_slice(&body).ok().map(|mut v| {
                    crate::redact::redact(&mut v);
                    v
                });
            }
            RecordGuard::new(record).finish(status.as_u16(), Outcome::Success);
            let mut response = (status, body).into_response();
            response.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Answer::Stream(open, shape, strip) => {
            let strip = strip.then(strip::Strip::default);
            open.into_response(RecordGuard::new(record), shape, strip)
        }
    }
}

fn decorate(mut response: Response, served: &str, attempts: usize) -> Response {
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(served) {
        headers.insert(SERVED_MODEL, v);
    }
    headers.insert(ATTEMPTS, HeaderValue::from(attempts));
    response.extensions_mut().insert(Accounted);
    response
}
