//! `GET /v1/models`: the model names clients can ask for.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use tollgate_config::ProviderKind;

use crate::error::ApiError;
use crate::extract::Caller;
use crate::ops::models::{
    CopilotCatalog, client_endpoints, copilot_catalog, mode_of, upstream_endpoints,
};
use crate::state::AppState;

/// A configured name: who serves it first, the endpoints a client may call for it here, and
/// the upstream paths its first deployment is spoken to on.
fn model_object(
    state: &AppState,
    catalog: &tollgate_router::Catalog,
    copilot: &CopilotCatalog,
    name: &str,
) -> Value {
    let first = catalog.group(name).and_then(|g| g.deployments.first());
    let owner = first.map_or("tollgate", |d| d.entry.provider.prefix());
    let mode = first.map_or_else(|| "chat".to_owned(), |d| mode_of(d, copilot));
    let upstream = first.and_then(|d| upstream_endpoints(d, copilot));
    json!({
        "id": name,
        "object": "model",
        "created": state.started_unix(),
        "owned_by": owner,
        "supported_endpoints": client_endpoints(&mode),
        "upstream_endpoints": upstream,
    })
}

/// The configured names, then for every pattern served by Copilot's whole catalog
/// (`*` → `github_copilot/*`, the default without a config file) the linked account's models
/// under that pattern.
pub(super) async fn list(State(state): State<AppState>, Caller(caller): Caller) -> Json<Value> {
    let router = state.router();
    let catalog = router.catalog();
    let owner = caller.copilot_owner();
    let copilot = copilot_catalog(&state, &router, owner.as_deref()).await;
    let mut data: Vec<Value> =
        catalog.model_names().map(|name| model_object(&state, catalog, &copilot, name)).collect();
    for name in catalog.group_names().filter(|n| n.contains('*')) {
        let Some(group) = catalog.group(name) else { continue };
        let copilot_catalog = group.deployments.iter().any(|d| {
            d.entry.provider == ProviderKind::GithubCopilot && d.entry.upstream_model == "*"
        });
        if !copilot_catalog {
            continue;
        }
        let Ok(models) = state.providers().copilot().models_for(owner.as_deref()).await else {
            continue;
        };
        for m in models.iter() {
            let id = name.replacen('*', &m.id, 1);
            if !data.iter().any(|d| d["id"] == id.as_str()) {
                let mode = if m.is_embeddings() { "embedding" } else { "chat" };
                data.push(json!({
                    "id": id,
                    "object": "model",
                    "created": state.started_unix(),
                    "owned_by": m.vendor.as_deref().unwrap_or("github_copilot"),
                    "supported_endpoints": client_endpoints(mode),
                    "upstream_endpoints": m.endpoints(),
                }));
            }
        }
    }
    Json(json!({ "object": "list", "data": data }))
}

pub(super) async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(model): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let router = state.router();
    let catalog = router.catalog();
    if catalog.model_names().any(|n| n == model) {
        let owner = caller.copilot_owner();
        let copilot = copilot_catalog(&state, &router, owner.as_deref()).await;
        Ok(Json(model_object(&state, catalog, &copilot, &model)))
    } else {
        Err(ApiError::unknown_model(&model, catalog.model_names()))
    }
}
