//! One deployment's page: what it is and how it is doing (cooldown, latest failure, requests
//! of the last 24 hours); for a stored model, the edit form (Test connection with the stored
//! key where the form keeps it) and delete — the operations behind `PATCH /model/{id}/update`
//! and `/model/delete`. The admin's only: it shows where requests go.

use std::sync::Arc;
use std::time::Instant;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use serde_json::Value;
use tollgate_proxy::AppState;
use tollgate_proxy::ops::deployments::{self, ShownError, Usage};
use tollgate_proxy::ops::models::{self as ops, Merge};
use tollgate_router::{Deployment, Origin};

use crate::model_form::{self, FormView, ModelForm, Tested};
use crate::models::{credential_names, host, origin, tested};
use crate::page::{self, Base, DoneQuery, Errors, Frame, Submitted};
use crate::session::Signed;

/// What the page says of the deployment.
struct Facts {
    id: String,
    name: String,
    from: &'static str,
    /// `provider/upstream`, the host, and whether it is cooling down (for how many seconds);
    /// `None` when the model is stored but not served (it does not build).
    served: Option<(String, String, Option<u64>)>,
    usage: Option<Usage>,
    counted: bool,
    last_error: Option<ShownError>,
    /// Who stored it and when: created, updated.
    stored: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "admin/model.html")]
struct ModelPage {
    frame: Frame,
    facts: Facts,
    /// The edit form, for a stored model.
    mf: Option<FormView>,
    /// A refusal with no form to show it in.
    alert: Option<String>,
}

/// The edit form as posted, its messages and what Test connection found.
struct Typed {
    form: ModelForm,
    errors: Errors,
    tested: Option<Tested>,
}

/// A deployment as this process serves it, and its stored record's answer when it is stored.
struct Found {
    deployment: Option<Arc<Deployment>>,
    shown: Option<Value>,
}

async fn find(state: &AppState, base: &Base, id: &str) -> Result<Found, Response> {
    let deployment = state.router().catalog().deployment(id).cloned();
    let stored = deployment.as_ref().is_none_or(|d| d.origin == Origin::Stored);
    let record = if stored {
        page::read(base, "a stored model", state.store().get_model(id).await)?
    } else {
        None
    };
    if deployment.is_none() && record.is_none() {
        return Err(page::not_found(base, "No such model."));
    }
    Ok(Found { deployment, shown: record.as_ref().map(ops::stored_json) })
}

/// When and by whom, from a stored model's `created_at`/`created_by` (or `updated_…`).
fn stamp(info: &Value, at: &str, by: &str) -> String {
    let at = info[at].as_str().unwrap_or_default();
    let at = match chrono::DateTime::parse_from_rfc3339(at) {
        Ok(t) => t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        Err(_) => at.to_owned(),
    };
    match info[by].as_str() {
        Some(by) => format!("{at} by {by}"),
        None => at.to_owned(),
    }
}

/// The page with the form as typed (`form`; the stored model's own when `None`).
async fn render(
    state: &AppState,
    base: &Base,
    signed: &Signed,
    found: Found,
    typed: Option<Typed>,
    notice: Option<String>,
    status: StatusCode,
) -> Response {
    let Found { deployment, shown } = found;
    let alert = match (&shown, &typed) {
        (None, Some(t)) => t.errors.of("form"),
        _ => None,
    };
    let id = deployment.as_ref().map(|d| d.id().to_owned()).unwrap_or_else(|| {
        shown.as_ref().and_then(|s| s["model_info"]["id"].as_str()).unwrap_or("").to_owned()
    });
    let (usage, names) =
        tokio::join!(deployments::recent_usage(state, chrono::Utc::now()), async {
            if shown.is_some() { credential_names(state).await } else { Vec::new() }
        });
    let counted = usage.is_ok();
    let usage = usage.ok().and_then(|mut u| u.remove(&id));
    let now = Instant::now();
    let facts = Facts {
        name: deployment
            .as_ref()
            .map(|d| d.entry.model_name.clone())
            .or_else(|| shown.as_ref().and_then(|s| s["model_name"].as_str().map(str::to_owned)))
            .unwrap_or_default(),
        from: origin(state, if shown.is_some() { Origin::Stored } else { Origin::Config }),
        served: deployment.as_ref().map(|d| {
            let cooling = d.health.cooling_until(now).map(|t| (t - now).as_secs().max(1));
            (
                format!("{}/{}", d.entry.provider.prefix(), d.entry.upstream_model),
                host(&d.entry),
                cooling,
            )
        }),
        usage,
        counted,
        last_error: deployment.as_deref().and_then(deployments::last_error),
        stored: shown.as_ref().map(|s| {
            let info = &s["model_info"];
            (stamp(info, "created_at", "created_by"), stamp(info, "updated_at", "updated_by"))
        }),
        id,
    };
    let mf = shown.as_ref().map(|s| {
        let key_stored = s["litellm_params"]["api_key"].is_string();
        let Typed { form, errors, tested } = typed.unwrap_or_else(|| Typed {
            form: ModelForm::of(s),
            errors: Errors::default(),
            tested: None,
        });
        let path = format!("/models/{}", page::url_encode(&facts.id));
        FormView {
            id: "edit-model",
            action: format!("{path}/edit"),
            test_action: format!("{path}/test"),
            submit: "Save",
            key_stored,
            tested,
            ..form.view(errors, &names)
        }
    });
    let frame = Frame::new(base, signed, &facts.name, "models").with_notice(notice);
    let nonce = frame.nonce.clone();
    page::html(status, &nonce, &ModelPage { frame, facts, mf, alert })
}

