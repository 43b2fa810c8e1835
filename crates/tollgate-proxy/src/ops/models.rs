//! Models at runtime: add, change and remove stored models; list every model, config.yaml's
//! and the stored ones, with credentials redacted; test a model's parameters before saving.

use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tollgate_config::{Diagnostic, ModelEntry, ProviderKind};
use tollgate_protocol::{Operation, Protocol};
use tollgate_providers::{CallContext, UpstreamError};
use tollgate_router::{Deployment, Origin};
use tollgate_store::{ModelPatch, ModelRecord, NewModel, StoreError};

use super::input::{bad, store_error};
use super::{Actor, Subject, audit};
use crate::error::ApiError;
use crate::models::seal::{self, REDACTED, is_secret_header};
use crate::models::{self as table, Built, load_credentials, model_scope, open_record};
use crate::state::AppState;

/// `POST /model/new`: a model in LiteLLM's shape.
#[derive(Debug, Deserialize)]
pub struct NewModelBody {
    /// The name clients ask for.
    pub model_name: String,
    /// `model`, `api_base`, `api_key`, ...
    pub litellm_params: Map<String, Value>,
    /// `id`, `access_groups`, prices, descriptive fields.
    #[serde(default)]
    pub model_info: Option<Map<String, Value>>,
}

/// `POST /model/update` and `PATCH /model/{id}/update`: the sections to change.
#[derive(Debug, Default, Deserialize)]
pub struct ModelChange {
    /// A new name.
    #[serde(default)]
    pub model_name: Option<String>,
    /// New parameters.
    #[serde(default)]
    pub litellm_params: Option<Map<String, Value>>,
    /// New info (`id` names the model for `POST /model/update`).
    #[serde(default)]
    pub model_info: Option<Map<String, Value>>,
}

/// How a change applies to a stored model's sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// Each section given replaces the stored one (`POST /model/update`).
    Replace,
    /// Each key given replaces the stored one; a key set to `null` is removed (`PATCH`).
    Patch,
}

/// Fields `/model/info` adds to `model_info`, dropped from what is stored.
const COMPUTED_INFO: &[&str] = tollgate_config::COMPUTED_MODEL_INFO;

fn defined_in_config(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        format!(
            "Model `{id}` is defined in config.yaml and cannot be changed through the API; \
             edit the file and reload it (SIGHUP, `tollgate reload` or POST /config/reload)."
        ),
    )
    .with_code("config_model")
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("No stored model has id `{id}`."))
        .with_code("not_found")
        .with_param("id")
}

/// Refuses changes to config models; `Ok` for ids config.yaml does not define.
fn not_from_config(state: &AppState, id: &str) -> Result<(), ApiError> {
    match state.router().catalog().deployment(id) {
        Some(d) if d.origin == Origin::Config => Err(defined_in_config(id)),
        _ => Ok(()),
    }
}

/// An invalid model as the caller's 400, naming the key.
fn invalid(e: tollgate_config::ConfigError) -> ApiError {
    let what = if e.key.is_empty() { e.reason } else { format!("`{}` {}", e.key, e.reason) };
    let mut err = ApiError::new(StatusCode::BAD_REQUEST, format!("Invalid model: {what}."))
        .with_code("invalid_model");
    if !e.key.is_empty() {
        err = err.with_param(e.key);
    }
    err
}

/// A complaint about `params` with any credential they hold masked out of it (a value of the
/// wrong type is quoted by the parser).
fn scrubbed(
    mut e: tollgate_config::ConfigError,
    params: &Map<String, Value>,
) -> tollgate_config::ConfigError {
    let mut secrets = Vec::new();
    let mut copy = params.clone();
    seal::each_secret(&mut copy, &mut |_, v| match v {
        Value::String(s) => secrets.push(s.clone()),
        Value::Null => {}
        other => secrets.push(other.to_string()),
    });
    secrets.retain(|s| s.len() >= 4);
    if let Value::String(reason) = masked(json!(e.reason), &secrets) {
        e.reason = reason;
    }
    e
}

