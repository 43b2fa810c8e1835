//! `object_permission` in management bodies and answers: which MCP servers, and which of
//! their tools, a key or team may use, in LiteLLM's shape —
//! `{"mcp_servers": ["memory"], "mcp_tool_permissions": {"filesystem": ["read_file"]}}`.
//!
//! Checked here field by field, so a 400 names the exact place (`object_permission.mcp_servers[1]`).
//! LiteLLM's other permissions (vector stores, agents, MCP access groups) have nothing to
//! act on in tollgate: a body that sets one is refused rather than stored and ignored.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{Value, json};
use tollgate_store::ObjectPermission;

use super::input::{MAX_LIST_ENTRIES, bad};
use crate::error::ApiError;

/// The field's name in bodies and answers.
const FIELD: &str = "object_permission";

/// What an answer shows: both fields always, `mcp_servers` `null` when not set.
pub fn to_json(p: &ObjectPermission) -> Value {
    json!({
        "mcp_servers": p.mcp_servers,
        "mcp_tool_permissions": p.mcp_tool_permissions,
    })
}

/// LiteLLM's permissions tollgate has nothing to act on, with what each is for.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("mcp_access_groups", "MCP access groups"),
    ("vector_stores", "vector store access"),
    ("agents", "agent access"),
    ("agent_access_groups", "agent access groups"),
];

/// The id LiteLLM gives a stored `object_permission` and shows in its answers: accepted so
/// that an answer read from LiteLLM can be sent back, never stored (it grants nothing).
const COMPUTED: &[&str] = &["object_permission_id"];

/// The access a create body gives: absent or `null` says nothing (`{}`).
pub fn parse(value: Option<Value>) -> Result<ObjectPermission, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(ObjectPermission::default()),
        Some(v) => parse_object(v),
    }
}

/// The change an update body makes: absent keeps the stored access, `null` clears it to
/// `{}`, an object replaces it whole.
pub fn parse_change(value: Option<Option<Value>>) -> Result<Option<ObjectPermission>, ApiError> {
    value.map(parse).transpose()
}

fn parse_object(value: Value) -> Result<ObjectPermission, ApiError> {
    let Value::Object(fields) = value else {
        return Err(bad(
            FIELD,
            "must be an object such as {\"mcp_servers\": [\"memory\"], \
             \"mcp_tool_permissions\": {\"filesystem\": [\"read_file\"]}}",
        ));
    };
    let mut access = ObjectPermission::default();
    for (name, v) in fields {
        let path = format!("{FIELD}.{name}");
        match name.as_str() {
            "mcp_servers" => access.mcp_servers = servers(&path, v)?,
            "mcp_tool_permissions" => access.mcp_tool_permissions = tools(&path, v)?,
            n if COMPUTED.contains(&n) => {}
            n => refuse_unsupported(&path, n, &v)?,
        }
    }
    Ok(access)
}

/// `null` is not set; a list names the servers allowed (none, when empty).
fn servers(path: &str, v: Value) -> Result<Option<Vec<String>>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::Array(items) => names(path, items, "an MCP server name").map(Some),
        _ => Err(bad(path, "must be a list of MCP server names (or null for not set)")),
    }
}

/// `null` is no restriction; an object maps server names to the tools allowed on each.
fn tools(path: &str, v: Value) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
    let entries = match v {
        Value::Null => return Ok(BTreeMap::new()),
        Value::Object(entries) => entries,
        _ => {
            return Err(bad(
                path,
                "must be an object of MCP server names to lists of tool names, \
                 such as {\"filesystem\": [\"read_file\"]}",
            ));
        }
    };
    if entries.len() > MAX_LIST_ENTRIES {
        return Err(bad(path, &format!("may name at most {MAX_LIST_ENTRIES} servers")));
    }
    let mut out = BTreeMap::new();
    for (server, list) in entries {
        if !is_name(&server) {
            return Err(bad(path, "has a server name that is empty or holds control characters"));
        }
        let entry_path = format!("{path}.{server}");
        let Value::Array(items) = list else {
            return Err(bad(&entry_path, "must be a list of tool names"));
        };
        let tools = names(&entry_path, items, "a tool name")?;
        out.insert(server, tools);
    }
    Ok(out)
}

/// Each item a non-empty string without control characters.
fn names(path: &str, items: Vec<Value>, what: &str) -> Result<Vec<String>, ApiError> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) if is_name(&s) => Ok(s),
            _ => Err(bad(
                &format!("{path}[{i}]"),
                &format!("must be {what}: a non-empty string without control characters"),
            )),
        })
        .collect()
}

fn is_name(s: &str) -> bool {
    !s.trim().is_empty() && !s.chars().any(char::is_control)
}

