//! `POST /v1/messages/count_tokens`: forwarded to Anthropic-format upstreams, which count
//! exactly; estimated here with OpenAI's `o200k_base` tokenizer for everything else.

use axum::Extension;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;
use tollgate_protocol::json_edit::set_top_level;
use tollgate_protocol::openai::parse_object;
use tollgate_protocol::{Operation, Protocol};
use tollgate_providers::CallContext;

use super::messages::{anthropic_headers, passthrough_token};
use super::{RequestId, respond};
use crate::access::Access;
use crate::auth::Principal;
use crate::body::PendingBody;
use crate::error::ApiError;
use crate::extract::ModelCaller;
use crate::metrics::RequestLabels;
use crate::record::{Outcome, RecordGuard, Refusal, RequestRecord};
use crate::relay::{Accounted, denied};
use crate::state::AppState;

const API: &str = "count_tokens";

pub(super) async fn count_tokens(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    ModelCaller(caller): ModelCaller,
    headers: HeaderMap,
    body: PendingBody,
) -> Response {
    match caller {
        Ok(caller) => respond(handle(&state, request_id, caller, &headers, body).await),
        Err(d) => denied(&state, API, &request_id, body, d).await,
    }
}

async fn handle(
    state: &AppState,
    request_id: RequestId,
    caller: Principal,
    headers: &HeaderMap,
    body: PendingBody,
) -> Result<Response, ApiError> {
    let raw = body.read().await?;
    // Only the model is needed here; the texts are read in place by the estimate.
    #[derive(serde::Deserialize)]
    struct Head<'a> {
        #[serde(borrow, default)]
        model: Option<std::borrow::Cow<'a, str>>,
        #[serde(borrow, default)]
        messages: Option<&'a serde_json::value::RawValue>,
    }
    let head: Head<'_> = match tollgate_protocol::json_edit::object(&raw) {
        Ok(head) => head,
        Err(_) => {
            // The full parser names what is wrong with the body.
            parse_object(&raw)?;
            Head { model: None, messages: None }
        }
    };
    let Some(model) = head.model.as_deref().filter(|m| !m.is_empty()) else {
        return Err(tollgate_protocol::RequestError::invalid_param(
            "model",
            "Missing required parameter: 'model'.",
        )
        .into());
    };
    if !head.messages.is_some_and(|m| m.get().trim_start().starts_with('[')) {
        return Err(tollgate_protocol::RequestError::invalid_param(
            "messages",
            "Missing required parameter: 'messages'.",
        )
        .into());
    }
    let router = state.router();
    let unknown = || ApiError::unknown_model(model, router.catalog().model_names());
    let mut plan = router.plan(model).ok_or_else(unknown)?;
    // The same model access as the request it is counting for; counting costs nothing, so
    // budgets and rate limits are left alone.
    if let Some(key) = caller.key() {
        let access = Access::of(state.directory(), key);
        let primary = &plan.routes()[0];
        if let Err(e) = access.check_model(primary) {
            let refusal = Refusal {
                request_id: &request_id,
                api: API,
                requested_model: model,
                model_group: &primary.group.name,
                key: Some(key),
                stream: false,
                started_at: chrono::Utc::now(),
            };
            refusal.record(state.sink(), &e);
            return Err(e);
        }
        plan.restrict(move |route| access.allows(route));
    }
    let started = std::time::Instant::now();
    let step = plan.first(started).ok_or_else(unknown)?;
    let entry = &step.deployment.entry;
    let upstream_model = step.route.upstream_model(&step.deployment);
    let record = RequestRecord {
        request_id: request_id.clone(),
        labels: RequestLabels::new(
            API,
            step.route.group.shared_name(),
            step.deployment.shared_label(),
        ),
        requested_model: model.to_owned(),
        served_model: step.route.served_model(&step.deployment),
        provider: entry.provider.prefix(),
        stream: false,
        started,
        started_at: chrono::Utc::now(),
        ttft: None,
        usage: Default::default(),
        price: None,
        key: caller.key().cloned(),
        admitted: None,
        request_body: None,
        response_body: None,
        transcript: None,
        attempts: Vec::new(),
        premium_units: 0.0,
        slot: None,
        // Counting is not spend: metrics and the log line, no spend record.
        sink: None,
    };
    if entry.provider == tollgate_config::ProviderKind::Anthropic {
        let (anthropic_version, anthropic_beta) = anthropic_headers(headers);
        let model_json = serde_json::to_string(&upstream_model).unwrap_or_default();
        let forwarded = set_top_level(&raw, "model", &model_json)
            .map(Bytes::from)
            .unwrap_or_else(|| raw.clone());
        let claude_token = passthrough_token(state, headers);
        let ctx = CallContext {
            request_id: request_id.shown().to_owned(),
            anthropic_version,
            anthropic_beta,
            credential: crate::relay::passthrough_credential(claude_token.as_deref(), entry),
            account_owner: caller.copilot_owner(),
            ..Default::default()
        };
        let timeout = entry.timeout.unwrap_or(state.settings().request_timeout);
        let sent =
            state.providers().send(entry, Operation::CountTokens, forwarded, &ctx, timeout).await;
        match counted_upstream(sent).await {
            Ok((status, bytes)) => {
                RecordGuard::new(record).finish(status.as_u16(), Outcome::Success);
                let mut response = (status, bytes).into_response();
                response.headers_mut().insert(
                    axum::http::header::CONTENT_TYPE,
                    axum::http::HeaderValue::from_static("application/json"),
                );
                response.extensions_mut().insert(Accounted);
                return Ok(response);
            }
            Err(Counted::Refused(e)) => {
                let e = e.from_protocol(Protocol::Messages);
                RecordGuard::new(record)
                    .finish(e.status().as_u16(), Outcome::UpstreamFailed("status_4xx"));
                return Err(e);
            }
            // The upstream cannot count now; an estimate serves the client better than an error.
            Err(Counted::Unavailable(reason)) => {
                record.labels.record_upstream_error(reason);
                tracing::debug!(reason, "count_tokens upstream unavailable; estimating");
            }
        }
    }
    let tokens = crate::tokens::estimate(&raw, &crate::tokens::count_text).unwrap_or_default();
    RecordGuard::new(record).finish(200, Outcome::Success);
    let mut response = axum::Json(json!({ "input_tokens": tokens })).into_response();
    response
        .headers_mut()
        .insert("x-tollgate-token-count", axum::http::HeaderValue::from_static("estimated"));
    response.extensions_mut().insert(Accounted);
    Ok(response)
}

/// What an Anthropic-format upstream made of a count.
enum Counted {
    /// It refused the request (4xx): the client hears it in the upstream's words.
    Refused(ApiError),
    /// It could not be reached or failed; the reason for metrics.
    Unavailable(&'static str),
}

async fn counted_upstream(
    sent: Result<reqwest::Response, tollgate_providers::UpstreamError>,
) -> Result<(axum::http::StatusCode, Bytes), Counted> {
    use tollgate_providers::UpstreamError;
    let upstream = match sent {
        Ok(r) => r,
        Err(e @ UpstreamError::Status { status: 400..=428 | 430..=499, .. }) => {
            return Err(Counted::Refused(ApiError::from(e)));
        }
        Err(e) => return Err(Counted::Unavailable(e.reason())),
    };
    let status = upstream.status();
    let bytes = upstream.bytes().await.map_err(|_| Counted::Unavailable("io"))?;
    match tollgate_protocol::json_edit::object::<serde::de::IgnoredAny>(&bytes) {
        Ok(_) => Ok((status, bytes)),
        Err(_) => Err(Counted::Unavailable("invalid_response")),
    }
}