/// What a config file would merely be warned about is refused here: the caller is present.
fn refuse_warnings(warnings: &[Diagnostic]) -> Result<(), ApiError> {
    let Some(first) = warnings.first() else { return Ok(()) };
    let all: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    Err(ApiError::new(StatusCode::BAD_REQUEST, format!("Invalid model: {}.", all.join("; ")))
        .with_code("invalid_model")
        .with_param(first.key().to_owned()))
}

fn clean_info(info: Option<Map<String, Value>>) -> Map<String, Value> {
    let mut info = info.unwrap_or_default();
    for k in COMPUTED_INFO {
        info.remove(*k);
    }
    info
}

fn check_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(bad("model_name", "must not be empty"));
    }
    Ok(name.to_owned())
}

/// Checks a model's plaintext parameters as the router will build them.
async fn check(
    state: &AppState,
    id: &str,
    name: &str,
    params: &Map<String, Value>,
    info: &Map<String, Value>,
) -> Result<Built, ApiError> {
    let credentials =
        load_credentials(state.store(), state.secret_box()).await.map_err(store_error)?;
    let file = state.models().file();
    let built =
        table::build_entry(id, name, params, &Value::Object(info.clone()), &credentials, &file)
            .map_err(|e| invalid(scrubbed(e, params)))?;
    refuse_warnings(&built.warnings)?;
    Ok(built)
}

fn sealed(state: &AppState, id: &str, params: &Map<String, Value>) -> Result<Value, ApiError> {
    let mut params = params.clone();
    seal::seal(state.secret_box(), &model_scope(id), &mut params).map_err(store_error)?;
    Ok(Value::Object(params))
}

/// After a change: this process serves it from the next request; others follow the feed.
async fn apply(state: &AppState) {
    if let Err(e) = state.models().rebuild(state.store(), state.secret_box()).await {
        tracing::warn!(error = %e, "model table not rebuilt now; the change feed will retry");
    }
}

/// Adds a model; answers it as `/model/info` lists it.
pub async fn create(
    state: &AppState,
    actor: &Actor,
    body: NewModelBody,
) -> Result<Value, ApiError> {
    let name = check_name(&body.model_name)?;
    let given_id = body.model_info.as_ref().and_then(|i| i.get("id")).and_then(Value::as_str);
    let id = match given_id.map(str::trim) {
        Some(id) if !valid_id(id) => {
            return Err(bad(
                "model_info.id",
                "must be 1 to 128 letters, digits, `-`, `_`, `.` or `:`",
            ));
        }
        Some(id) => id.to_owned(),
        None => uuid::Uuid::new_v4().to_string(),
    };
    not_from_config(state, &id)?;
    let info = clean_info(body.model_info);
    // `<redacted>` keeps a stored value; a new model has none, anywhere in its parameters.
    let mut params = body.litellm_params;
    keep_redacted(&mut params, &Map::new())?;
    check(state, &id, &name, &params, &info).await?;
    let new = NewModel {
        model_id: id.clone(),
        model_name: name,
        litellm_params: sealed(state, &id, &params)?,
        model_info: Value::Object(info),
        created_by: Some(actor.name().to_owned()),
    };
    let record = state.store().create_model(new).await.map_err(store_error)?;
    apply(state).await;
    let answer = stored_json(&record);
    audit(state, actor, "create", subject(&id), None, Some(&answer)).await;
    Ok(answer)
}

/// Ids go into paths (`PATCH /model/{id}/update`, the console's links): plain characters only.
fn valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

fn subject(id: &str) -> Subject<'_> {
    Subject { object_type: "model", object_id: id }
}

