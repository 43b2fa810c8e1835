//! The mock's mutable state: reply queue, default reply, models and recorded requests.
//!
//! Every lock here is a `std` lock held for a push, a pop or a clone, never across an
//! await, so the hot path of a benchmark run stays cheap.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError, RwLock,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
};

use axum::http::{HeaderMap, Method, Uri};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;

use super::{MockConfig, ReplySpec};

/// One request the mock received, as the client sent it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// `POST`, `GET`, ...
    pub method: String,
    /// The path without the query, e.g. `/v1/chat/completions`.
    pub path: String,
    /// The query string without `?`, when there was one.
    pub query: Option<String>,
    /// Headers in arrival order, names lowercased; repeated headers stay separate entries.
    pub headers: Vec<(String, String)>,
    /// The JSON body; `null` for bodiless requests, a string when the body was not JSON.
    pub body: Value,
}

impl RecordedRequest {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

pub(crate) struct Shared {
    config: MockConfig,
    queue: Mutex<VecDeque<Arc<ReplySpec>>>,
    default: RwLock<Arc<ReplySpec>>,
    models: RwLock<Arc<[String]>>,
    records: Mutex<VecDeque<RecordedRequest>>,
    count: AtomicUsize,
    /// Model calls being answered right now, and the most there have been at once.
    busy: AtomicUsize,
    peak: AtomicUsize,
    next_id: AtomicU64,
    /// Turns `true` when the handle is dropped; hung requests and streams watch it.
    pub(super) shutdown: watch::Receiver<bool>,
}

impl Shared {
    pub(crate) fn new(config: MockConfig, shutdown: watch::Receiver<bool>) -> Self {
        Self {
            queue: Mutex::new(VecDeque::new()),
            default: RwLock::new(Arc::new(config.default_reply.clone())),
            models: RwLock::new(config.models.clone().into()),
            records: Mutex::new(VecDeque::new()),
            count: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            shutdown,
            config,
        }
    }

    pub(crate) fn record(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: Value) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let limit = self.config.record_limit;
        if limit == 0 {
            return;
        }
        let request = RecordedRequest {
            method: method.as_str().to_owned(),
            path: uri.path().to_owned(),
            query: uri.query().map(str::to_owned),
            headers: headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body,
        };
        let mut records = lock(&self.records);
        while records.len() >= limit {
            records.pop_front();
        }
        records.push_back(request);
    }

    /// The oldest queued reply, else the default.
    pub(super) fn next_reply(&self) -> Arc<ReplySpec> {
        if let Some(spec) = lock(&self.queue).pop_front() {
            return spec;
        }
        Arc::clone(&self.default.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// A fresh completion id, unique for this mock's lifetime.
    pub(super) fn completion_id(&self) -> String {
        format!("chatcmpl-mock{}", self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// A fresh number for a Responses API reply, from the same sequence as completion ids.
    pub(super) fn serial(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Queues a reply and returns the new queue length.
    pub(crate) fn enqueue(&self, spec: ReplySpec) -> usize {
        let mut queue = lock(&self.queue);
        queue.push_back(Arc::new(spec));
        queue.len()
    }

    pub(crate) fn queued(&self) -> usize {
        lock(&self.queue).len()
    }

    pub(crate) fn set_default(&self, spec: ReplySpec) {
        *self.default.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(spec);
    }

    pub(super) fn models(&self) -> Arc<[String]> {
        Arc::clone(&self.models.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub(super) fn set_models(&self, models: Vec<String>) {
        *self.models.write().unwrap_or_else(PoisonError::into_inner) = models.into();
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.records).iter().cloned().collect()
    }

    pub(crate) fn last_request(&self) -> Option<RecordedRequest> {
        lock(&self.records).back().cloned()
    }

    pub(crate) fn request_count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Counts a model call as being answered until the guard drops.
    pub(crate) fn busy(&self) -> Busy<'_> {
        let now = self.busy.fetch_add(1, Ordering::AcqRel) + 1;
        self.peak.fetch_max(now, Ordering::AcqRel);
        Busy(self)
    }

    pub(crate) fn peak_concurrency(&self) -> usize {
        self.peak.load(Ordering::Acquire)
    }

    pub(crate) fn reset(&self) {
        lock(&self.queue).clear();
        lock(&self.records).clear();
        self.count.store(0, Ordering::Relaxed);
        self.peak.store(self.busy.load(Ordering::Acquire), Ordering::Release);
        self.set_default(self.config.default_reply.clone());
        self.set_models(self.config.models.clone());
    }
}

/// A model call in progress; see [`Shared::busy`].
pub(crate) struct Busy<'a>(&'a Shared);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A panicking test thread must not turn every later call into a second panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
