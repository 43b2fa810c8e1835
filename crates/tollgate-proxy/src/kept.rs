//! A copy, in the data directory, of something the store holds (the stored models, the stored
//! MCP servers), sealed exactly as stored: a process started while the database is down
//! serves it until the database answers. The file is written only when what was read
//! differs from the last copy, atomically and readable by the owner only
//! ([`crate::access::snapshot::save_bytes`]); a copy of another format version is ignored.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The file: its format version and when it was taken, then the content's own fields.
#[derive(serde::Serialize, serde::Deserialize)]
struct Envelope<T> {
    version: u32,
    taken_at: chrono::DateTime<chrono::Utc>,
    #[serde(flatten)]
    content: T,
}

/// The copy at one path, and the content last written or read there.
#[derive(Debug)]
pub struct Kept<T> {
    path: PathBuf,
    version: u32,
    /// What it holds, for the log: "stored-model", "stored MCP server".
    what: &'static str,
    last: Mutex<Option<T>>,
}

impl<T: Serialize + DeserializeOwned + PartialEq> Kept<T> {
    /// The copy at `path`, of format `version`.
    pub fn new(path: PathBuf, version: u32, what: &'static str) -> Self {
        Self { path, version, what, last: Mutex::new(None) }
    }

    /// Where it is kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `fresh` unless it is what the file already holds; a failure is logged (the
    /// next change tries again).
    pub fn keep(&self, fresh: T) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.as_ref() == Some(&fresh) {
            return;
        }
        let envelope =
            Envelope { version: self.version, taken_at: chrono::Utc::now(), content: fresh };
        let written = serde_json::to_vec(&envelope)
            .map_err(std::io::Error::other)
            .and_then(|bytes| crate::access::snapshot::save_bytes(&self.path, &bytes));
        match written {
            Ok(()) => *last = Some(envelope.content),
            Err(e) => tracing::warn!(
                error = %e,
                file = %self.path.display(),
                "the {} snapshot cannot be written",
                self.what
            ),
        }
    }

    /// The content of the file: `None` when there is none, it is of another version, or it
    /// cannot be read (logged).
    pub fn load(&self) -> Option<T>
    where
        T: Clone,
    {
        match self.read() {
            Ok(content) => {
                if let Some(c) = &content {
                    *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(c.clone());
                }
                content
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    file = %self.path.display(),
                    "the {} snapshot cannot be read; ignoring it",
                    self.what
                );
                None
            }
        }
    }

    fn read(&self) -> std::io::Result<Option<T>> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        #[derive(serde::Deserialize)]
        struct Head {
            version: u32,
        }
        let head: Head = serde_json::from_slice(&bytes).map_err(std::io::Error::other)?;
        if head.version != self.version {
            return Ok(None);
        }
        let envelope: Envelope<T> =
            serde_json::from_slice(&bytes).map_err(std::io::Error::other)?;
        Ok(Some(envelope.content))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Things {
        things: Vec<String>,
    }

    #[test]
    fn a_copy_is_written_when_it_changes_and_read_back_by_its_version_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("things.json");
        let kept = Kept::<Things>::new(path.clone(), 1, "thing");
        assert_eq!(kept.load(), None, "no file yet");
        let one = Things { things: vec!["a".into()] };
        kept.keep(one.clone());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"version\":1") && text.contains("\"things\":[\"a\"]"), "{text}");
        // The same content again leaves the file as it is.
        std::fs::write(&path, text.replace("\"a\"", "\"z\"")).unwrap();
        kept.keep(one.clone());
        assert!(std::fs::read_to_string(&path).unwrap().contains("\"z\""));
        let again = Kept::<Things>::new(path.clone(), 1, "thing");
        assert_eq!(again.load(), Some(Things { things: vec!["z".into()] }));
        assert_eq!(Kept::<Things>::new(path.clone(), 2, "thing").load(), None);
        std::fs::write(&path, "not json").unwrap();
        assert_eq!(Kept::<Things>::new(path, 1, "thing").load(), None);
    }
}
