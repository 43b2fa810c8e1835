//! Requests of clients in flight, so that a client's `notifications/cancelled` — which
//! arrives on another HTTP request — reaches the request it names.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::Notify;

/// Every client request being answered, by caller and request id.
#[derive(Debug, Default)]
pub struct Calls {
    open: Mutex<HashMap<String, (u64, Arc<Notify>)>>,
    serial: AtomicU64,
}

/// One request in flight: [`Pending::cancelled`] completes when its client cancels it;
/// dropping it forgets the request.
#[derive(Debug)]
pub struct Pending {
    calls: Arc<Calls>,
    key: String,
    serial: u64,
    notify: Arc<Notify>,
}

fn key_of(caller: &str, id: &Value) -> String {
    // `1` and `"1"` are different ids.
    format!("{caller}\u{0}{id}")
}

impl Calls {
    /// Notes that `caller` (its credential and session) sent request `id`.
    pub fn begin(self: &Arc<Self>, caller: &str, id: &Value) -> Pending {
        let key = key_of(caller, id);
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        let notify = Arc::new(Notify::new());
        lock(&self.open).insert(key.clone(), (serial, notify.clone()));
        Pending { calls: self.clone(), key, serial, notify }
    }

    /// Cancels `caller`'s request `id`, if it is still being answered; whether it was.
    pub fn cancel(&self, caller: &str, id: &Value) -> bool {
        match lock(&self.open).remove(&key_of(caller, id)) {
            Some((_, notify)) => {
                // A permit is stored if the request is not waiting yet.
                notify.notify_one();
                true
            }
            None => false,
        }
    }

    /// Requests being answered now.
    pub fn len(&self) -> usize {
        lock(&self.open).len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Pending {
    /// Completes when the client cancels the request.
    pub async fn cancelled(&self) {
        self.notify.notified().await;
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let mut open = lock(&self.calls.open);
        // A later request that reused the id keeps its own entry.
        if open.get(&self.key).is_some_and(|(serial, _)| *serial == self.serial) {
            open.remove(&self.key);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn a_cancel_reaches_the_callers_request_only() {
        let calls = Arc::new(Calls::default());
        let mine = calls.begin("key-a/session-1", &json!(1));
        let theirs = calls.begin("key-b/session-2", &json!(1));
        let string_id = calls.begin("key-a/session-1", &json!("1"));
        assert!(calls.cancel("key-a/session-1", &json!(1)));
        tokio::time::timeout(Duration::from_secs(1), mine.cancelled()).await.unwrap();
        let not_theirs = tokio::time::timeout(Duration::from_millis(50), theirs.cancelled());
        assert!(not_theirs.await.is_err());
        assert!(!calls.cancel("key-a/session-1", &json!(1)), "cancelled once");
        drop((mine, theirs, string_id));
        assert!(calls.is_empty());
    }

    #[test]
    fn a_reused_id_keeps_the_newer_request() {
        let calls = Arc::new(Calls::default());
        let old = calls.begin("c", &json!(7));
        let new = calls.begin("c", &json!(7));
        drop(old);
        assert_eq!(calls.len(), 1);
        drop(new);
        assert!(calls.is_empty());
    }
}