/// LiteLLM's other permissions are refused unless they grant nothing (`null` or an empty
/// list, as LiteLLM's own clients send by default): storing one and ignoring it would let
/// a caller believe it took effect.
fn refuse_unsupported(path: &str, name: &str, v: &Value) -> Result<(), ApiError> {
    let empty = match v {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    };
    let known = UNSUPPORTED.iter().find(|(n, _)| *n == name);
    if empty && known.is_some() {
        return Ok(());
    }
    let message = match known {
        Some((_, feature)) => format!(
            "`{path}` ({feature}) is not supported by this version of tollgate; \
             `{FIELD}` takes `mcp_servers` and `mcp_tool_permissions`."
        ),
        None => format!(
            "`{path}` is not a field tollgate knows; `{FIELD}` takes `mcp_servers` and \
             `mcp_tool_permissions`."
        ),
    };
    Err(ApiError::new(StatusCode::BAD_REQUEST, message)
        .with_code("not_supported")
        .with_param(path.to_owned()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn err(v: Value) -> (String, String, String) {
        let e = parse(Some(v)).unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        (
            e.param().unwrap_or_default().to_owned(),
            e.code().unwrap_or_default().to_owned(),
            e.message().to_owned(),
        )
    }

    #[test]
    fn litellm_shape_parses() {
        let p = parse(Some(json!({
            "mcp_servers": ["memory", "filesystem"],
            "mcp_tool_permissions": {"filesystem": ["read_file", "list_directory"]},
        })))
        .unwrap();
        assert_eq!(p.mcp_servers, Some(vec!["memory".to_owned(), "filesystem".to_owned()]));
        assert_eq!(p.mcp_tool_permissions["filesystem"], ["read_file", "list_directory"]);
        assert_eq!(
            to_json(&p),
            json!({
                "mcp_servers": ["memory", "filesystem"],
                "mcp_tool_permissions": {"filesystem": ["read_file", "list_directory"]},
            })
        );
    }

    #[test]
    fn absent_null_and_empty_say_nothing() {
        for v in [None, Some(Value::Null), Some(json!({})), Some(json!({"mcp_servers": null}))] {
            assert_eq!(parse(v).unwrap(), ObjectPermission::default());
        }
        assert_eq!(
            to_json(&ObjectPermission::default()),
            json!({"mcp_servers": null, "mcp_tool_permissions": {}})
        );
        let none = parse(Some(json!({"mcp_servers": []}))).unwrap();
        assert_eq!(none.mcp_servers, Some(Vec::new()));
    }

    #[test]
    fn changes_keep_clear_or_replace() {
        assert_eq!(parse_change(None).unwrap(), None);
        assert_eq!(parse_change(Some(None)).unwrap(), Some(ObjectPermission::default()));
        let set = parse_change(Some(Some(json!({"mcp_servers": ["memory"]})))).unwrap().unwrap();
        assert_eq!(set.mcp_servers, Some(vec!["memory".to_owned()]));
        assert!(parse_change(Some(Some(json!({"mcp_servers": "memory"})))).is_err());
    }

    #[test]
    fn bad_shapes_name_the_field() {
        let (param, _, _) = err(json!(["memory"]));
        assert_eq!(param, "object_permission");
        let (param, _, msg) = err(json!({"mcp_servers": "memory"}));
        assert_eq!(param, "object_permission.mcp_servers");
        assert!(msg.contains("list of MCP server names"), "{msg}");
        let (param, code, _) = err(json!({"mcp_servers": ["memory", ""]}));
        assert_eq!(
            (param.as_str(), code.as_str()),
            ("object_permission.mcp_servers[1]", "invalid_value")
        );
        let (param, _, _) = err(json!({"mcp_servers": [1]}));
        assert_eq!(param, "object_permission.mcp_servers[0]");
        let (param, _, _) = err(json!({"mcp_tool_permissions": ["read_file"]}));
        assert_eq!(param, "object_permission.mcp_tool_permissions");
        let (param, _, _) = err(json!({"mcp_tool_permissions": {"filesystem": "read_file"}}));
        assert_eq!(param, "object_permission.mcp_tool_permissions.filesystem");
        let (param, _, _) = err(json!({"mcp_tool_permissions": {"filesystem": ["ok", "\u{0}"]}}));
        assert_eq!(param, "object_permission.mcp_tool_permissions.filesystem[1]");
        let (param, _, _) = err(json!({"mcp_tool_permissions": {" ": ["x"]}}));
        assert_eq!(param, "object_permission.mcp_tool_permissions");
    }

    #[test]
    fn other_permissions_are_refused_unless_empty() {
        let (param, code, msg) = err(json!({"vector_stores": ["vs-1"]}));
        assert_eq!(
            (param.as_str(), code.as_str()),
            ("object_permission.vector_stores", "not_supported")
        );
        assert!(msg.contains("not supported"), "{msg}");
        for field in ["mcp_access_groups", "agents", "agent_access_groups"] {
            let (param, code, _) = err(json!({ field: ["x"] }));
            assert_eq!(param, format!("object_permission.{field}"));
            assert_eq!(code, "not_supported");
        }
        let (param, code, msg) = err(json!({"mcp_server": ["memory"]}));
        assert_eq!(
            (param.as_str(), code.as_str()),
            ("object_permission.mcp_server", "not_supported")
        );
        assert!(msg.contains("not a field tollgate knows"), "{msg}");
        // What LiteLLM's answers hold when nothing else is granted is accepted as it is.
        let echoed = parse(Some(json!({
            "object_permission_id": "b6f0",
            "mcp_servers": ["memory"],
            "mcp_access_groups": [],
            "vector_stores": [],
            "agents": null,
        })))
        .unwrap();
        assert_eq!(echoed.mcp_servers, Some(vec!["memory".to_owned()]));
        // An unknown field is refused even when empty.
        assert!(parse(Some(json!({"tools": []}))).is_err());
    }
}
