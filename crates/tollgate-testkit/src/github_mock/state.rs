//! The stand-in's mutable state. One `std` mutex guards it all: every handler holds it for a
//! lookup or an update, never across an await.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant, SystemTime},
};

use rand::Rng;
use serde::Serialize;
use serde_json::Value;

use super::catalog::default_models;
use crate::openai_mock::{RecordedRequest, Shared};

/// A scripted answer to one poll of `/login/oauth/access_token`, taken before the flow's own
/// state is consulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptedPoll {
    /// `authorization_pending`.
    Pending,
    /// `slow_down`, with the flow's interval raised by 5 seconds as GitHub does.
    SlowDown,
    /// `expired_token`; the flow stays expired.
    Expired,
    /// `access_denied`; the flow stays denied.
    Denied,
}

/// What a client sent to `/login/device/code`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceRequest {
    /// The `client_id` parameter.
    pub client_id: Option<String>,
    /// The `scope` parameter.
    pub scope: Option<String>,
}

/// The quota `/copilot_internal/user` reports for every account.
#[derive(Debug, Clone, PartialEq)]
pub struct MockQuota {
    /// `copilot_plan`.
    pub plan: String,
    /// `quota_reset_date`.
    pub reset_date: String,
    /// Premium requests per period.
    pub premium_entitlement: f64,
    /// Premium requests left.
    pub premium_remaining: f64,
    /// Whether premium requests are unlimited.
    pub premium_unlimited: bool,
    /// Whether overage is permitted.
    pub overage_permitted: bool,
}

impl Default for MockQuota {
    fn default() -> Self {
        Self {
            plan: "individual".to_owned(),
            reset_date: "2030-01-01".to_owned(),
            premium_entitlement: 300.0,
            premium_remaining: 250.0,
            premium_unlimited: false,
            overage_permitted: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum FlowStatus {
    Pending,
    Approved(String),
    Denied,
    Expired,
}

#[derive(Debug)]
pub(super) struct Flow {
    pub device_code: String,
    pub user_code: String,
    pub client_id: String,
    pub status: FlowStatus,
    pub interval: u64,
    pub expires: Instant,
    pub last_poll: Option<Instant>,
}

#[derive(Debug, Default)]
pub(super) struct Account {
    pub seat: bool,
    pub revoked: bool,
    pub exchanges: usize,
}

#[derive(Debug)]
pub(super) struct Issued {
    pub expires_at: SystemTime,
    pub revoked: bool,
}

#[derive(Debug)]
pub(super) struct Inner {
    pub flows: Vec<Flow>,
    pub script: VecDeque<ScriptedPoll>,
    pub interval: u64,
    pub device_expires_in: u64,
    pub enforce_interval: bool,
    pub device_requests: Vec<DeviceRequest>,
    pub polls: Vec<Instant>,
    pub new_accounts_have_seat: bool,
    pub accounts: HashMap<String, Account>,
    pub tokens: HashMap<String, Issued>,
    pub expires_in: u64,
    pub refresh_in: u64,
    pub exchange_delay: Duration,
    pub exchanges: usize,
    pub exchange_errors: VecDeque<u16>,
    pub login: Option<String>,
    pub github_requests: Vec<RecordedRequest>,
    pub quota: MockQuota,
    pub models: Arc<[Value]>,
    pub models_delay: Duration,
    pub errors: VecDeque<(u16, Value)>,
    pub messages_text: String,
    pub require_editor_headers: bool,
}

/// The text `/v1/messages` answers until changed.
pub const DEFAULT_MESSAGES_TEXT: &str = "Hello from the Copilot stand-in.";

pub(super) struct State {
    /// `http://127.0.0.1:PORT`.
    pub origin: String,
    /// The OpenAI reply engine that answers chat and embeddings and records API calls.
    pub engine: Arc<Shared>,
    inner: Mutex<Inner>,
}

impl State {
    pub fn new(origin: String, engine: Arc<Shared>) -> Self {
        let inner = Inner {
            flows: Vec::new(),
            script: VecDeque::new(),
            // GitHub says 5; 1 keeps tests that poll for real quick.
            interval: 1,
            device_expires_in: 900,
            enforce_interval: false,
            device_requests: Vec::new(),
            polls: Vec::new(),
            new_accounts_have_seat: true,
            accounts: HashMap::new(),
            tokens: HashMap::new(),
            expires_in: 1800,
            refresh_in: 1500,
            exchange_delay: Duration::ZERO,
            exchanges: 0,
            exchange_errors: VecDeque::new(),
            login: None,
            github_requests: Vec::new(),
            quota: MockQuota::default(),
            models: default_models().into(),
            models_delay: Duration::ZERO,
            errors: VecDeque::new(),
            messages_text: DEFAULT_MESSAGES_TEXT.to_owned(),
            require_editor_headers: true,
        };
        Self { origin, engine, inner: Mutex::new(inner) }
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The Copilot API base handed out in `endpoints.api`.
    pub fn copilot_api_url(&self) -> String {
        format!("{}/copilot", self.origin)
    }
}

impl Inner {
    /// Approves a pending flow with a fresh OAuth token, registering its account.
    pub fn approve(&mut self, index: usize) -> Option<String> {
        let seat = self.new_accounts_have_seat;
        let flow = self.flows.get_mut(index)?;
        if let FlowStatus::Approved(token) = &flow.status {
            return Some(token.clone());
        }
        let token = oauth_token();
        flow.status = FlowStatus::Approved(token.clone());
        self.accounts.insert(token.clone(), Account { seat, ..Account::default() });
        Some(token)
    }

    /// Adds a `/models` entry, or replaces the one with the same `id` where it stands.
    pub fn add_model(&mut self, model: Value) {
        let mut models = self.models.to_vec();
        match models.iter_mut().find(|m| m.get("id") == model.get("id")) {
            Some(entry) => *entry = model,
            None => models.push(model),
        }
        self.models = models.into();
    }

    /// Whether `token` is an issued Copilot token that has neither expired nor been revoked.
    pub fn token_valid(&self, token: &str) -> bool {
        self.tokens
            .get(token)
            .is_some_and(|issued| !issued.revoked && SystemTime::now() < issued.expires_at)
    }
}

/// `ghu_` and 36 alphanumerics, the shape of a GitHub user-to-server token.
pub(super) fn oauth_token() -> String {
    let tail: String =
        rand::rng().sample_iter(&rand::distr::Alphanumeric).take(36).map(char::from).collect();
    format!("ghu_{tail}")
}

/// `XXXX-XXXX` from letters and digits that cannot be confused when typed.
pub(super) fn user_code() -> String {
    const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ23456789";
    let mut rng = rand::rng();
    let mut code = String::with_capacity(9);
    for i in 0..8 {
        if i == 4 {
            code.push('-');
        }
        code.push(char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]));
    }
    code
}

/// Random lowercase hex of `len` digits.
pub(super) fn hex(len: usize) -> String {
    let bytes: Vec<u8> = rand::rng().random_iter().take(len.div_ceil(2)).collect();
    let mut digits = hex::encode(bytes);
    digits.truncate(len);
    digits
}
