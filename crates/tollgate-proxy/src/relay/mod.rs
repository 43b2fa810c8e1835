//! Forwarding a request along its fallback plan: each attempt goes to one deployment the
//! caller may use; a failure before anything reached the client moves to the next step (a
//! retry, or the next model group), and the first answer is relayed — whole, or event by
//! event.

mod attempt;
mod deliver;
mod shape;
mod stream;
mod strip;
pub mod trail;

use std::time::{Instant, SystemTime};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tollgate_config::PremiumBudgetExceeded;
use tollgate_protocol::{Operation, Protocol};
use tollgate_providers::CallTerms;
use tollgate_router::{FailureKind, InFlight, LastError, Step};

pub use attempt::{Answer, Failure, passthrough_credential};
pub use shape::Shape;
pub use stream::OpenStream;
pub use trail::{ATTEMPTED, ATTEMPTS, Accounted, SERVED_MODEL};

use crate::access::{Access, estimate};
use crate::auth::{Denied, Principal};
use crate::body::PendingBody;
use crate::error::ApiError;
use crate::metrics::{self, RequestLabels};
use crate::record::{Outcome, RecordGuard, Refusal, RequestRecord, Transcript};
use crate::request_id::RequestId;
use crate::state::AppState;

/// One client request to forward.
#[derive(Debug)]
pub struct Call {
    /// API name for metrics and logs.
    pub api: &'static str,
    /// What the client asked for, in its protocol.
    pub operation: Operation,
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
    /// The request's ids.
    pub request_id: RequestId,
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
    /// An embeddings request of `caller` for `model` (`body` as `raw` holds it): nothing of
    /// the chat protocols applies.
    pub fn embeddings(
        model: String,
        body: Value,
        raw: bytes::Bytes,
        request_id: RequestId,
        caller: Principal,
    ) -> Self {
        Self {
            api: "embeddings",
            operation: Operation::Embeddings,
            model,
            body,
            raw,
            anthropic_version: None,
            anthropic_beta: Vec::new(),
            stream: false,
            include_usage: false,
            request_id,
            caller,
            initiator_user: true,
            vision: false,
            claude_token: None,
            has_thinking: false,
        }
    }

    /// The client's protocol.
    pub fn protocol(&self) -> Protocol {
        self.operation.protocol()
    }

    /// Whose Copilot account serves the call: the key's own when it linked one.
    pub fn account_owner(&self) -> Option<String> {
        self.caller.copilot_owner()
    }
}

/// Resolves the model's plan, admits the caller, and tries deployments until one answers.
pub async fn forward(state: &AppState, call: Call) -> Response {
    run(state, call).await.unwrap_or_else(IntoResponse::into_response)
}

/// Answers a model API request whose credential was refused. Every refusal is counted and
/// logged; one of an existing key (blocked, expired, team blocked) also leaves a spend record,
/// with the model read from the body when it can be.
pub async fn denied(
    state: &AppState,
    api: &'static str,
    request_id: &RequestId,
    body: PendingBody,
    denied: Denied,
) -> Response {
    #[derive(serde::Deserialize, Default)]
    struct Peek {
        #[serde(default)]
        model: Option<String>,
        #[serde(default)]
        stream: Option<bool>,
    }
    // Only an existing key's refusal is worth reading the body for.
    let peek = match denied.key {
        Some(_) => match body.read().await {
            Ok(raw) => serde_json::from_slice::<Peek>(&raw).unwrap_or_default(),
            Err(_) => Peek::default(),
        },
        None => Peek::default(),
    };
    Refusal {
        request_id,
        api,
        requested_model: peek.model.as_deref().unwrap_or_default(),
        model_group: "",
        key: denied.key.as_ref(),
        stream: peek.stream.unwrap_or(false),
        started_at: chrono::Utc::now(),
    }
    .record(state.sink(), &denied.error);
    denied.error.into_response()
}