/// `<redacted>` in a change means "keep the stored value" (an answer of `/model/info` sent
/// back); it is refused where nothing is stored.
fn keep_redacted(new: &mut Map<String, Value>, old: &Map<String, Value>) -> Result<(), ApiError> {
    for (k, v) in new.iter_mut() {
        if v.as_str() == Some(REDACTED) {
            *v = old.get(k).cloned().ok_or_else(|| {
                bad(&format!("litellm_params.{k}"), "is `<redacted>`: give the credential itself")
            })?;
        } else if k == "extra_headers"
            && let Value::Object(headers) = v
        {
            let old_headers = old.get(k).and_then(Value::as_object);
            for (h, hv) in headers.iter_mut() {
                if hv.as_str() == Some(REDACTED) {
                    *hv = old_headers.and_then(|o| o.get(h)).cloned().ok_or_else(|| {
                        bad(
                            &format!("litellm_params.extra_headers.{h}"),
                            "is `<redacted>`: give the value itself",
                        )
                    })?;
                }
            }
        }
    }
    Ok(())
}

/// Keys given replace the stored ones; `null` removes; `extra_headers` merge one level down.
fn merge(into: &mut Map<String, Value>, change: Map<String, Value>) {
    for (k, v) in change {
        match (into.get_mut(&k), v) {
            (_, Value::Null) => {
                into.remove(&k);
            }
            (Some(Value::Object(old)), Value::Object(new)) if k == "extra_headers" => {
                for (h, hv) in new {
                    if hv.is_null() {
                        old.remove(&h);
                    } else {
                        old.insert(h, hv);
                    }
                }
            }
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// A stored model with a change applied: what it was, and its name, plaintext parameters and
/// info after the change. Nothing is checked or saved yet.
struct Changed {
    old: ModelRecord,
    /// The stored parameters, plaintext.
    old_params: Map<String, Value>,
    name: String,
    params: Map<String, Value>,
    info: Map<String, Value>,
}

async fn changed(
    state: &AppState,
    id: &str,
    change: ModelChange,
    how: Merge,
) -> Result<Changed, ApiError> {
    not_from_config(state, id)?;
    let old =
        state.store().get_model(id).await.map_err(store_error)?.ok_or_else(|| not_found(id))?;
    let old_params = open_record(state.secret_box(), &old).map_err(store_error)?;
    let name = match &change.model_name {
        Some(n) => check_name(n)?,
        None => old.model_name.clone(),
    };
    let mut params = old_params.clone();
    if let Some(mut given) = change.litellm_params {
        keep_redacted(&mut given, &old_params)?;
        match how {
            Merge::Replace => params = given,
            Merge::Patch => merge(&mut params, given),
        }
    }
    let mut info = old.model_info.as_object().cloned().unwrap_or_default();
    if let Some(given) = change.model_info {
        let given = clean_info(Some(given));
        match how {
            Merge::Replace => info = given,
            Merge::Patch => merge(&mut info, given),
        }
    }
    Ok(Changed { old, old_params, name, params, info })
}

/// Changes a stored model; answers it as `/model/info` lists it.
pub async fn update(
    state: &AppState,
    actor: &Actor,
    id: &str,
    change: ModelChange,
    how: Merge,
) -> Result<Value, ApiError> {
    let Changed { old, name, params, info, .. } = changed(state, id, change, how).await?;
    check(state, id, &name, &params, &info).await?;
    let patch = ModelPatch {
        model_name: Some(name),
        litellm_params: Some(sealed(state, id, &params)?),
        model_info: Some(Value::Object(info)),
        updated_by: Some(actor.name().to_owned()),
    };
    let record = state.store().update_model(id, patch).await.map_err(|e| match e {
        StoreError::NotFound { .. } => not_found(id),
        e => store_error(e),
    })?;
    apply(state).await;
    let answer = stored_json(&record);
    audit(state, actor, "update", subject(id), Some(&stored_json(&old)), Some(&answer)).await;
    Ok(answer)
}

/// [`test_connection`] of a stored model as [`update`] would leave it, with the stored
/// credentials the change keeps; nothing is saved. A stored key is sent only to the host it
/// was stored for: a test against another `api_base` needs the key typed again (a saved
/// change may move it, and is audited; a test is not).
pub async fn test_change(
    state: &AppState,
    id: &str,
    change: ModelChange,
    how: Merge,
    mode: Option<String>,
) -> Result<Value, ApiError> {
    let Changed { old_params, params, .. } = changed(state, id, change, how).await?;
    let stored_key = old_params.get("api_key").filter(|k| !k.is_null());
    let key_kept = stored_key.is_some() && params.get("api_key") == stored_key;
    if key_kept && params.get("api_base") != old_params.get("api_base") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "Invalid model: `api_key` is the stored one, which is only sent to the API base it \
             was stored with: type the key again to test another host.",
        )
        .with_code("invalid_model")
        .with_param("api_key"));
    }
    test_connection(state, TestConnection { litellm_params: params, mode }).await
}

