//! The MCP server table: config.yaml's `mcp_servers` and the stored ones, served together by
//! the MCP gateway. A change — through the management API, another process's change feed,
//! or a reload of config.yaml — reads the stored servers again and hands the whole set to
//! [`tollgate_mcp::Gateway::set_servers`], which keeps the connections of servers whose
//! config is unchanged.
//!
//! A stored server is its entry in config.yaml's shape; its credentials (`auth_value`,
//! `authentication_token`, every `env` value and every `static_headers` value) are sealed
//! before they reach the store, bound to the server's name and field. What was last read is
//! kept in the data directory as stored ([`MCP_SNAPSHOT_FILE_NAME`]), so a process started
//! while the database is down serves the stored servers too.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::{Map, Value};
use tollgate_config::{Config, ConfigError, Diagnostic, McpServer, ProcessEnv};
use tollgate_mcp::Gateway;
use tollgate_store::{McpServerRecord, SecretBox, Store, StoreError};

use crate::kept::Kept;
use crate::models::seal;

/// File name of the stored-MCP-server snapshot inside the data directory.
pub const MCP_SNAPSHOT_FILE_NAME: &str = "mcp_servers.json";

const SNAPSHOT_VERSION: u32 = 1;

/// The stored servers as last read, their credentials sealed as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct McpSnapshot {
    mcp_servers: Vec<McpServerRecord>,
}

/// Top-level fields of an entry that hold a credential.
const SECRET_FIELDS: &[&str] = &["auth_value", "authentication_token"];
/// Fields of an entry whose every value may hold a credential.
const SECRET_MAPS: &[&str] = &["env", "static_headers"];

/// Calls `f` on every credential value of an entry, with its path (`auth_value`, `env.TOKEN`).
pub fn each_secret(entry: &mut Map<String, Value>, f: &mut dyn FnMut(&str, &mut Value)) {
    for (k, v) in entry.iter_mut() {
        if SECRET_FIELDS.contains(&k.as_str()) {
            f(k, v);
        } else if SECRET_MAPS.contains(&k.as_str())
            && let Value::Object(values) = v
        {
            for (name, value) in values.iter_mut() {
                f(&format!("{k}.{name}"), value);
            }
        }
    }
}

/// What a stored server's sealed values are bound to.
pub fn scope(name: &str) -> String {
    format!("mcp_server/{name}")
}

/// Seals an entry's credentials (`os.environ/` references stay as written).
pub fn seal_entry(
    sb: &SecretBox,
    name: &str,
    entry: &mut Map<String, Value>,
) -> Result<(), StoreError> {
    seal::seal_with(sb, &scope(name), entry, each_secret)
}

/// A stored server's entry with its credentials opened.
pub fn open_entry(sb: &SecretBox, r: &McpServerRecord) -> Result<Map<String, Value>, StoreError> {
    let mut entry = r.entry.as_object().cloned().unwrap_or_default();
    seal::open_with(sb, &scope(&r.name), &mut entry, each_secret)?;
    Ok(entry)
}

/// Checks a plaintext entry exactly as config.yaml's entry named `name` is checked.
pub fn build(
    name: &str,
    entry: &Map<String, Value>,
) -> Result<(McpServer, Vec<Diagnostic>), ConfigError> {
    tollgate_config::mcp_server_from_json(name, &Value::Object(entry.clone()), &ProcessEnv)
}

/// The stored servers as last read, and the gateway that serves them with config.yaml's.
#[derive(Debug)]
pub struct McpTable {
    gateway: Arc<Gateway>,
    stored: ArcSwap<Vec<McpServerRecord>>,
    rebuilding: tokio::sync::Mutex<()>,
    changed: Arc<tokio::sync::Notify>,
    snapshot: Kept<McpSnapshot>,
}

/// What a rebuild did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rebuilt {
    /// Stored servers now served.
    pub served: usize,
    /// Stored servers left out (each logged with its reason).
    pub skipped: usize,
}

impl McpTable {
    /// A table serving `gateway`'s servers (config.yaml's) until [`McpTable::rebuild`] reads
    /// the store (or [`McpTable::load_snapshot`] the copy at `snapshot`);
    /// [`McpTable::follow`] rebuilds whenever `changed` is woken.
    pub fn new(
        gateway: Arc<Gateway>,
        changed: Arc<tokio::sync::Notify>,
        snapshot: PathBuf,
    ) -> Self {
        Self {
            gateway,
            stored: ArcSwap::default(),
            rebuilding: tokio::sync::Mutex::new(()),
            changed,
            snapshot: Kept::new(snapshot, SNAPSHOT_VERSION, "stored MCP server"),
        }
    }

    /// The gateway.
    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    /// The stored servers as last read.
    pub fn stored(&self) -> Arc<Vec<McpServerRecord>> {
        self.stored.load_full()
    }

