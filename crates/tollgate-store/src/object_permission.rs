//! Which MCP servers, and which of their tools, a virtual key or team may use: LiteLLM's
//! `object_permission`, as stored with the key or team it belongs to.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// MCP access of a key or team, in LiteLLM's field names. The default (stored as `{}`)
/// grants nothing of its own: who holds it gets what the next level grants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObjectPermission {
    /// The MCP servers the holder may use, by name. `None` is "not set": the team's list
    /// applies, or the operator's default. `Some(vec![])` allows none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp_servers: Option<Vec<String>>,
    /// Per server, the tools the holder may call on it. A server that is not a key here
    /// allows all of its tools.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub mcp_tool_permissions: BTreeMap<String, Vec<String>>,
}

impl ObjectPermission {
    /// Whether it says nothing (`{}`): no server list, no tool restrictions.
    pub fn is_empty(&self) -> bool {
        self.mcp_servers.is_none() && self.mcp_tool_permissions.is_empty()
    }

    /// Removes every mention of the MCP server `name`: from `mcp_servers` and as a key of
    /// `mcp_tool_permissions`. Returns whether anything was removed.
    pub fn forget_mcp_server(&mut self, name: &str) -> bool {
        let mut changed = self.mcp_tool_permissions.remove(name).is_some();
        if let Some(servers) = &mut self.mcp_servers {
            let before = servers.len();
            servers.retain(|s| s != name);
            changed |= servers.len() != before;
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn tools(server: &str, names: &[&str]) -> BTreeMap<String, Vec<String>> {
        BTreeMap::from([(server.to_owned(), names.iter().map(|n| (*n).to_owned()).collect())])
    }

    #[test]
    fn empty_object_is_the_default_and_serializes_back_to_it() {
        let parsed: ObjectPermission = serde_json::from_value(json!({})).unwrap();
        assert_eq!(parsed, ObjectPermission::default());
        assert!(parsed.is_empty());
        assert_eq!(serde_json::to_value(&parsed).unwrap(), json!({}));
    }

    #[test]
    fn none_and_an_empty_list_stay_apart() {
        let none = ObjectPermission { mcp_servers: Some(Vec::new()), ..Default::default() };
        let text = serde_json::to_value(&none).unwrap();
        assert_eq!(text, json!({"mcp_servers": []}));
        let back: ObjectPermission = serde_json::from_value(text).unwrap();
        assert_eq!(back.mcp_servers, Some(Vec::new()));
        assert!(!back.is_empty());
        let null: ObjectPermission = serde_json::from_value(json!({"mcp_servers": null})).unwrap();
        assert_eq!(null.mcp_servers, None);
    }

    #[test]
    fn full_shape_round_trips() {
        let value = json!({
            "mcp_servers": ["memory", "filesystem"],
            "mcp_tool_permissions": {"filesystem": ["read_file", "list_directory"]},
        });
        let parsed: ObjectPermission = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(parsed.mcp_servers, Some(vec!["memory".to_owned(), "filesystem".to_owned()]));
        assert_eq!(
            parsed.mcp_tool_permissions,
            tools("filesystem", &["read_file", "list_directory"])
        );
        assert_eq!(serde_json::to_value(&parsed).unwrap(), value);
    }

    #[test]
    fn forgetting_a_server_removes_it_from_both_places_only() {
        let mut p = ObjectPermission {
            mcp_servers: Some(vec!["memory".into(), "filesystem".into(), "memory".into()]),
            mcp_tool_permissions: tools("memory", &["read"]),
        };
        p.mcp_tool_permissions.insert("filesystem".into(), vec!["read_file".into()]);
        assert!(p.forget_mcp_server("memory"));
        assert_eq!(p.mcp_servers, Some(vec!["filesystem".to_owned()]));
        assert_eq!(p.mcp_tool_permissions, tools("filesystem", &["read_file"]));
        assert!(!p.forget_mcp_server("memory"), "nothing left to remove");
        assert!(!p.forget_mcp_server("other"));

        // Only in the tool map; an unset server list stays unset.
        let mut q = ObjectPermission { mcp_servers: None, mcp_tool_permissions: tools("x", &[]) };
        assert!(q.forget_mcp_server("x"));
        assert!(q.is_empty());
    }
}