/// Removes a stored model. Requests already planned on it finish; the next ones do not see it.
pub async fn delete(state: &AppState, actor: &Actor, id: &str) -> Result<Value, ApiError> {
    not_from_config(state, id)?;
    let old =
        state.store().get_model(id).await.map_err(store_error)?.ok_or_else(|| not_found(id))?;
    if !state.store().delete_model(id).await.map_err(store_error)? {
        return Err(not_found(id));
    }
    apply(state).await;
    audit(state, actor, "delete", subject(id), Some(&stored_json(&old)), None).await;
    Ok(json!({ "message": format!("Model {id} deleted."), "id": id }))
}

/// A stored model as answers show it, credentials redacted.
pub fn stored_json(r: &ModelRecord) -> Value {
    let params = r.litellm_params.as_object().cloned().unwrap_or_default();
    let mut info = r.model_info.as_object().cloned().unwrap_or_default();
    info.insert("id".into(), json!(r.model_id));
    info.insert("db_model".into(), json!(true));
    info.insert("created_at".into(), json!(r.created_at));
    info.insert("updated_at".into(), json!(r.updated_at));
    info.insert("created_by".into(), json!(r.created_by));
    info.insert("updated_by".into(), json!(r.updated_by));
    json!({
        "model_name": r.model_name,
        "litellm_params": seal::redacted(&params),
        "model_info": info,
    })
}

/// A config model's `litellm_params` as written, credentials redacted.
fn config_params(e: &ModelEntry) -> Map<String, Value> {
    let mut p = Map::new();
    p.insert("model".into(), json!(e.model));
    if let Some(b) = &e.api_base {
        p.insert("api_base".into(), json!(b));
    }
    if e.api_key.is_some() {
        p.insert("api_key".into(), json!(REDACTED));
    }
    if !e.extra_headers.is_empty() {
        let headers: Map<String, Value> = e
            .extra_headers
            .iter()
            .map(|(name, v)| {
                let shown = if is_secret_header(name) { REDACTED } else { v.expose().as_str() };
                (name.clone(), json!(shown))
            })
            .collect();
        p.insert("extra_headers".into(), Value::Object(headers));
    }
    let secs = |d: Option<Duration>| d.map(|d| json!(d.as_secs_f64()));
    for (k, v) in [
        ("timeout", secs(e.timeout)),
        ("stream_timeout", secs(e.stream_timeout)),
        ("rpm", e.rpm.map(|n| json!(n))),
        ("tpm", e.tpm.map(|n| json!(n))),
        ("weight", (e.weight != 1.0).then(|| json!(e.weight))),
        ("fallbacks", (!e.fallbacks.is_empty()).then(|| json!(e.fallbacks))),
        ("strip_thinking", e.strip_thinking.then_some(json!(true))),
    ] {
        if let Some(v) = v {
            p.insert(k.into(), v);
        }
    }
    p.insert("drop_params".into(), json!(e.drop_params));
    p
}

/// Copilot's catalog entries by id, for what config and stored entries do not say.
pub(crate) type CopilotCatalog =
    std::collections::HashMap<String, tollgate_providers::copilot::CopilotModel>;

/// The catalog of `owner`'s account (the shared one for `None`) when some deployment is
/// Copilot's; empty when Copilot is not linked or does not answer within a second (the
/// listing then says only what entries say).
pub(crate) async fn copilot_catalog(
    state: &AppState,
    router: &tollgate_router::Router,
    owner: Option<&str>,
) -> CopilotCatalog {
    let any =
        router.catalog().deployments().any(|d| d.entry.provider == ProviderKind::GithubCopilot);
    if !any {
        return CopilotCatalog::new();
    }
    let read = state.providers().copilot().models_for(owner);
    match tokio::time::timeout(Duration::from_secs(1), read).await {
        Ok(Ok(models)) => models.iter().map(|m| (m.id.clone(), m.clone())).collect(),
        _ => CopilotCatalog::new(),
    }
}

