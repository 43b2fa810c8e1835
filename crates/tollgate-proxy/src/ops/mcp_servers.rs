//! MCP servers at runtime: add, change and remove stored servers; list every server,
//! config.yaml's and the stored ones, with its health and never a credential; list a
//! server's tools as the server gives them.
//!
//! An entry is checked exactly as config.yaml's `mcp_servers.<name>` is
//! ([`tollgate_config::mcp_server_from_json`]): the same errors, and what a file would only
//! be warned about (an unknown key, an unset variable) is refused, since the caller is there
//! to fix it.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use tollgate_config::{McpAuth, McpServer, McpTransport};
use tollgate_mcp::Upstream;
use tollgate_store::{McpServerPatch, McpServerRecord, NewMcpServer, StoreError};

use super::input::store_error;
use super::{Actor, Subject, audit};
use crate::error::ApiError;
use crate::mcp_servers::{self as table, each_secret};
use crate::models::seal::{REDACTED, is_env_ref};
use crate::state::AppState;

/// Fields of a body that name the server rather than configure it: LiteLLM's `server_name`,
/// or `name`.
const NAME_FIELDS: &[&str] = &["server_name", "name"];

fn subject(name: &str) -> Subject<'_> {
    Subject { object_type: "mcp_server", object_id: name }
}

fn not_found(name: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("There is no MCP server named `{name}`."))
        .with_code("not_found")
        .with_param("server_name")
}

fn defined_in_config(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        format!(
            "MCP server `{name}` is defined in config.yaml and cannot be changed through the \
             API; edit the file and reload it (SIGHUP, `tollgate reload` or POST /config/reload)."
        ),
    )
    .with_code("config_mcp_server")
}

fn in_config(state: &AppState, name: &str) -> bool {
    state.models().file().mcp.servers.iter().any(|s| s.name == name)
}

/// The server's name, and the rest of the body: its entry.
fn split_name(mut body: Map<String, Value>) -> Result<(String, Map<String, Value>), ApiError> {
    let mut name = None;
    for field in NAME_FIELDS {
        match body.remove(*field) {
            None => {}
            Some(Value::String(n)) if name.as_ref().is_none_or(|given| given == &n) => {
                name = Some(n);
            }
            Some(Value::String(_)) => {
                return Err(super::input::bad(
                    "name",
                    "and `server_name` differ: give the server's name once",
                ));
            }
            Some(_) => return Err(super::input::bad(field, "must be a string")),
        }
    }
    let name = name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    let name = name.ok_or_else(|| super::input::bad("server_name", "is required"))?;
    Ok((name, body))
}

/// Every credential string an entry holds, to mask out of what is said of it.
fn secrets_of(entry: &Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    let mut copy = entry.clone();
    each_secret(&mut copy, &mut |_, v| match &*v {
        Value::Null => {}
        _ if is_env_ref(v) => {}
        Value::String(s) => out.push(s.clone()),
        other => out.push(other.to_string()),
    });
    out.retain(|s| s.len() >= 4);
    out
}

fn invalid(reason: String, key: &str, entry: &Map<String, Value>) -> ApiError {
    let what = if key.is_empty() { reason } else { format!("`{key}` {reason}") };
    let what = match super::models::masked(json!(what), &secrets_of(entry)) {
        Value::String(s) => s,
        other => other.to_string(),
    };
    let mut err = ApiError::new(StatusCode::BAD_REQUEST, format!("Invalid MCP server: {what}."))
        .with_code("invalid_mcp_server");
    if !key.is_empty() {
        err = err.with_param(key.to_owned());
    }
    err
}

/// Checks a plaintext entry as config.yaml's would be, warnings refused.
fn check(name: &str, entry: &Map<String, Value>) -> Result<McpServer, ApiError> {
    let (server, warnings) =
        table::build(name, entry).map_err(|e| invalid(e.reason, &e.key, entry))?;
    if let Some(first) = warnings.first() {
        let all: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        return Err(invalid(all.join("; "), "", entry).with_param(first.key().to_owned()));
    }
    Ok(server)
}

