//! `GET /v1/models`: the model names clients can ask for.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use tollgate_config::ProviderKind;

use crate::error::ApiError;
use crate::extract::Caller;
use crate::state::AppState;

fn model_object(state: &AppState, catalog: &tollgate_router::Catalog, name: &str) -> Value {
    let owner = catalog
        .group(name)
        .and_then(|g| g.deployments.first())
        .map_or("tollgate", |d| d.entry.provider.prefix());
    json!({ "id": name, "object": "model", "created": state.started_unix(), "owned_by": owner })
}

/// The configured names, then for every pattern served by Copilot's whole catalog
/// (`*` → `github_copilot/*`, the default without a config file) the linked account's models
/// under that pattern.
pub(super) async fn list(State(state): State<AppState>, Caller(caller): Caller) -> Json<Value> {
    let router = state.router();
    let catalog = router.catalog();
    let mut data: Vec<Value> =
        catalog.model_names().map(|name| model_object(&state, catalog, name)).collect();
    let owner = caller.copilot_owner();
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
                data.push(json!({
                    "id": id,
                    "object": "model",
                    "created": state.started_unix(),
                    "owned_by": m.vendor.as_deref().unwrap_or("github_copilot"),
                }));
            }
        }
    }
    Json(json!({ "object": "list", "data": data }))
}

pub(super) async fn get(
    State(state): State<AppState>,
    _caller: Caller,
    Path(model): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let router = state.router();
    let catalog = router.catalog();
    if catalog.model_names().any(|n| n == model) {
        Ok(Json(model_object(&state, catalog, &model)))
    } else {
        Err(ApiError::unknown_model(&model, catalog.model_names()))
    }
}