    /// Asks the background task ([`McpTable::follow`]) to rebuild soon.
    pub fn notify_changed(&self) {
        self.changed.notify_one();
    }

    /// Reads the stored servers and gives the gateway them with `file`'s. A stored server
    /// that cannot be built (an unreadable credential, a name config.yaml took since) is left
    /// out and logged; the others are served. What was read is kept on disk, sealed as
    /// stored, for a start while the database is down.
    pub async fn rebuild(
        &self,
        store: &Store,
        sb: &SecretBox,
        file: &Config,
    ) -> Result<Rebuilt, StoreError> {
        let _one_at_a_time = self.rebuilding.lock().await;
        let records = store.list_mcp_servers().await?;
        let report = self.apply(sb, file, records.clone());
        self.snapshot.keep(McpSnapshot { mcp_servers: records });
        Ok(report)
    }

    /// Serves the stored servers of the snapshot in the data directory, if there is one: what
    /// a process started while the database is down knows until the database answers.
    pub async fn load_snapshot(&self, sb: &SecretBox, file: &Config) -> Option<Rebuilt> {
        let snapshot = self.snapshot.load()?;
        let _one_at_a_time = self.rebuilding.lock().await;
        let report = self.apply(sb, file, snapshot.mcp_servers);
        tracing::info!(
            mcp_servers = report.served,
            "stored MCP servers served from the snapshot until the database answers"
        );
        Some(report)
    }

    fn apply(&self, sb: &SecretBox, file: &Config, records: Vec<McpServerRecord>) -> Rebuilt {
        let mut servers = file.mcp.servers.clone();
        let mut report = Rebuilt::default();
        for r in &records {
            if servers.iter().any(|s| s.name == r.name) {
                report.skipped += 1;
                tracing::error!(mcp_server = %r.name, "stored MCP server not served: config.yaml defines one of that name");
                continue;
            }
            let built = open_entry(sb, r).and_then(|entry| {
                build(&r.name, &entry).map_err(|e| StoreError::Invalid(e.to_string()))
            });
            match built {
                Ok((server, warnings)) => {
                    for w in &warnings {
                        tracing::warn!(mcp_server = %r.name, "stored MCP server: {w}");
                    }
                    servers.push(server);
                    report.served += 1;
                }
                Err(e) => {
                    report.skipped += 1;
                    tracing::error!(mcp_server = %r.name, error = %e, "stored MCP server not served");
                }
            }
        }
        self.stored.store(Arc::new(records));
        self.gateway.set_servers(&servers);
        report
    }

    /// Rebuilds whenever the feed says a stored server changed (the directory wakes
    /// `changed`), and every `every` regardless. `file` gives config.yaml as last loaded.
    pub async fn follow(
        self: Arc<Self>,
        store: Store,
        sb: Arc<SecretBox>,
        file: impl Fn() -> Arc<Config> + Send + Sync + 'static,
        every: Duration,
    ) {
        loop {
            if let Err(e) = self.rebuild(&store, &sb, &file()).await {
                tracing::debug!(error = %e, "stored MCP servers not read: store unavailable");
            }
            let _ = tokio::time::timeout(every, self.changed.notified()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sb() -> SecretBox {
        SecretBox::from_env_value("0123456789abcdef0123456789abcdef").unwrap()
    }

    #[test]
    fn every_credential_of_an_entry_is_sealed_and_opens_back() {
        let plain = json!({
            "url": "http://h/mcp",
            "auth_type": "bearer_token",
            "auth_value": "tok-secret-1",
            "static_headers": {"X-Team": "blue-team-secret"},
            "description": "wiki",
        });
        let mut entry = plain.as_object().unwrap().clone();
        seal_entry(&sb(), "wiki", &mut entry).unwrap();
        let text = Value::Object(entry.clone()).to_string();
        assert!(!text.contains("tok-secret-1") && !text.contains("blue-team-secret"), "{text}");
        assert_eq!(entry["url"], "http://h/mcp");
        let record = McpServerRecord {
            name: "wiki".into(),
            entry: Value::Object(entry.clone()),
            created_by: None,
            updated_by: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        };
        assert_eq!(Value::Object(open_entry(&sb(), &record).unwrap()), plain);
        // Bound to its server: moved to another name, it does not open.
        let moved = McpServerRecord { name: "other".into(), ..record };
        assert!(open_entry(&sb(), &moved).is_err());
    }

    #[test]
    fn env_values_are_sealed_but_references_stay() {
        let mut entry = json!({"command": "x", "env": {"A": "plain-secret", "B": "os.environ/B"}})
            .as_object()
            .unwrap()
            .clone();
        seal_entry(&sb(), "s", &mut entry).unwrap();
        assert!(entry["env"]["A"].is_object());
        assert_eq!(entry["env"]["B"], "os.environ/B");
    }
}