/// The `model_info` every listed model has: id, origin, provider, mode, context window and
/// the prices requests are charged at; for Copilot models, what the catalog says of limits
/// and premium requests where the entry does not say.
fn info_of(d: &Deployment, copilot: &CopilotCatalog) -> Map<String, Value> {
    let e = &d.entry;
    let price = tollgate_router::pricing::price_for(e, &e.upstream_model);
    let mode = mode_of(d, copilot);
    let mut info = Map::new();
    info.insert("id".into(), json!(d.id()));
    info.insert("db_model".into(), json!(d.origin == Origin::Stored));
    info.insert("litellm_provider".into(), json!(e.provider.prefix()));
    info.insert("mode".into(), json!(mode));
    info.insert(
        "max_tokens".into(),
        json!(e.described.max_tokens.or(e.described.max_output_tokens)),
    );
    info.insert("max_input_tokens".into(), json!(e.described.max_input_tokens));
    info.insert("max_output_tokens".into(), json!(e.described.max_output_tokens));
    info.insert("input_cost_per_token".into(), json!(price.map(|p| p.input)));
    info.insert("output_cost_per_token".into(), json!(price.map(|p| p.output)));
    info.insert("cache_read_input_token_cost".into(), json!(price.map(|p| p.cached_input)));
    info.insert("access_groups".into(), json!(e.access_groups));
    if let Some(text) = &e.described.description {
        info.insert("description".into(), json!(text));
    }
    if e.provider == ProviderKind::GithubCopilot
        && let Some(m) = copilot.get(&e.upstream_model)
    {
        let limits = &m.capabilities.limits;
        for (k, v) in [
            ("max_input_tokens", limits.max_prompt_tokens.or(limits.max_context_window_tokens)),
            ("max_output_tokens", limits.max_output_tokens),
            ("max_tokens", limits.max_output_tokens),
        ] {
            if info[k].is_null() {
                info.insert(k.into(), json!(v));
            }
        }
        info.insert("premium_multiplier".into(), json!(m.premium_multiplier()));
    }
    info.insert("upstream_endpoints".into(), json!(upstream_endpoints(d, copilot)));
    info
}

/// A deployment's `mode`: as its entry says; else a Copilot model's from the catalog, and
/// otherwise `embedding` for a model named so, `chat` for the rest.
pub(crate) fn mode_of(d: &Deployment, copilot: &CopilotCatalog) -> String {
    let e = &d.entry;
    if let Some(mode) = &e.described.mode {
        return mode.clone();
    }
    let in_catalog = e.provider == ProviderKind::GithubCopilot;
    let embeddings = match copilot.get(&e.upstream_model) {
        Some(m) if in_catalog => m.is_embeddings(),
        _ => e.upstream_model.contains("embedding"),
    };
    if embeddings { "embedding" } else { "chat" }.to_owned()
}

/// The upstream paths a deployment is spoken to on (`None` for a Copilot model missing from
/// the catalog read).
pub(crate) fn upstream_endpoints(d: &Deployment, copilot: &CopilotCatalog) -> Option<Vec<String>> {
    let m = copilot.get(&d.entry.upstream_model);
    if d.entry.provider != ProviderKind::GithubCopilot && mode_of(d, copilot) == "embedding" {
        return Some(vec![tollgate_providers::copilot::EMBEDDINGS_ENDPOINT.to_owned()]);
    }
    tollgate_providers::upstream_endpoints(&d.entry, m)
}

/// The endpoints of this gateway a client may call for a model of `mode`: the three
/// generation APIs (translated as the upstream needs) or, for embedding models, embeddings.
pub(crate) fn client_endpoints(mode: &str) -> &'static [&'static str] {
    if mode == "embedding" {
        &["/v1/embeddings"]
    } else {
        &["/v1/chat/completions", "/v1/messages", "/v1/responses"]
    }
}

