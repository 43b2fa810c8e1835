//! Management operations, each written once: it takes who acts and a typed input, checks what
//! it must, writes the store and the audit record, and tells this process's caches. The JSON
//! management API calls these; so does the admin UI.

pub mod accounts;
pub mod credentials;
pub mod deployments;
pub mod input;
pub mod keys;
pub mod mcp_servers;
pub mod models;
pub mod object_permission;
pub mod objects;
pub mod passwords;
pub mod spend;
pub mod teams;
pub mod users;

use serde_json::{Map, Value};
use tollgate_store::NewAudit;

use crate::auth::Principal;
use crate::models::seal::{REDACTED, is_secret_header, is_secret_param};
use crate::state::AppState;

/// Who performs a management operation, as the audit log names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(pub String);

impl Actor {
    /// The actor behind an authenticated caller: `master_key`, `local` (a caller on this
    /// machine while no master key is set), or `key:<alias or display name>`.
    pub fn of(principal: &Principal) -> Self {
        Self(match principal {
            Principal::Master => "master_key".to_owned(),
            Principal::Local => "local".to_owned(),
            Principal::StaticToken => "static_token".to_owned(),
            Principal::VirtualKey(k) => {
                let r = &k.record;
                format!("key:{}", r.key_alias.as_deref().unwrap_or(&r.key_name))
            }
        })
    }

    /// The name stored with what this actor creates or changes.
    pub fn name(&self) -> &str {
        &self.0
    }
}

/// What was done, to what.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// `key`, `user`, `team`, `model`, `credential`, `linked_account`.
    pub object_type: &'static str,
    /// Its id.
    pub object_id: &'a str,
}

/// Writes the audit record of a change that has been made: `before` and `after` are the
/// object's answers (`None` when it did not exist before, or does not after); only the
/// fields that differ are kept, and any credential among them is `"<redacted>"`. A failure
/// to write it is logged and counted; the change itself stands.
pub async fn audit(
    state: &AppState,
    actor: &Actor,
    action: &str,
    subject: Subject<'_>,
    before: Option<&Value>,
    after: Option<&Value>,
) {
    audit_in(state.store().as_ref(), actor, action, subject, before, after).await;
}

/// [`audit`] in `store`, for changes made without a running proxy (`tollgate keys`).
pub async fn audit_in(
    store: &dyn tollgate_store::StoreApi,
    actor: &Actor,
    action: &str,
    subject: Subject<'_>,
    before: Option<&Value>,
    after: Option<&Value>,
) {
    let (before, after) = changed_fields(before, after);
    let public = public_fields(subject.object_type);
    let entry = NewAudit {
        actor: actor.0.clone(),
        action: action.to_owned(),
        object_type: subject.object_type.to_owned(),
        object_id: subject.object_id.to_owned(),
        before: before.map(|v| redact_but(&v, public)),
        after: after.map(|v| redact_but(&v, public)),
    };
    if let Err(e) = store.append_audit(entry).await {
        metrics::counter!("tollgate_audit_write_failures_total").increment(1);
        tracing::error!(
            error = %e,
            actor = actor.name(),
            action,
            object_type = subject.object_type,
            object_id = subject.object_id,
            "the audit record of a change cannot be written"
        );
    }
}

/// Re-reads config.yaml (`POST /config/reload`, SIGHUP, `tollgate reload`): a valid file is
/// swapped in, an invalid one refused with start-up's file/key/reason and the running config
/// kept. Both outcomes are logged; a reload is audited.
pub async fn reload_config(
    state: &AppState,
    actor: &Actor,
) -> Result<Value, tollgate_config::ConfigError> {
    match state.models().reload_file().await {
        Ok(r) => {
            // config.yaml's MCP servers may have changed with it.
            state.mcp_servers().notify_changed();
            let path = r.path.display().to_string();
            tracing::info!(file = %path, models = r.models, actor = actor.name(), "config.yaml reloaded");
            for d in &r.diagnostics {
                tracing::warn!("config: {d}");
            }
            if !r.restart_needed.is_empty() {
                tracing::warn!(settings = ?r.restart_needed, "changed settings take effect at the next start");
            }
            let answer = serde_json::json!({
                "status": "reloaded",
                "config": path,
                "models": r.models,
                "warnings": r.diagnostics,
                "restart_needed_for": r.restart_needed,
            });
            let subject = Subject { object_type: "config", object_id: &path };
            audit(
                state,
                actor,
                "reload",
                subject,
                None,
                Some(&serde_json::json!({"models": r.models})),
            )
            .await;
            Ok(answer)
        }
        Err(e) => {
            tracing::error!(error = %e, actor = actor.name(), "config.yaml not reloaded; the running config stays");
            Err(e)
        }
    }
}

