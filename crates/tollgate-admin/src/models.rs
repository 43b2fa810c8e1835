//! Models: every model group and its deployments, config.yaml's and the stored ones, with
//! their state; add a stored model (test its connection first) and delete one — through the
//! same operations as `/model/*`.

use std::collections::HashMap;
use std::time::Instant;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tollgate_proxy::AppState;
use tollgate_proxy::ops::models::{self as ops, NewModelBody, TestConnection};
use tollgate_router::Origin;

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
}

/// What the add form holds, as typed.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct ModelForm {
    #[serde(default)]
    model_name: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    api_base: Option<String>,
    #[serde(default)]
    api_key: Option<String>,
    #[serde(default)]
    credential: Option<String>,
    #[serde(default)]
    fallbacks: Option<String>,
    #[serde(default)]
    access_groups: Option<String>,
    #[serde(default)]
    input_cost_per_token: Option<String>,
    #[serde(default)]
    output_cost_per_token: Option<String>,
    #[serde(default)]
    max_input_tokens: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/models.html")]
struct ModelsPage {
    frame: Frame,
    rows: Vec<Row>,
    fields: Vec<page::Field>,
    errors: Errors,
    tested: Option<(bool, String)>,
}

fn host_of(url: &str) -> String {
    url.split("://").nth(1).unwrap_or(url).split('/').next().unwrap_or("").to_owned()
}

fn rows(state: &AppState) -> Vec<Row> {
    let router = state.router();
    let now = Instant::now();
    let file_origin = if state.models().file().is_default() { "built-in" } else { "config.yaml" };
    router
        .catalog()
        .deployments()
        .map(|d| {
            let e = &d.entry;
            Row {
                group: e.model_name.clone(),
                id: d.id().to_owned(),
                stored: d.origin == Origin::Stored,
                from: if d.origin == Origin::Stored { "stored" } else { file_origin },
                provider: e.provider.prefix(),
                upstream: e.upstream_model.clone(),
                host: e
                    .api_base
                    .as_deref()
                    .or(e.provider.default_api_base())
                    .map(host_of)
                    .unwrap_or_default(),
                cooling: d.health.cooling_until(now).is_some(),
                fallbacks: e.fallbacks.join(", "),
                access_groups: e.access_groups.join(", "),
            }
        })
        .collect()
}

/// What the page shows besides the models: a notice, the form as typed, its messages, the
/// outcome of a connection test.
struct View {
    notice: Option<String>,
    form: ModelForm,
    errors: Errors,
    tested: Option<(bool, String)>,
    status: StatusCode,
}

impl View {
    /// The form sent back with why it was refused; nothing was saved.
    fn refused(form: ModelForm, errors: Errors) -> Self {
        Self { notice: None, form, errors, tested: None, status: StatusCode::BAD_REQUEST }
    }
}

fn render(state: &AppState, base: &Base, signed: &Signed, view: View) -> Response {
    let View { notice, form, errors, tested, status } = view;
    let frame = Frame::new(base, signed, "Models", "models").with_notice(notice);
    let nonce = frame.nonce.clone();
    let f = &form;
    let fields = page::fields(
        &[
            ("model_name", "Model name clients ask for", Some(f.model_name.as_str())),
            (
                "model",
                "Provider/model (openai/gpt-4o, anthropic/claude-sonnet-4-5, github_copilot/gpt-5-mini)",
                Some(f.model.as_str()),
            ),
            ("api_base", "API base URL", f.api_base.as_deref()),
            ("credential", "Named credential (instead of a key)", f.credential.as_deref()),
            ("fallbacks", "Fallbacks (comma-separated model names)", f.fallbacks.as_deref()),
            ("access_groups", "Access groups", f.access_groups.as_deref()),
            (
                "input_cost_per_token",
                "Input price per token (USD)",
                f.input_cost_per_token.as_deref(),
            ),
            (
                "output_cost_per_token",
                "Output price per token (USD)",
                f.output_cost_per_token.as_deref(),
            ),
            ("max_input_tokens", "Context window (tokens)", f.max_input_tokens.as_deref()),
        ],
        &errors,
    );
    let page = ModelsPage { frame, rows: rows(state), fields, errors, tested };
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
    render(
        &state,
        &base,
        &signed,
        View {
            notice: q.done,
            form: ModelForm::default(),
            errors: Errors::default(),
            tested: None,
            status: StatusCode::OK,
        },
    )
}