/// One listed model: stored ones as stored (redacted), config ones as the file gives them.
fn listed(d: &Deployment, stored: &[ModelRecord], copilot: &CopilotCatalog) -> Value {
    let mut info = info_of(d, copilot);
    let params = match stored.iter().find(|r| d.origin == Origin::Stored && r.model_id == d.id()) {
        Some(r) => {
            let shown = stored_json(r);
            for k in ["created_at", "updated_at", "created_by", "updated_by"] {
                info.insert(k.into(), shown["model_info"][k].clone());
            }
            if let Some(own) = r.model_info.as_object() {
                for (k, v) in own {
                    info.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            shown["litellm_params"].clone()
        }
        None => Value::Object(config_params(&d.entry)),
    };
    json!({ "model_name": d.entry.model_name, "litellm_params": params, "model_info": info })
}

/// `GET /model/info`: every model the caller may use (all of them for the admin), or the one
/// with `id`.
pub async fn info(
    state: &AppState,
    visible: &(dyn Fn(&str) -> bool + Sync),
    id: Option<&str>,
) -> Value {
    let router = state.router();
    let stored = state.models().stored();
    let copilot = copilot_catalog(state, &router, None).await;
    let data: Vec<Value> = router
        .catalog()
        .deployments()
        .filter(|d| id.is_none_or(|id| d.id() == id))
        .filter(|d| visible(&d.entry.model_name))
        .map(|d| listed(d, &stored, &copilot))
        .collect();
    json!({ "data": data })
}

/// `GET /model_group/info`: one row per model name, over its deployments.
pub async fn group_info(state: &AppState, visible: &(dyn Fn(&str) -> bool + Sync)) -> Value {
    let router = state.router();
    let copilot = copilot_catalog(state, &router, None).await;
    let catalog = router.catalog();
    let data: Vec<Value> = catalog
        .group_names()
        .filter(|n| visible(n))
        .filter_map(|n| catalog.group(n))
        .map(|g| {
            let infos: Vec<Map<String, Value>> = g.deployments.iter().map(|d| info_of(d, &copilot)).collect();
            let mut providers: Vec<&str> =
                g.deployments.iter().map(|d| d.entry.provider.prefix()).collect();
            providers.dedup();
            let first = |k: &str| infos.iter().map(|i| &i[k]).find(|v| !v.is_null()).cloned();
            let max = |k: &str| infos.iter().filter_map(|i| i[k].as_u64()).max();
            json!({
                "model_group": g.name,
                "providers": providers,
                "mode": first("mode"),
                "max_input_tokens": max("max_input_tokens"),
                "max_output_tokens": max("max_output_tokens"),
                "input_cost_per_token": first("input_cost_per_token"),
                "output_cost_per_token": first("output_cost_per_token"),
                "deployments": g.deployments.len(),
                "db_models": g.deployments.iter().filter(|d| d.origin == Origin::Stored).count(),
                "access_groups": infos.iter().flat_map(|i| i["access_groups"].as_array().cloned().unwrap_or_default()).collect::<Vec<_>>(),
                "is_pattern": g.name.contains('*'),
            })
        })
        .collect();
    json!({ "data": data })
}

/// `POST /health/test_connection`.
#[derive(Debug, Deserialize)]
pub struct TestConnection {
    /// The parameters to try, exactly as they would be saved.
    pub litellm_params: Map<String, Value>,
    /// `chat` (default) or `embedding`.
    #[serde(default)]
    pub mode: Option<String>,
}

/// Sends one small request with exactly the given parameters: what an admin presses before
/// saving a model. The provider's own words come back on failure, with every credential the
/// parameters hold masked out of them.
pub async fn test_connection(state: &AppState, body: TestConnection) -> Result<Value, ApiError> {
    let mode = body.mode.as_deref().unwrap_or("chat");
    if !matches!(mode, "chat" | "embedding") {
        return Err(bad("mode", "must be `chat` or `embedding`"));
    }
    let built = check(state, "test", "test", &body.litellm_params, &Map::new()).await?;
    let entry = built.entry;
    if entry.upstream_model.contains('*') {
        return Err(bad("litellm_params.model", "is a pattern; test one model it names"));
    }
    let (endpoint, request) = probe(&entry, mode);
    let ctx = CallContext {
        request_id: uuid::Uuid::new_v4().to_string(),
        initiator_user: true,
        ..Default::default()
    };
    let timeout = entry.timeout.unwrap_or(Duration::from_secs(30)).min(Duration::from_secs(30));
    let secrets = secrets_of(&entry);
    let outcome = match state.providers().send(&entry, endpoint, request, &ctx, timeout).await {
        Ok(response) => match response.bytes().await {
            Ok(bytes) => Ok(serde_json::from_slice::<Value>(&bytes)
                .unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)))),
            Err(e) => Err(json!(format!("the upstream connection failed: {}", e.without_url()))),
        },
        Err(e) => Err(upstream_words(&e)),
    };
    Ok(match outcome {
        Ok(result) => json!({ "status": "success", "result": masked(result, &secrets) }),
        Err(error) => json!({ "status": "error", "error": masked(error, &secrets) }),
    })
}