/// Keeps the top-level fields whose values differ between two objects.
fn changed_fields(before: Option<&Value>, after: Option<&Value>) -> (Option<Value>, Option<Value>) {
    match (before, after) {
        (Some(Value::Object(b)), Some(Value::Object(a))) => {
            let keys: Vec<&String> =
                b.keys().chain(a.keys()).filter(|k| b.get(*k) != a.get(*k)).collect();
            let pick = |m: &Map<String, Value>| -> Value {
                keys.iter()
                    .map(|k| ((*k).clone(), m.get(*k).cloned().unwrap_or(Value::Null)))
                    .collect()
            };
            (Some(pick(b)), Some(pick(a)))
        }
        (b, a) => (b.cloned(), a.cloned()),
    }
}

/// Top-level fields of an object type's answers that are named like credentials and are
/// not: a key's `token` is its hash, `key_name` its display name (`sk-...abcd`), `key_alias`
/// a label. The audit record of a regenerated key shows them change.
fn public_fields(object_type: &str) -> &'static [&'static str] {
    match object_type {
        "key" => &["token", "key_name", "key_alias"],
        _ => &[],
    }
}

/// Any credential-shaped field, at any depth, replaced by `"<redacted>"`.
pub fn redact(value: &Value) -> Value {
    redact_but(value, &[])
}

/// [`redact`], but for the top-level fields `public` names.
fn redact_but(value: &Value, public: &[&str]) -> Value {
    match value {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| {
                let secret =
                    (is_secret_param(k) || is_secret_header(k)) && !public.contains(&k.as_str());
                let v = if secret && !v.is_null() {
                    Value::String(REDACTED.to_owned())
                } else {
                    redact(v)
                };
                (k.clone(), v)
            })
            .collect(),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_changed_fields_and_redacts_credentials() {
        let before = json!({"a": 1, "b": 2, "litellm_params": {"api_key": "sk-1"}});
        let after = json!({"a": 1, "b": 3, "litellm_params": {"api_key": "sk-2"}});
        let (b, a) = changed_fields(Some(&before), Some(&after));
        assert_eq!(b.unwrap(), json!({"b": 2, "litellm_params": {"api_key": "sk-1"}}));
        let a = redact(&a.unwrap());
        assert_eq!(a, json!({"b": 3, "litellm_params": {"api_key": "<redacted>"}}));
        // A secret-named field is hidden whole, whatever it holds.
        let nested = json!({"metadata": {"api_key": {"value": "sk-in-an-object"}}});
        assert!(!redact(&nested).to_string().contains("sk-in-an-object"));
    }

    #[test]
    fn a_keys_hash_and_display_name_are_not_redacted_but_its_metadata_secrets_are() {
        let key = json!({"token": "ab12", "key_name": "sk-...wxyz", "key_alias": "ci",
                         "metadata": {"api_key": "sk-secret"}});
        let shown = redact_but(&key, public_fields("key"));
        assert_eq!(shown["token"], "ab12");
        assert_eq!(shown["key_name"], "sk-...wxyz");
        assert_eq!(shown["key_alias"], "ci");
        assert_eq!(shown["metadata"]["api_key"], "<redacted>");
        assert_eq!(redact_but(&key, public_fields("model"))["token"], "<redacted>");
    }
}
