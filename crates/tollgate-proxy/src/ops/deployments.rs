//! What each deployment has been doing, as the console's models page shows it: its requests
//! and failures of the last 24 hours (one grouped read of the spend records), and its latest
//! failure (the router's memory, with the deployment's credentials masked out).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tollgate_router::{Catalog, Deployment};
use tollgate_store::{DeploymentUsage, StoreError};

use super::models::{masked, secrets_of};
use crate::state::AppState;

/// How far back [`recent_usage`] counts.
pub const RECENT: chrono::Duration = chrono::Duration::hours(24);

/// A deployment's requests over [`RECENT`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Requests it served or last failed.
    pub requests: i64,
    /// Those that did not succeed.
    pub errors: i64,
    /// Whether another deployment of the same group serves the same upstream model: records
    /// name the served model, not the deployment, so both show the same counts.
    pub shared: bool,
}

/// A deployment's latest failure, fit to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownError {
    /// When.
    pub at: DateTime<Utc>,
    /// What routing made of it (`rate_limited`, `server_error`, ...).
    pub kind: &'static str,
    /// The status the attempt ended with.
    pub status: u16,
    /// What was said, the deployment's credentials masked.
    pub message: String,
}

/// The latest failure of `d` since it was built (a change to a model starts it afresh).
pub fn last_error(d: &Deployment) -> Option<ShownError> {
    let e = d.health.last_error()?;
    let message = match masked(Value::String(e.message), &secrets_of(&d.entry)) {
        Value::String(s) => s,
        other => other.to_string(),
    };
    Some(ShownError { at: e.at.into(), kind: e.kind.as_str(), status: e.status, message })
}

/// Each deployment's requests and failures since `now - RECENT`, by deployment id; a
/// deployment with none is absent.
pub async fn recent_usage(
    state: &AppState,
    now: DateTime<Utc>,
) -> Result<HashMap<String, Usage>, StoreError> {
    let rows = state.store().deployment_usage(now - RECENT).await?;
    Ok(attribute(state.router().catalog(), &rows))
}

/// Gives each `(model group, served model)` row to the deployments of that group that can
/// have served it; rows of groups or models no longer served are dropped.
fn attribute(catalog: &Catalog, rows: &[DeploymentUsage]) -> HashMap<String, Usage> {
    let mut out: HashMap<String, Usage> = HashMap::new();
    for row in rows {
        let Some(group) = catalog.group(&row.model_group) else { continue };
        let serving: Vec<&Deployment> = group
            .deployments
            .iter()
            .map(AsRef::as_ref)
            .filter(|d| d.serves(&row.served_model))
            .collect();
        let shared = serving.len() > 1;
        for d in serving {
            let u = out.entry(d.id().to_owned()).or_default();
            u.requests += row.requests;
            u.errors += row.errors;
            u.shared |= shared;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_config::{MapEnv, from_yaml_str};

    fn row(group: &str, served: &str, requests: i64, errors: i64) -> DeploymentUsage {
        DeploymentUsage {
            model_group: group.to_owned(),
            served_model: served.to_owned(),
            requests,
            errors,
        }
    }

    #[test]
    fn rows_go_to_the_deployments_that_served_them() {
        let yaml = r#"
model_list:
  - model_name: gpt-4o
    litellm_params: { model: openai/gpt-4o, api_base: "http://a.test/v1" }
    model_info: { id: a }
  - model_name: gpt-4o
    litellm_params: { model: openai/gpt-4o, api_base: "http://b.test/v1" }
    model_info: { id: b }
  - model_name: gpt-4o
    litellm_params: { model: anthropic/claude-sonnet-4-5 }
    model_info: { id: c }
  - model_name: openai/*
    litellm_params: { model: openai/* }
    model_info: { id: any }
"#;
        let config = from_yaml_str(yaml, None, &MapEnv::default()).unwrap();
        let catalog = Catalog::from_config(&config);
        let rows = [
            row("gpt-4o", "openai/gpt-4o", 10, 1),
            row("gpt-4o", "anthropic/claude-sonnet-4-5", 4, 4),
            row("openai/*", "openai/o3", 2, 0),
            row("openai/*", "openai/gpt-5", 3, 1),
            row("gone", "openai/gpt-4o", 99, 99),
            row("gpt-4o", "openai/gpt-3.5", 7, 7),
        ];
        let got = attribute(&catalog, &rows);
        let shared = Usage { requests: 10, errors: 1, shared: true };
        assert_eq!(got["a"], shared);
        assert_eq!(got["b"], shared);
        assert_eq!(got["c"], Usage { requests: 4, errors: 4, shared: false });
        assert_eq!(got["any"], Usage { requests: 5, errors: 1, shared: false });
        assert_eq!(got.len(), 4);
    }
}