fn list_of(v: &Option<String>) -> Vec<String> {
    v.as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The form as `litellm_params` and `model_info`, or the errors to show next to its fields.
/// `litellm_params` and `model_info`.
type Sections = (Map<String, Value>, Map<String, Value>);

fn params(f: &ModelForm) -> Result<Sections, Errors> {
    let mut errors = Vec::new();
    let mut p = Map::new();
    p.insert("model".into(), json!(f.model.trim()));
    for (k, v) in [
        ("api_base", &f.api_base),
        ("api_key", &f.api_key),
        ("litellm_credential_name", &f.credential),
    ] {
        if let Some(v) = page::text(v.clone()) {
            p.insert(k.into(), json!(v));
        }
    }
    let fallbacks = list_of(&f.fallbacks);
    if !fallbacks.is_empty() {
        p.insert("fallbacks".into(), json!(fallbacks));
    }
    let mut info = Map::new();
    let groups = list_of(&f.access_groups);
    if !groups.is_empty() {
        info.insert("access_groups".into(), json!(groups));
    }
    for (k, v) in [
        ("input_cost_per_token", &f.input_cost_per_token),
        ("output_cost_per_token", &f.output_cost_per_token),
    ] {
        if let Some(n) = page::number::<f64>(k, v, &mut errors) {
            info.insert(k.into(), json!(n));
        }
    }
    if let Some(n) = page::number::<u64>("max_input_tokens", &f.max_input_tokens, &mut errors) {
        info.insert("max_input_tokens".into(), json!(n));
    }
    if f.model.trim().is_empty() {
        errors.push(("model".into(), "Name the provider and model, e.g. openai/gpt-4o.".into()));
    }
    if errors.is_empty() { Ok((p, info)) } else { Err(errors.into_iter().collect()) }
}

/// The field an operation's refusal names: `litellm_params.api_base` is the form's `api_base`.
fn field_error(e: &tollgate_proxy::ApiError) -> Errors {
    let param = e.param().unwrap_or("form");
    let field = param.rsplit('.').next().unwrap_or(param);
    let field = if field == "litellm_credential_name" { "credential" } else { field };
    Errors(HashMap::from([(field.to_owned(), e.message().to_owned())]))
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Submitted { base, signed, form }: Submitted<ModelForm>,
) -> Response {
    if !signed.role.manages() {
        return page::refused(&base, "Only the admin changes models.");
    }
    let outcome = match params(&form) {
        Ok((litellm_params, model_info)) => {
            let body = NewModelBody {
                model_name: form.model_name.clone(),
                litellm_params,
                model_info: Some(model_info),
            };
            ops::create(&state, &signed.actor(), body).await.map_err(|e| field_error(&e))
        }
        Err(errors) => Err(errors),
    };
    match outcome {
        Ok(_) => page::done(
            &base,
            "/models",
            &format!("Model {} added; it serves from the next request.", form.model_name.trim()),
        ),
        Err(errors) => render(&state, &base, &signed, View::refused(form, errors)),
    }
}

pub(crate) async fn test(
    State(state): State<AppState>,
    Submitted { base, signed, form }: Submitted<ModelForm>,
) -> Response {
    if !signed.role.manages() {
        return page::refused(&base, "Only the admin tests models.");
    }
    let (litellm_params, _) = match params(&form) {
        Ok(p) => p,
        Err(errors) => {
            return render(&state, &base, &signed, View::refused(form, errors));
        }
    };
    let mode = if form.model.contains("embedding") { "embedding" } else { "chat" };
    match ops::test_connection(
        &state,
        TestConnection { litellm_params, mode: Some(mode.to_owned()) },
    )
    .await
    {
        Ok(answer) => {
            let ok = answer["status"] == "success";
            let detail =
                if ok { "The provider answered.".to_owned() } else { answer["error"].to_string() };
            render(
                &state,
                &base,
                &signed,
                View {
                    notice: None,
                    form,
                    errors: Errors::default(),
                    tested: Some((ok, detail)),
                    status: StatusCode::OK,
                },
            )
        }
        Err(e) => render(
            &state,
            &base,
            &signed,
            View {
                notice: None,
                form,
                errors: field_error(&e),
                tested: None,
                status: StatusCode::BAD_REQUEST,
            },
        ),
    }
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Submitted { base, signed, .. }: Submitted<HashMap<String, String>>,
) -> Response {
    if !signed.role.manages() {
        return page::refused(&base, "Only the admin changes models.");
    }
    match ops::delete(&state, &signed.actor(), &id).await {
        Ok(_) => page::done(&base, "/models", "Model deleted."),
        Err(e) => render(
            &state,
            &base,
            &signed,
            View {
                notice: None,
                form: ModelForm::default(),
                errors: field_error(&e),
                tested: None,
                status: StatusCode::BAD_REQUEST,
            },
        ),
    }
}