fn sealed(state: &AppState, name: &str, entry: &Map<String, Value>) -> Result<Value, ApiError> {
    let mut entry = entry.clone();
    table::seal_entry(state.secret_box(), name, &mut entry).map_err(store_error)?;
    Ok(Value::Object(entry))
}

/// After a change: this process serves it now; others follow the feed.
async fn apply(state: &AppState) {
    let file = state.models().file();
    let table = state.mcp_servers();
    if let Err(e) = table.rebuild(state.store(), state.secret_box(), &file).await {
        tracing::warn!(error = %e, "MCP servers not rebuilt now; the change feed will retry");
        table.notify_changed();
    }
}

/// `<redacted>` in a change means "keep the stored value" (an answer sent back); it is
/// refused where nothing is stored.
fn keep_redacted(new: &mut Map<String, Value>, old: &Map<String, Value>) -> Result<(), ApiError> {
    let mut old = old.clone();
    let mut stored = std::collections::HashMap::new();
    each_secret(&mut old, &mut |path, v| {
        stored.insert(path.to_owned(), v.clone());
    });
    let mut missing = None;
    each_secret(new, &mut |path, v| {
        if v.as_str() == Some(REDACTED) {
            match stored.get(path) {
                Some(kept) => *v = kept.clone(),
                None => missing = missing.take().or(Some(path.to_owned())),
            }
        }
    });
    match missing {
        Some(path) => Err(super::input::bad(&path, "is `<redacted>`: give the value itself")),
        None => Ok(()),
    }
}

/// Adds a server from a body in config.yaml's shape plus its `server_name`; answers it as the
/// list shows it.
pub async fn create(
    state: &AppState,
    actor: &Actor,
    body: Map<String, Value>,
) -> Result<Value, ApiError> {
    let (name, mut entry) = split_name(body)?;
    if in_config(state, &name) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("MCP server `{name}` is defined in config.yaml; choose another name."),
        )
        .with_code("conflict")
        .with_param("server_name"));
    }
    keep_redacted(&mut entry, &Map::new())?;
    check(&name, &entry)?;
    let new = NewMcpServer {
        name: name.clone(),
        entry: sealed(state, &name, &entry)?,
        created_by: Some(actor.name().to_owned()),
    };
    let record = state.store().create_mcp_server(new).await.map_err(store_error)?;
    apply(state).await;
    let answer = stored_answer(state, &record);
    audit(state, actor, "create", subject(&name), None, Some(&answer)).await;
    Ok(answer)
}

/// Replaces a stored server's entry with the body's (named by its `server_name`); a
/// credential given as `<redacted>` keeps the stored one.
pub async fn update(
    state: &AppState,
    actor: &Actor,
    body: Map<String, Value>,
) -> Result<Value, ApiError> {
    let (name, mut entry) = split_name(body)?;
    if in_config(state, &name) {
        return Err(defined_in_config(&name));
    }
    let old = state
        .store()
        .get_mcp_server(&name)
        .await
        .map_err(store_error)?
        .ok_or_else(|| not_found(&name))?;
    let old_entry = table::open_entry(state.secret_box(), &old).map_err(store_error)?;
    keep_redacted(&mut entry, &old_entry)?;
    check(&name, &entry)?;
    let patch = McpServerPatch {
        entry: sealed(state, &name, &entry)?,
        updated_by: Some(actor.name().to_owned()),
    };
    let record = state.store().update_mcp_server(&name, patch).await.map_err(|e| match e {
        StoreError::NotFound { .. } => not_found(&name),
        e => store_error(e),
    })?;
    let before = stored_answer(state, &old);
    apply(state).await;
    let answer = stored_answer(state, &record);
    audit(state, actor, "update", subject(&name), Some(&before), Some(&answer)).await;
    Ok(answer)
}