/// The smallest request of `mode` the deployment's wire takes.
fn probe(entry: &ModelEntry, mode: &str) -> (Operation, Bytes) {
    let model = entry.upstream_model.as_str();
    let (endpoint, body) = if mode == "embedding" {
        (Operation::Embeddings, json!({ "model": model, "input": "ping" }))
    } else if entry.provider == ProviderKind::Anthropic {
        let messages = json!([{ "role": "user", "content": "ping" }]);
        (
            Operation::Generate(Protocol::Messages),
            json!({ "model": model, "max_tokens": 5, "messages": messages }),
        )
    } else {
        let messages = json!([{ "role": "user", "content": "ping" }]);
        (
            Operation::Generate(Protocol::Chat),
            json!({ "model": model, "max_tokens": 5, "messages": messages }),
        )
    };
    (endpoint, Bytes::from(body.to_string()))
}

/// What the upstream said: its error body (JSON as sent, else text), with the status.
fn upstream_words(e: &UpstreamError) -> Value {
    match e {
        UpstreamError::Status { status, body, .. } => {
            let said = serde_json::from_slice::<Value>(body)
                .unwrap_or_else(|_| json!(String::from_utf8_lossy(&body[..body.len().min(4096)])));
            json!({ "status_code": status, "body": said, "message": e.to_string() })
        }
        other => json!({ "message": other.to_string() }),
    }
}

/// The credentials an entry holds, to mask out of what is shown of it.
pub(crate) fn secrets_of(entry: &ModelEntry) -> Vec<String> {
    let mut out: Vec<String> = entry.api_key.iter().map(|k| k.expose().clone()).collect();
    out.extend(
        entry
            .extra_headers
            .iter()
            .filter(|(n, _)| is_secret_header(n))
            .map(|(_, v)| v.expose().clone()),
    );
    out.retain(|s| s.len() >= 4);
    out
}

/// `value` with every credential, and any leading part of one of 6 characters or more (the
/// "sk-abc…" a provider echoes back), replaced; key-shaped strings redacted as in logs.
pub(crate) fn masked(mut value: Value, secrets: &[String]) -> Value {
    fn walk(v: &mut Value, secrets: &[String]) {
        match v {
            Value::String(s) => {
                for secret in secrets {
                    if s.contains(secret.as_str()) {
                        *s = s.replace(secret.as_str(), REDACTED);
                    }
                    let mut end = secret.len();
                    while end >= 6 {
                        if secret.is_char_boundary(end) && s.contains(&secret[..end]) {
                            *s = s.replace(&secret[..end], REDACTED);
                        }
                        end -= 1;
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, secrets)),
            Value::Object(m) => m.values_mut().for_each(|i| walk(i, secrets)),
            _ => {}
        }
    }
    walk(&mut value, secrets);
    crate::redact::redact(&mut value);
    value
}
