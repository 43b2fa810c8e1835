//! The directory kept on disk, so that a process started while the database is down still
//! knows its virtual keys, users and teams.
//!
//! Written after every full load from the database and after changes from the feed: to a
//! temporary file (mode 0600), fsync'd, renamed over the old one, and the directory entry
//! fsync'd, so a crash leaves either the old snapshot or the new one, never half of one. It
//! holds what the directory holds — key hashes, never keys — and is read only at start-up,
//! until the database answers; then the database's view replaces it entirely, so a key
//! deleted or blocked meanwhile stops working as soon as the database is back.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tollgate_store::{KeyRecord, TeamRecord, UserRecord};

/// File name of the snapshot inside the data directory.
pub const SNAPSHOT_FILE_NAME: &str = "directory.json";

/// Format version; a snapshot of another version is ignored.
const VERSION: u32 = 1;

/// What the snapshot file holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    /// Format version.
    pub version: u32,
    /// When the directory it shows was read from the database.
    pub taken_at: DateTime<Utc>,
    /// Every virtual key, with the spend this process counted.
    pub keys: Vec<KeyRecord>,
    /// Every user.
    pub users: Vec<UserRecord>,
    /// Every team.
    pub teams: Vec<TeamRecord>,
}

impl Snapshot {
    /// A snapshot of these records, taken now.
    pub fn new(keys: Vec<KeyRecord>, users: Vec<UserRecord>, teams: Vec<TeamRecord>) -> Self {
        Self { version: VERSION, taken_at: Utc::now(), keys, users, teams }
    }
}

/// Writes `snapshot` to `path` atomically and durably, readable by the owner only.
pub fn save(path: &Path, snapshot: &Snapshot) -> io::Result<()> {
    save_bytes(path, &serde_json::to_vec(snapshot).map_err(io::Error::other)?)
}

/// Writes `bytes` to `path` atomically (a temporary file renamed over it) and durably (both
/// fsync'd), readable by the owner only.
pub fn save_bytes(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = path.with_extension("json.tmp");
    let written = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        // A file left by an older version may have wider permissions; `mode` applies only
        // when creating.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads the snapshot at `path`: `None` when there is none or it is of another version.
pub fn load(path: &Path) -> io::Result<Option<Snapshot>> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    #[derive(Deserialize)]
    struct Head {
        version: u32,
    }
    let head: Head = serde_json::from_slice(&bytes).map_err(io::Error::other)?;
    if head.version != VERSION {
        return Ok(None);
    }
    serde_json::from_slice(&bytes).map(Some).map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tollgate_store::ObjectPermission;

    use super::*;

    #[test]
    fn round_trips_atomically_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SNAPSHOT_FILE_NAME);
        assert!(load(&path).unwrap().is_none());
        save(&path, &Snapshot::new(Vec::new(), Vec::new(), Vec::new())).unwrap();
        let first = load(&path).unwrap().unwrap();
        assert!(first.keys.is_empty());
        save(&path, &Snapshot::new(Vec::new(), Vec::new(), Vec::new())).unwrap();
        assert!(load(&path).unwrap().unwrap().taken_at >= first.taken_at);
        assert!(!path.with_extension("json.tmp").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        fs::write(&path, br#"{"version": 99}"#).unwrap();
        assert!(load(&path).unwrap().is_none(), "another version is ignored");
    }

    /// A snapshot as written before keys and teams had MCP access still loads: the
    /// records say nothing about it, which is what the database holds for them too.
    #[test]
    fn a_snapshot_from_before_mcp_access_loads() {
        let limits = r#"{"max_budget": 5.0, "budget_duration": "30d", "rpm_limit": null,
            "tpm_limit": null, "max_parallel_requests": null, "max_premium_requests": null,
            "premium_budget_duration": null}"#;
        let text = format!(
            r#"{{"version": 1, "taken_at": "2026-12-01T10:00:00Z",
            "keys": [{{"token_hash": "ab12", "key_name": "sk-...ab12", "key_alias": "ci",
                "user_id": "alice", "team_id": "blue", "models": ["gpt-4o"], "limits": {limits},
                "spend": 1.5, "budget_reset_at": "2026-12-31T00:00:00Z", "premium_spend": 0.0,
                "premium_budget_reset_at": null, "expires": null, "blocked": false,
                "metadata": {{}}, "permissions": {{}},
                "created_at": "2026-11-01T00:00:00Z", "updated_at": "2026-11-02T00:00:00Z"}}],
            "users": [{{"user_id": "alice", "user_email": null, "user_role": null,
                "models": [], "limits": {limits}, "spend": 0.0, "budget_reset_at": null,
                "teams": ["blue"], "metadata": {{}},
                "created_at": "2026-11-01T00:00:00Z", "updated_at": "2026-11-01T00:00:00Z"}}],
            "teams": [{{"team_id": "blue", "team_alias": "Blue", "models": [],
                "limits": {limits}, "spend": 0.0, "budget_reset_at": null, "blocked": false,
                "members": [{{"user_id": "alice", "role": "admin"}}], "metadata": {{}},
                "created_at": "2026-11-01T00:00:00Z", "updated_at": "2026-11-01T00:00:00Z"}}]}}"#
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SNAPSHOT_FILE_NAME);
        fs::write(&path, text).unwrap();
        let snapshot = load(&path).unwrap().expect("the previous format loads");
        assert_eq!(snapshot.keys[0].key_alias.as_deref(), Some("ci"));
        assert_eq!(snapshot.keys[0].spend, 1.5);
        assert_eq!(snapshot.keys[0].object_permission, ObjectPermission::default());
        assert_eq!(snapshot.teams[0].object_permission, ObjectPermission::default());
        assert_eq!(snapshot.users[0].teams, ["blue"]);

        // Written again, it keeps what is set.
        let mut keys = snapshot.keys;
        keys[0].object_permission.mcp_servers = Some(vec!["memory".into()]);
        save(&path, &Snapshot::new(keys, snapshot.users, snapshot.teams)).unwrap();
        let again = load(&path).unwrap().unwrap();
        assert_eq!(again.keys[0].object_permission.mcp_servers, Some(vec!["memory".to_owned()]));
    }
}