pub(crate) async fn detail(
    State(state): State<AppState>,
    parts: Parts,
    signed: Signed,
    Path(id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let base = Base::of(&parts, &state);
    if let Err(r) = admin(&base, &signed) {
        return r;
    }
    match find(&state, &base, &id).await {
        Ok(found) => render(&state, &base, &signed, found, None, q.done, StatusCode::OK).await,
        Err(r) => r,
    }
}

/// The admin's only, to look at too: the page shows where requests go and with what.
fn admin(base: &Base, signed: &Signed) -> Result<(), Response> {
    if signed.role.manages() {
        Ok(())
    } else {
        Err(page::refused(base, "A model's page is for the admin."))
    }
}

pub(crate) async fn act(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    Submitted { base, signed, form }: Submitted<ModelForm>,
) -> Response {
    if let Err(r) = admin(&base, &signed) {
        return r;
    }
    let actor = signed.actor();
    let outcome = match action.as_str() {
        "edit" => match form.change() {
            Ok(change) => ops::update(&state, &actor, &id, change, Merge::Patch)
                .await
                .map(|_| None)
                .map_err(|e| model_form::field_error(&e)),
            Err(errors) => Err(errors),
        },
        "test" => match form.change() {
            Ok(change) => {
                let mode = Some(form.mode().to_owned());
                ops::test_change(&state, &id, change, Merge::Patch, mode)
                    .await
                    .map(|answer| Some(tested(&answer)))
                    .map_err(|e| model_form::field_error(&e))
            }
            Err(errors) => Err(errors),
        },
        "delete" => {
            return match ops::delete(&state, &actor, &id).await {
                Ok(_) => page::done(&base, "/models", "Model deleted."),
                Err(e) => {
                    let errors = model_form::field_error(&e);
                    again(&state, &base, &signed, &id, None, errors, None).await
                }
            };
        }
        _ => return page::not_found(&base, "No such action."),
    };
    match outcome {
        Ok(None) => {
            let path = format!("/models/{}", page::url_encode(&id));
            page::done(&base, &path, "Model saved; it serves from the next request.")
        }
        Ok(Some(result)) => {
            again(&state, &base, &signed, &id, Some(form), Errors::default(), Some(result)).await
        }
        Err(errors) => again(&state, &base, &signed, &id, Some(form), errors, None).await,
    }
}

/// The page again after a post that changed nothing: the form as typed with its messages (a
/// refusal is 400), or the outcome of Test connection.
async fn again(
    state: &AppState,
    base: &Base,
    signed: &Signed,
    id: &str,
    form: Option<ModelForm>,
    errors: Errors,
    tested: Option<Tested>,
) -> Response {
    let found = match find(state, base, id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let status = if errors.0.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let typed = match form {
        Some(form) => Some(Typed { form, errors, tested }),
        None if !errors.0.is_empty() => {
            let form = found.shown.as_ref().map(ModelForm::of).unwrap_or_default();
            Some(Typed { form, errors, tested: None })
        }
        None => None,
    };
    render(state, base, signed, found, typed, None, status).await
}
