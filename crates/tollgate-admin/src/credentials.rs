//! Named credentials: provider keys that stored models refer to by name
//! (`litellm_credential_name`), so rotating one key updates every model using it. List,
//! create, replace the key, delete (refused while a stored model uses it) — the operations
//! behind `/credentials`. The admin's only; a key is never shown, not even masked.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tollgate_proxy::AppState;
use tollgate_proxy::ops::credentials::{self as ops, CredentialChange, Listed, NewCredentialBody};

use crate::page::{self, Base, DoneQuery, Errors, Frame, Submitted};
use crate::session::Signed;

/// Where a credential's provider is noted, as LiteLLM notes it.
const PROVIDER_INFO: &str = "custom_llm_provider";

/// Providers a credential can be for (Copilot uses the linked GitHub account instead).
const PROVIDERS: [&str; 3] = ["openai", "openrouter", "anthropic"];

/// The create and edit forms, as typed.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct CredentialForm {
    #[serde(default)]
    credential_name: String,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    api_key: Option<String>,
    #[serde(default)]
    api_base: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

const FORM_FIELDS: [&str; 5] =
    ["credential_name", "provider", "api_key", "api_base", "description"];

/// One credential as the list shows it.
struct Row {
    listed: Listed,
    provider: String,
    api_base: String,
    key_set: bool,
    description: String,
}

impl Row {
    fn of(listed: Listed) -> Self {
        let values = listed.values.clone().unwrap_or_default();
        let text = |m: &Map<String, Value>, k: &str| {
            m.get(k).and_then(Value::as_str).unwrap_or("").to_owned()
        };
        Self {
            provider: text(&listed.info, PROVIDER_INFO),
            description: text(&listed.info, "description"),
            api_base: text(&values, "api_base"),
            key_set: values.get("api_key").is_some_and(|v| !v.is_null()),
            listed,
        }
    }
}

/// An option of the provider select.
struct Choice {
    value: &'static str,
    selected: bool,
}

fn providers(current: &str) -> Vec<Choice> {
    std::iter::once("")
        .chain(PROVIDERS)
        .map(|value| Choice { value, selected: value == current })
        .collect()
}

#[derive(Template)]
#[template(path = "admin/credentials.html")]
struct CredentialsPage {
    frame: Frame,
    rows: Vec<Row>,
    form: CredentialForm,
    providers: Vec<Choice>,
    errors: Errors,
}

#[derive(Template)]
#[template(path = "admin/credential.html")]
struct CredentialPage {
    frame: Frame,
    row: Row,
    form: CredentialForm,
    providers: Vec<Choice>,
    errors: Errors,
}

fn admin(base: &Base, signed: &Signed) -> Result<(), Response> {
    if signed.role.manages() {
        Ok(())
    } else {
        Err(page::refused(base, "Named credentials are the admin's."))
    }
}

async fn listing(state: &AppState, base: &Base) -> Result<Vec<Listed>, Response> {
    ops::listing(state).await.map_err(|e| {
        tracing::error!(error = %e.message(), "admin UI: credentials not listed");
        page::unavailable(base)
    })
}

async fn render_list(
    state: &AppState,
    base: &Base,
    signed: &Signed,
    (form, errors, status): (CredentialForm, Errors, StatusCode),
    notice: Option<String>,
) -> Response {
    let rows = match listing(state, base).await {
        Ok(l) => l.into_iter().map(Row::of).collect(),
        Err(r) => return r,
    };
    let frame = Frame::new(base, signed, "Named credentials", "models").with_notice(notice);
    let nonce = frame.nonce.clone();
    let providers = providers(&form.provider);
    page::html(status, &nonce, &CredentialsPage { frame, rows, form, providers, errors })
}

pub(crate) async fn list(
    State(state): State<AppState>,
    parts: Parts,
    signed: Signed,
    Query(q): Query<DoneQuery>,
) -> Response {
    let base = Base::of(&parts, &state);
    if let Err(r) = admin(&base, &signed) {
        return r;
    }
    let blank = (CredentialForm::default(), Errors::default(), StatusCode::OK);
    render_list(&state, &base, &signed, blank, q.done).await
}

/// The provider and description the form notes in `info`; an empty field removes its note.
fn noted(f: &CredentialForm, mut info: Map<String, Value>) -> Result<Map<String, Value>, Errors> {
    let provider = f.provider.trim();
    if !provider.is_empty() && !PROVIDERS.contains(&provider) {
        let why = format!("Choose one of {}.", PROVIDERS.join(", "));
        return Err(Errors::from_iter([("provider".to_owned(), why)]));
    }
    for (k, v) in [
        (PROVIDER_INFO, page::text(Some(provider.to_owned()))),
        ("description", page::text(f.description.clone())),
    ] {
        match v {
            Some(v) => info.insert(k.to_owned(), json!(v)),
            None => info.remove(k),
        };
    }
    Ok(info)
}