/// The stored server `name`; a server of config.yaml is refused (it cannot be changed here).
async fn stored_only(state: &AppState, name: &str) -> Result<McpServerRecord, ApiError> {
    if in_config(state, name) {
        return Err(defined_in_config(name));
    }
    state.store().get_mcp_server(name).await.map_err(store_error)?.ok_or_else(|| not_found(name))
}

/// A stored server's entry in config.yaml's shape with every credential as `<redacted>`: what
/// a form that changes part of it sends back to [`update`], which keeps those credentials.
pub async fn stored_entry(state: &AppState, name: &str) -> Result<Map<String, Value>, ApiError> {
    let record = stored_only(state, name).await?;
    let mut entry = record.entry.as_object().cloned().unwrap_or_default();
    each_secret(&mut entry, &mut |_, v| {
        if !v.is_null() && !is_env_ref(v) {
            *v = json!(REDACTED);
        }
    });
    Ok(entry)
}

/// Removes a stored server, and the server from every key's and team's `object_permission`,
/// so that a server made later under the same name is not granted by an old permission.
pub async fn delete(state: &AppState, actor: &Actor, name: &str) -> Result<Value, ApiError> {
    let old = stored_only(state, name).await?;
    let before = stored_answer(state, &old);
    if !state.store().delete_mcp_server(name).await.map_err(store_error)? {
        return Err(not_found(name));
    }
    let forgotten = state.store().forget_mcp_server(name).await.map_err(store_error)?;
    if let Err(e) = state.directory().refresh(state.store()).await {
        tracing::warn!(error = %e, "key directory not refreshed now; it follows the feed");
    }
    apply(state).await;
    audit(state, actor, "delete", subject(name), Some(&before), None).await;
    Ok(json!({
        "message": format!("MCP server {name} deleted."),
        "server_name": name,
        "permissions_updated": forgotten,
    }))
}

/// `GET /v1/mcp/server`: every server, config.yaml's first, then the stored ones.
pub fn list(state: &AppState) -> Value {
    let file = state.models().file();
    let table = state.mcp_servers();
    let stored = table.stored();
    let gateway = state.mcp();
    let mut out: Vec<Value> = file
        .mcp
        .servers
        .iter()
        .map(|s| describe(s, "config", gateway.server(&s.name).as_deref()))
        .collect();
    out.extend(
        stored.iter().filter(|r| !in_config(state, &r.name)).map(|r| stored_answer(state, r)),
    );
    Value::Array(out)
}

/// `GET /v1/mcp/server/{name}`.
pub async fn get(state: &AppState, name: &str) -> Result<Value, ApiError> {
    if let Some(s) = state.models().file().mcp.servers.iter().find(|s| s.name == name) {
        return Ok(describe(s, "config", state.mcp().server(name).as_deref()));
    }
    let record = state
        .store()
        .get_mcp_server(name)
        .await
        .map_err(store_error)?
        .ok_or_else(|| not_found(name))?;
    Ok(stored_answer(state, &record))
}

/// `GET /v1/mcp/server/{name}/tools`: the tools the server lists (connecting to it if it is
/// not yet), each with whether the server's tool filters offer it to clients.
pub async fn tools(state: &AppState, name: &str) -> Result<Value, ApiError> {
    let server = match state.mcp().server(name) {
        Some(s) => s,
        None if state.store().get_mcp_server(name).await.map_err(store_error)?.is_some() => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("MCP server `{name}` is stored but not served; its entry is in the log."),
            )
            .with_code("mcp_server_not_served"));
        }
        None => return Err(not_found(name)),
    };
    let listed = server.tools().await.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("MCP server `{name}` did not list its tools: {}", e.message),
        )
        .with_code("mcp_server_unavailable")
    })?;
    let tools: Vec<Value> = listed
        .iter()
        .map(|t| {
            let offered =
                t.get("name").and_then(Value::as_str).is_some_and(|n| server.config().offers(n));
            let mut t = t.clone();
            if let Value::Object(m) = &mut t {
                m.insert("offered".into(), json!(offered));
            }
            t
        })
        .collect();
    Ok(json!({ "server_name": name, "tools": tools, "status": status(&server) }))
}