/// Records a refusal of `call` and hands back the error to answer with.
fn refuse(state: &AppState, call: &Call, model_group: &str, error: ApiError) -> ApiError {
    Refusal {
        request_id: &call.request_id,
        api: call.api,
        requested_model: &call.model,
        model_group,
        key: call.caller.key(),
        stream: call.stream,
        started_at: chrono::Utc::now(),
    }
    .record(state.sink(), &error);
    error
}

async fn run(state: &AppState, call: Call) -> Result<Response, ApiError> {
    let router = state.router();
    let unknown = || ApiError::unknown_model(&call.model, router.catalog().model_names());
    let mut plan = router.plan(&call.model).ok_or_else(unknown)?;
    let access = call.caller.key().map(|k| Access::of(state.directory(), k));
    if let Some(access) = &access {
        let primary = &plan.routes()[0];
        if let Err(e) = access.check_model(primary) {
            let group = primary.group.name.clone();
            return Err(refuse(state, &call, &group, e));
        }
        // Fallbacks the caller may not use are passed over, never sent (nor charged).
        let allowed = access.clone();
        plan.restrict(move |route| allowed.allows(route));
    }
    let started = Instant::now();
    let mut step = plan.first(started).ok_or_else(unknown)?;
    let admitted = match &access {
        Some(access) => {
            let upstream_model = step.route.upstream_model(&step.deployment);
            let reserve = estimate::reservation(
                tollgate_router::pricing::price_for(&step.deployment.entry, &upstream_model),
                call.raw.len(),
                estimate::max_output_tokens(&call.body),
                step.deployment.health.typical_completion_tokens(),
            );
            match access.admit(reserve, state.counters()).await {
                Ok(a) => Some(a),
                Err(e) => return Err(refuse(state, &call, &step.route.group.name, e)),
            }
        }
        None => None,
    };
    let keep_bodies = state.settings().store_prompts;
    let mut record = RequestRecord {
        request_id: call.request_id.clone(),
        labels: labels(call.api, &step),
        requested_model: call.model.clone(),
        served_model: String::new(),
        provider: step.deployment.entry.provider.prefix(),
        stream: call.stream,
        started,
        started_at: chrono::Utc::now(),
        ttft: None,
        usage: Default::default(),
        price: None,
        key: call.caller.key().cloned(),
        admitted,
        request_body: keep_bodies.then(|| {
            let mut body = call.body.clone();
            crate::redact::redact(&mut body);
            body
        }),
        response_body: None,
        transcript: (keep_bodies && call.stream)
            .then(|| Box::new(Transcript::new(call.protocol()))),
        attempts: Vec::new(),
        premium_units: 0.0,
        slot: None,
        sink: Some(state.sink().clone()),
    };
    note_passed_over(&mut record, plan.passed_over());

    loop {
        if !step.wait.is_zero() {
            tokio::time::sleep(step.wait).await;
        }
        let attempt_started = Instant::now();
        let upstream_model = step.route.upstream_model(&step.deployment);
        let terms = aim(state, &call, &mut record, &step, &upstream_model).await;
        let units = record.premium_units;
        let copilot = copilot_account(state, &call, &step);
        let afford = afford(state, &call, access.as_ref(), &mut record, copilot.as_deref()).await;
        if let Err(passed) = afford {
            record.attempts.push(trail::passed_for_premium(
                &step,
                &record.served_model,
                units,
                passed.outcome,
            ));
            let next = if passed.fall_back { plan.pass_over(Instant::now()) } else { None };
            note_passed_over(&mut record, plan.passed_over());
            let Some(next) = next else {
                // Nothing was sent: no premium request was used.
                record.premium_units = 0.0;
                let summary = trail::Summary::of("", &record.attempts);
                let refusal = passed.refusal;
                metrics::record_refusal(call.api, refusal.code().unwrap_or(passed.outcome));
                RecordGuard::new(record).finish(refusal.status().as_u16(), Outcome::Refused);
                return Ok(summary.decorate(refusal.into_response()));
            };
            log_premium_fallback(&call, &step, &next, units, passed.outcome);
            step = next;
            continue;
        }
        let slot = InFlight::enter(&step.deployment, attempt_started);

        match attempt::send(state, &call, &step, &upstream_model, &terms).await {
            Ok(answer) => {
                let latency = attempt_started.elapsed();
                step.deployment.health.record_success(latency);
                let ms = latency.as_secs_f64() * 1000.0;
                record.attempts.push(trail::answered(&step, &record.served_model, ms));
                record.slot = Some(slot);
                let summary = trail::Summary::of(&record.served_model, &record.attempts);
                return Ok(summary.decorate(deliver::deliver(answer, record)));
            }
            Err(failure) => {
                drop(slot);
                let now = Instant::now();
                let ms = attempt_started.elapsed().as_secs_f64() * 1000.0;
                record.attempts.push(trail::failed(&step, &record.served_model, &failure, ms));
                record.labels.record_upstream_error(failure.reason);
                // Copilot's 402 says the account's premium requests are used up, for every
                // premium model on it.
                let used_up = failure.kind == FailureKind::QuotaExceeded
                    && failure.error.status() == StatusCode::PAYMENT_REQUIRED;
                if let Some(owner) = copilot.as_deref() {
                    if used_up {
                        if state.quota().exhausted(owner) {
                            announce_used_up(state, owner);
                        }
                    } else {
                        // Not answered, so not billed.
                        state.quota().give_back(owner, units);
                    }
                }
                cool_down(state, &step, &failure, now);
                let next = plan.after_failure(failure.kind, failure.retry_after, now);
                note_passed_over(&mut record, plan.passed_over());
                match next {
                    Some(next) => {
                        log_next_step(&call, &step, &next, &failure);
                        step = next;
                    }
                    None => {
                        let summary = trail::Summary::of(&record.served_model, &record.attempts);
                        let status = failure.error.status().as_u16();
                        RecordGuard::new(record)
                            .finish(status, Outcome::UpstreamFailed(failure.reason));
                        let response = failure.error.into_response();
                        return Ok(summary.decorate(response));
                    }
                }
            }
        }
    }
}

