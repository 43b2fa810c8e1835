//! Models: every model group and its deployments, config.yaml's and the stored ones, with
//! their state (cooling down, latest failure, requests and errors of the last 24 hours); add
//! a stored model (test its connection first) — through the same operations as `/model/*`.
//! Editing and deleting one is on its own page ([`crate::model`]).

use std::collections::HashMap;
use std::time::Instant;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use tollgate_proxy::AppState;
use tollgate_proxy::ops::deployments::{self, ShownError, Usage};
use tollgate_proxy::ops::models::{self as ops, TestConnection};
use tollgate_router::Origin;

use crate::model_form::{self, FormView, ModelForm, Tested};
use crate::page::{self, Base, DoneQuery, Errors, Frame, Submitted};
use crate::session::Signed;

/// One deployment as the page lists it.
pub(crate) struct Row {
    group: String,
    id: String,
    stored: bool,
    /// `stored`, `config.yaml`, or `built-in` (the Copilot catch-all with no config file).
    from: &'static str,
    provider: &'static str,
    upstream: String,
    host: String,
    cooling: bool,
    fallbacks: String,
    access_groups: String,
    /// Requests and errors of the last 24 hours (`None`: none, or the store did not answer).
    usage: Option<Usage>,
    last_error: Option<ShownError>,
}

#[derive(Template)]
#[template(path = "admin/models.html")]
struct ModelsPage {
    frame: Frame,
    rows: Vec<Row>,
    /// Whether the 24-hour counts could be read.
    counted: bool,
    mf: FormView,
}

pub(crate) fn host_of(url: &str) -> String {
    url.split("://").nth(1).unwrap_or(url).split('/').next().unwrap_or("").to_owned()
}

/// The API host a deployment's requests go to.
pub(crate) fn host(e: &tollgate_config::ModelEntry) -> String {
    e.api_base.as_deref().or(e.provider.default_api_base()).map(host_of).unwrap_or_default()
}

/// Where a deployment is defined, as the page says it.
pub(crate) fn origin(state: &AppState, origin: Origin) -> &'static str {
    match origin {
        Origin::Stored => "stored",
        Origin::Config if state.models().file().is_default() => "built-in",
        Origin::Config => "config.yaml",
    }
}

fn rows(state: &AppState, mut usage: HashMap<String, Usage>) -> Vec<Row> {
    let router = state.router();
    let now = Instant::now();
    router
        .catalog()
        .deployments()
        .map(|d| {
            let e = &d.entry;
            Row {
                group: e.model_name.clone(),
                id: d.id().to_owned(),
                stored: d.origin == Origin::Stored,
                from: origin(state, d.origin),
                provider: e.provider.prefix(),
                upstream: e.upstream_model.clone(),
                host: host(e),
                cooling: d.health.cooling_until(now).is_some(),
                fallbacks: e.fallbacks.join(", "),
                access_groups: e.access_groups.join(", "),
                usage: usage.remove(d.id()),
                last_error: deployments::last_error(d),
            }
        })
        .collect()
}

/// The names of the named credentials, for the form's choice; none when the store does not
/// answer (the form still takes a key).
pub(crate) async fn credential_names(state: &AppState) -> Vec<String> {
    match tollgate_proxy::ops::credentials::listing(state).await {
        Ok(list) => list.into_iter().map(|c| c.name).collect(),
        Err(e) => {
            tracing::warn!(error = %e.message(), "admin UI: credentials not listed for the model form");
            Vec::new()
        }
    }
}

/// What the page shows besides the models: a notice, the form as typed, its messages, the
/// outcome of a connection test.
struct View {
    notice: Option<String>,
    form: ModelForm,
    errors: Errors,
    tested: Option<Tested>,
    status: StatusCode,
}

impl View {
    /// The form sent back with why it was refused; nothing was saved.
    fn refused(form: ModelForm, errors: Errors) -> Self {
        Self { notice: None, form, errors, tested: None, status: StatusCode::BAD_REQUEST }
    }
}

async fn render(state: &AppState, base: &Base, signed: &Signed, view: View) -> Response {
    let View { notice, form, errors, tested, status } = view;
    let frame = Frame::new(base, signed, "Models", "models").with_notice(notice);
    let nonce = frame.nonce.clone();
    let (usage, names) =
        tokio::join!(deployments::recent_usage(state, chrono::Utc::now()), async {
            if signed.role.manages() { credential_names(state).await } else { Vec::new() }
        });
    let counted = usage.is_ok();
    let usage = usage.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "admin UI: the store did not count requests per deployment");
        HashMap::new()
    });
    let mf = FormView {
        action: "/models".to_owned(),
        test_action: "/models/test".to_owned(),
        tested,
        ..form.view(errors, &names)
    };
    let page = ModelsPage { frame, rows: rows(state, usage), counted, mf };
    page::html(status, &nonce, &page)
}

pub(crate) async fn list(
    State(state): State<AppState>,
    parts: Parts,
    signed: Signed,
    Query(q): Query<DoneQuery>,
) -> Response {
    let base = Base::of(&parts, &state);
    // Upstreams, hosts and access groups are the admin's business.
    if !signed.role.sees_all() {
        return page::refused(&base, "The models page is for admins.");
    }
    let view = View {
        notice: q.done,
        form: ModelForm::default(),
        errors: Errors::default(),
        tested: None,
        status: StatusCode::OK,
    };
    render(&state, &base, &signed, view).await
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Submitted { base, signed, form }: Submitted<ModelForm>,
) -> Response {
    if !signed.role.manages() {
        return page::refused(&base, "Only the admin changes models.");
    }
    let outcome = match form.new_model() {
        Ok(body) => ops::create(&state, &signed.actor(), body)
            .await
            .map_err(|e| model_form::field_error(&e)),
        Err(errors) => Err(errors),
    };
    match outcome {
        Ok(_) => page::done(
            &base,
            "/models",
            &format!("Model {} added; it serves from the next request.", form.model_name.trim()),
        ),
        Err(errors) => render(&state, &base, &signed, View::refused(form, errors)).await,
    }
}

/// What Test connection answers, for the form: whether it worked, and the provider's words.
pub(crate) fn tested(answer: &serde_json::Value) -> Tested {
    let ok = answer["status"] == "success";
    let detail = if ok { "The provider answered.".to_owned() } else { answer["error"].to_string() };
    (ok, detail)
}

pub(crate) async fn test(
    State(state): State<AppState>,
    Submitted { base, signed, form }: Submitted<ModelForm>,
) -> Response {
    if !signed.role.manages() {
        return page::refused(&base, "Only the admin tests models.");
    }
    let litellm_params = match form.new_model() {
        Ok(body) => body.litellm_params,
        Err(errors) => return render(&state, &base, &signed, View::refused(form, errors)).await,
    };
    let mode = Some(form.mode().to_owned());
    let view = match ops::test_connection(&state, TestConnection { litellm_params, mode }).await {
        Ok(answer) => View {
            notice: None,
            form,
            errors: Errors::default(),
            tested: Some(tested(&answer)),
            status: StatusCode::OK,
        },
        Err(e) => View::refused(form, model_form::field_error(&e)),
    };
    render(&state, &base, &signed, view).await
}