fn status(up: &Upstream) -> Value {
    let s = up.status();
    json!({
        "connected": s.connected,
        "restarts": s.restarts,
        "last_error": s.last_error,
        "server_info": s.server_info,
    })
}

/// A stored server as answers show it: built from its entry, with its health when served.
fn stored_answer(state: &AppState, r: &McpServerRecord) -> Value {
    let built =
        table::open_entry(state.secret_box(), r).map_err(|e| e.to_string()).and_then(|entry| {
            table::build(&r.name, &entry).map(|(s, _)| s).map_err(|e| {
                let masked = super::models::masked(json!(e.to_string()), &secrets_of(&entry));
                masked.as_str().unwrap_or_default().to_owned()
            })
        });
    let mut answer = match &built {
        Ok(server) => {
            let served = state.mcp().server(&r.name).filter(|up| up.config() == server);
            describe(server, "db", served.as_deref())
        }
        Err(why) => json!({
            "server_name": r.name,
            "server_id": r.name,
            "source": "db",
            "served": false,
            "error": why,
        }),
    };
    if let Value::Object(m) = &mut answer {
        m.insert("created_at".into(), json!(r.created_at));
        m.insert("updated_at".into(), json!(r.updated_at));
        m.insert("created_by".into(), json!(r.created_by));
        m.insert("updated_by".into(), json!(r.updated_by));
    }
    answer
}

/// A map of names to values with every value shown as `<redacted>`.
fn names_only(values: impl Iterator<Item = String>) -> Value {
    Value::Object(values.map(|k| (k, json!(REDACTED))).collect())
}

/// What an admin sees of a server: how it is reached, its filters, whether its credentials
/// are set (never their values), and, when `served`, its health.
fn describe(s: &McpServer, source: &str, served: Option<&Upstream>) -> Value {
    let mut m = Map::new();
    m.insert("server_name".into(), json!(s.name));
    m.insert("server_id".into(), json!(s.name));
    m.insert("source".into(), json!(source));
    m.insert("transport".into(), json!(s.transport.kind()));
    match &s.transport {
        McpTransport::Stdio { command, args, env, cwd } => {
            m.insert("command".into(), json!(command));
            m.insert("args".into(), json!(args));
            m.insert("env".into(), names_only(env.keys().cloned()));
            m.insert("cwd".into(), json!(cwd));
        }
        McpTransport::Http { url } | McpTransport::Sse { url } => {
            m.insert("url".into(), json!(url));
            m.insert("static_headers".into(), names_only(s.static_headers.keys().cloned()));
            let (auth_type, set) = match &s.auth {
                McpAuth::None => ("none", false),
                McpAuth::Bearer(_) => ("bearer_token", true),
                McpAuth::ApiKey(_) => ("api_key", true),
                McpAuth::Basic(_) => ("basic", true),
                McpAuth::Authorization(_) => ("authorization", true),
            };
            m.insert("auth_type".into(), json!(auth_type));
            m.insert("auth_value".into(), if set { json!(REDACTED) } else { Value::Null });
        }
    }
    m.insert("description".into(), json!(s.description));
    m.insert("allowed_tools".into(), json!(s.allowed_tools));
    m.insert("disallowed_tools".into(), json!(s.disallowed_tools));
    m.insert("timeout".into(), json!(s.timeout.as_secs_f64()));
    m.insert("served".into(), json!(served.is_some()));
    m.insert("status".into(), served.map_or(Value::Null, status));
    Value::Object(m)
}