/// Points the record at the step about to be tried — who serves, at what price — and
/// returns the terms the provider settled for it (wire format, billing) in one lookup.
async fn aim(
    state: &AppState,
    call: &Call,
    record: &mut RequestRecord,
    step: &Step,
    upstream_model: &str,
) -> CallTerms {
    let entry = &step.deployment.entry;
    let terms = state
        .providers()
        .terms(entry, call.operation, upstream_model, call.account_owner().as_deref())
        .await;
    record.labels = labels(call.api, step);
    record.served_model = step.route.served_model(&step.deployment);
    record.provider = entry.provider.prefix();
    record.price = tollgate_router::pricing::price_for(entry, upstream_model);
    // Copilot bills a premium request for the user's own turn (`X-Initiator: user`), not for
    // the turns an agent sends with tool results.
    record.premium_units =
        if call.initiator_user { terms.premium_multiplier.unwrap_or(0.0) } else { 0.0 };
    terms
}

fn note_passed_over(record: &mut RequestRecord, routes: Vec<tollgate_router::Route>) {
    record.attempts.extend(routes.iter().map(trail::not_allowed));
}

/// A failed attempt's mark on its deployment: the latest error the console shows, and a
/// cooldown when the failures call for one.
fn cool_down(state: &AppState, step: &Step, failure: &Failure, now: Instant) {
    let status = failure.error.status().as_u16();
    let last = LastError::new(SystemTime::now(), failure.kind, status, failure.error.message());
    step.deployment.health.note_error(last);
    let router = state.router();
    if let Some(until) = step.deployment.health.record_failure(
        now,
        failure.kind,
        failure.retry_after,
        router.settings(),
    ) {
        state.counters().share_cooldown(step.deployment.id(), until.saturating_duration_since(now));
        tracing::warn!(
            deployment = step.deployment.label(),
            reason = failure.kind.as_str(),
            cooldown_s = until.saturating_duration_since(now).as_secs_f64(),
            "deployment cooling down"
        );
    }
}

