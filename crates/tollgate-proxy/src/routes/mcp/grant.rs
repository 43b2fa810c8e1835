//! Which MCP servers, and which of their tools, a caller may use.
//!
//! The admin (master key, an admin key, anyone on this machine while no key is set) may use
//! every server. A virtual key uses its own `object_permission.mcp_servers` when set, its
//! team's when that is set too (both: only servers on both lists), its team's alone when the
//! key says nothing, and the operator's `default_mcp_servers` when neither does — which is no
//! server unless the operator names some. Tool lists (`mcp_tool_permissions`) narrow a server
//! the same way: the key's and the team's both apply.

use std::collections::BTreeMap;

use tollgate_mcp::Grant;
use tollgate_store::ObjectPermission;

use crate::auth::Principal;
use crate::state::AppState;

/// What `caller` may use.
pub(super) fn of(state: &AppState, caller: &Principal) -> Grant {
    if caller.is_admin(state.directory()) {
        let servers = state.mcp().servers().iter().map(|s| s.name().to_owned()).collect();
        return Grant { servers, tools: BTreeMap::new() };
    }
    let defaults = state.mcp_default_servers();
    match caller.key() {
        None => Grant { servers: defaults.to_vec(), tools: BTreeMap::new() },
        Some(key) => {
            let team = key.record.team_id.as_deref().and_then(|t| state.directory().team(t));
            combine(
                &key.record.object_permission,
                team.as_ref().map(|t| &t.record.object_permission),
                defaults,
            )
        }
    }
}

/// A key's access with its team's.
fn combine(key: &ObjectPermission, team: Option<&ObjectPermission>, defaults: &[String]) -> Grant {
    let team_servers = team.and_then(|t| t.mcp_servers.as_ref());
    let servers = match (&key.mcp_servers, team_servers) {
        (Some(k), Some(t)) => k.iter().filter(|s| t.contains(s)).cloned().collect(),
        (Some(k), None) => k.clone(),
        (None, Some(t)) => t.clone(),
        (None, None) => defaults.to_vec(),
    };
    let mut tools = key.mcp_tool_permissions.clone();
    for (server, allowed) in team.map(|t| &t.mcp_tool_permissions).into_iter().flatten() {
        tools
            .entry(server.clone())
            .and_modify(|mine| mine.retain(|tool| allowed.contains(tool)))
            .or_insert_with(|| allowed.clone());
    }
    Grant { servers, tools }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servers(list: &[&str]) -> ObjectPermission {
        ObjectPermission {
            mcp_servers: Some(list.iter().map(|s| (*s).to_owned()).collect()),
            ..ObjectPermission::default()
        }
    }

    fn names(g: &Grant) -> Vec<&str> {
        g.servers.iter().map(String::as_str).collect()
    }

    #[test]
    fn a_key_that_says_nothing_gets_its_teams_servers_else_the_default() {
        let none = ObjectPermission::default();
        let defaults = vec!["memory".to_owned()];
        assert_eq!(names(&combine(&none, None, &defaults)), ["memory"]);
        assert_eq!(names(&combine(&none, Some(&none), &[])), Vec::<&str>::new());
        assert_eq!(names(&combine(&none, Some(&servers(&["fs"])), &defaults)), ["fs"]);
    }

    #[test]
    fn a_key_and_its_team_both_apply() {
        let key = servers(&["memory", "fs"]);
        assert_eq!(names(&combine(&key, None, &[])), ["memory", "fs"]);
        assert_eq!(names(&combine(&key, Some(&servers(&["fs", "wiki"])), &[])), ["fs"]);
        // An empty list is "none", not "not set".
        assert!(combine(&servers(&[]), None, &["memory".to_owned()]).servers.is_empty());
    }

    #[test]
    fn tool_lists_of_key_and_team_narrow_together() {
        let mut key = servers(&["fs", "memory"]);
        key.mcp_tool_permissions.insert("fs".into(), vec!["read".into(), "write".into()]);
        let mut team = servers(&["fs", "memory"]);
        team.mcp_tool_permissions.insert("fs".into(), vec!["read".into()]);
        team.mcp_tool_permissions.insert("memory".into(), vec!["search".into()]);
        let g = combine(&key, Some(&team), &[]);
        assert!(g.allows("fs", "read"));
        assert!(!g.allows("fs", "write"));
        assert!(g.allows("memory", "search"));
        assert!(!g.allows("memory", "delete"));
    }
}