fn refusal(e: &tollgate_proxy::ApiError) -> Errors {
    page::field_error_among(e, &FORM_FIELDS)
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Submitted { base, signed, form }: Submitted<CredentialForm>,
) -> Response {
    if let Err(r) = admin(&base, &signed) {
        return r;
    }
    let body = noted(&form, Map::new()).and_then(|info| {
        let Some(key) = page::text(form.api_key.clone()) else {
            return Err(Errors::from_iter([(
                "api_key".to_owned(),
                "A credential holds a key: type it.".to_owned(),
            )]));
        };
        let mut values = Map::new();
        values.insert("api_key".into(), json!(key));
        if let Some(b) = page::text(form.api_base.clone()) {
            values.insert("api_base".into(), json!(b));
        }
        Ok(NewCredentialBody {
            credential_name: form.credential_name.clone(),
            credential_values: values,
            credential_info: Some(info),
        })
    });
    let outcome = match body {
        Ok(body) => ops::create(&state, &signed.actor(), body).await.map_err(|e| refusal(&e)),
        Err(errors) => Err(errors),
    };
    match outcome {
        Ok(_) => page::done(
            &base,
            "/credentials",
            &format!("Credential {} stored.", form.credential_name.trim()),
        ),
        Err(errors) => {
            let typed = CredentialForm { api_key: None, ..form };
            render_list(&state, &base, &signed, (typed, errors, StatusCode::BAD_REQUEST), None)
                .await
        }
    }
}

async fn find(state: &AppState, base: &Base, name: &str) -> Result<Row, Response> {
    let all = listing(state, base).await?;
    all.into_iter()
        .find(|c| c.name == name)
        .map(Row::of)
        .ok_or_else(|| page::not_found(base, "No credential has this name."))
}

fn render_one(
    base: &Base,
    signed: &Signed,
    row: Row,
    form: Option<CredentialForm>,
    errors: Errors,
    notice: Option<String>,
) -> Response {
    let status = if errors.0.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let form = form.unwrap_or_else(|| CredentialForm {
        credential_name: row.listed.name.clone(),
        provider: row.provider.clone(),
        api_key: None,
        api_base: Some(row.api_base.clone()),
        description: Some(row.description.clone()),
    });
    let frame = Frame::new(base, signed, &row.listed.name, "models").with_notice(notice);
    let nonce = frame.nonce.clone();
    let providers = providers(&form.provider);
    page::html(status, &nonce, &CredentialPage { frame, row, form, providers, errors })
}

pub(crate) async fn detail(
    State(state): State<AppState>,
    parts: Parts,
    signed: Signed,
    Path(name): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let base = Base::of(&parts, &state);
    if let Err(r) = admin(&base, &signed) {
        return r;
    }
    match find(&state, &base, &name).await {
        Ok(row) => render_one(&base, &signed, row, None, Errors::default(), q.done),
        Err(r) => r,
    }
}

/// The edit form as a change: a typed key replaces the stored one, an empty one keeps it; the
/// API base and the notes are what the form says (empty removes them), other notes stay.
fn change(f: &CredentialForm, row: &Row) -> Result<CredentialChange, Errors> {
    let info = noted(f, row.listed.info.clone())?;
    let mut values = Map::new();
    if let Some(key) = page::text(f.api_key.clone()) {
        values.insert("api_key".into(), json!(key));
    }
    values.insert(
        "api_base".into(),
        page::text(f.api_base.clone()).map_or(Value::Null, |b| json!(b)),
    );
    Ok(CredentialChange { credential_values: Some(values), credential_info: Some(info) })
}

pub(crate) async fn act(
    State(state): State<AppState>,
    Path((name, action)): Path<(String, String)>,
    Submitted { base, signed, form }: Submitted<CredentialForm>,
) -> Response {
    if let Err(r) = admin(&base, &signed) {
        return r;
    }
    let row = match find(&state, &base, &name).await {
        Ok(row) => row,
        Err(r) => return r,
    };
    let actor = signed.actor();
    match action.as_str() {
        "update" => {
            let outcome = match change(&form, &row) {
                Ok(c) => ops::update(&state, &actor, &name, c).await.map_err(|e| refusal(&e)),
                Err(errors) => Err(errors),
            };
            match outcome {
                Ok(_) => {
                    let path = format!("/credentials/{}", page::url_encode(&name));
                    page::done(
                        &base,
                        &path,
                        "Credential saved; the models using it take it from the next request.",
                    )
                }
                Err(errors) => {
                    let typed = CredentialForm { api_key: None, credential_name: name, ..form };
                    render_one(&base, &signed, row, Some(typed), errors, None)
                }
            }
        }
        "delete" => match ops::delete(&state, &actor, &name).await {
            Ok(_) => page::done(&base, "/credentials", &format!("Credential {name} deleted.")),
            Err(e) => render_one(&base, &signed, row, None, refusal(&e), None),
        },
        _ => page::not_found(&base, "No such action."),
    }
}