fn labels(api: &'static str, step: &Step) -> RequestLabels {
    RequestLabels::new(api, step.route.group.shared_name(), step.deployment.shared_label())
}

/// Why a step was passed over for its premium requests, and what to answer if nothing after
/// it may be tried.
struct PassedOver {
    /// `premium_budget` (a budget of the caller) or `premium_quota` (the Copilot account's).
    outcome: &'static str,
    /// Whether the request may move on down its chain.
    fall_back: bool,
    refusal: ApiError,
}

/// The linked Copilot account a step on a Copilot deployment is sent with.
fn copilot_account(state: &AppState, call: &Call, step: &Step) -> Option<String> {
    if step.deployment.entry.provider != tollgate_config::ProviderKind::GithubCopilot {
        return None;
    }
    let service = state.providers().copilot();
    service.account_for(call.account_owner().as_deref()).map(|a| a.id.clone())
}

/// Whether the step's premium requests may be spent: the Copilot account it goes to must have
/// them left (beyond the reserve kept for admins), and the caller's premium budgets must have
/// room, which then hold them for the attempt.
async fn afford(
    state: &AppState,
    call: &Call,
    access: Option<&Access>,
    record: &mut RequestRecord,
    copilot: Option<&str>,
) -> Result<(), PassedOver> {
    let units = record.premium_units;
    if let Some(owner) = copilot.filter(|_| units > 0.0) {
        let service = state.providers().copilot();
        // The reserve is the shared seat's; a key's own linked account keeps all of its own.
        let shared = service.account_for(None).is_some_and(|a| a.id == owner);
        let keep = if shared && !call.caller.is_admin(state.directory()) {
            state.router().settings().copilot_premium_reserve
        } else {
            0.0
        };
        if let Err(left) = state.quota().take(service, owner, units, keep).await {
            let kept =
                if keep > 0.0 { format!(" ({keep} kept for admins)") } else { String::new() };
            let refusal = ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                format!(
                    "The Copilot account `{owner}` has {left} premium requests left{kept}, and \
                     `{}` takes {units} a request; included models still answer.",
                    record.served_model
                ),
            )
            .with_code("premium_quota_exhausted");
            return Err(PassedOver { outcome: "premium_quota", fall_back: true, refusal });
        }
    }
    let (Some(access), Some(admitted)) = (access, record.admitted.as_mut()) else { return Ok(()) };
    access.hold_premium(admitted, units, &record.served_model).map_err(|refusal| {
        if let Some(owner) = copilot {
            state.quota().give_back(owner, units);
        }
        let fall_back =
            state.router().settings().premium_budget_exceeded == PremiumBudgetExceeded::Fallback;
        PassedOver { outcome: "premium_budget", fall_back, refusal }
    })
}

/// Tells every process on the database that `owner`'s Copilot account has used up its
/// premium requests, behind the request's back.
fn announce_used_up(state: &AppState, owner: &str) {
    let (store, owner) = (state.store().clone(), owner.to_owned());
    tokio::spawn(async move {
        let kind = tollgate_store::EntityKind::CopilotQuota;
        if let Err(e) = store.announce(kind, &owner).await {
            tracing::warn!(%owner, error = %e, "cannot tell other processes the Copilot quota is used up");
        }
    });
}

/// A step passed over for its premium requests (`reason`: the caller's budget or the
/// account's quota).
fn log_premium_fallback(call: &Call, from: &Step, to: &Step, units: f64, reason: &'static str) {
    metrics::record_fallback(&from.route.group.name, &to.route.group.name, reason);
    tracing::info!(
        request_id = %call.request_id,
        from = %from.route.served_model(&from.deployment),
        to = %to.route.served_model(&to.deployment),
        premium_units = units,
        reason,
        "falling back"
    );
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
