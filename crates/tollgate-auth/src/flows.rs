//! Device flows in progress: at most one pending flow per owner and holder, each polled by
//! exactly one task until GitHub answers for good.
//!
//! A flow's id is 128 random bits and is what the page polls `/github/status` with: it
//! reveals only the flow's own state, and only the caller who started (or reused) the flow
//! was shown it. A flow may also be held by one party (the admin console binds its flows to
//! the sign-in session that started them): only that holder finds or reuses it.
//!
//! Flows live in this process's memory: the device code is a short-lived secret with no
//! business in the database, and the outcome that matters — the stored credential — reaches
//! every process through the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tollgate_config::Secret;
use tollgate_providers::github::{DeviceFlowClient, GithubError, PollOutcome, next_interval};
use tollgate_store::{SecretBox, Store};

use crate::access::random_hex;
use crate::link::Linker;

/// Transport failures in a row after which a flow gives up.
const MAX_FAILURES: u32 = 5;
/// Finished flows stay visible to `/github/status` this long.
const FINISHED_TTL: Duration = Duration::from_secs(60 * 60);

/// Where a flow stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowState {
    /// Waiting for the user to approve on GitHub.
    Pending,
    /// Approved and stored.
    Linked {
        /// The GitHub login, when GitHub told it.
        login: Option<String>,
    },
    /// The code expired before approval.
    Expired,
    /// The user declined.
    Denied,
    /// Something else ended it; the message is safe to show.
    Failed {
        /// What happened and what to do.
        message: String,
    },
}

/// One device flow.
#[derive(Debug)]
pub struct Flow {
    /// Random id the page polls with.
    pub id: String,
    /// The credential owner it links.
    pub owner: String,
    /// How pages and logs name that account.
    pub owner_label: String,
    /// Who started it, as the audit log names them.
    actor: String,
    /// Whom it is bound to, if anyone (see [`Flows::held`]).
    holder: Option<String>,
    /// The code the user types on GitHub.
    pub user_code: String,
    /// Where they type it.
    pub verification_uri: String,
    expires_at: Instant,
    state: Mutex<(FlowState, Option<Instant>)>,
}

impl Flow {
    /// Its current state.
    pub fn state(&self) -> FlowState {
        self.lock().0.clone()
    }

    /// How long its code stays valid from now.
    pub fn expires_in(&self) -> Duration {
        self.expires_at.saturating_duration_since(Instant::now())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (FlowState, Option<Instant>)> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn finish(&self, state: FlowState) {
        *self.lock() = (state, Some(Instant::now()));
    }

    /// Pending and not past its expiry: reusable.
    fn is_live(&self) -> bool {
        matches!(self.lock().0, FlowState::Pending) && Instant::now() < self.expires_at
    }

    /// Finished (or expired) long enough ago to forget.
    fn is_stale(&self, now: Instant) -> bool {
        let finished = self.lock().1;
        finished.map_or(now > self.expires_at + FINISHED_TTL, |at| now > at + FINISHED_TTL)
    }
}

/// The flows of this process.
#[derive(Debug)]
pub struct Flows {
    device: DeviceFlowClient,
    github_url: String,
    linker: Linker,
    by_id: Mutex<HashMap<String, Arc<Flow>>>,
    /// Serialises starts, so two requests for one owner cannot both start a flow.
    start_lock: tokio::sync::Mutex<()>,
}

impl Flows {
    /// Flows that talk the device flow to `github_url` (`TOLLGATE_GITHUB_URL`), ask
    /// `github_api_url` (`TOLLGATE_GITHUB_API_URL`) for the linked login, and keep approved
    /// tokens in `store`, sealed with `secret_box`.
    pub fn new(
        store: Store,
        secret_box: Arc<SecretBox>,
        http: reqwest::Client,
        github_url: &str,
        github_api_url: &str,
    ) -> Self {
        let github_url = github_url.trim_end_matches('/').to_owned();
        let linker = Linker {
            store,
            secret_box,
            http: http.clone(),
            github_api_url: github_api_url.trim_end_matches('/').to_owned(),
        };
        Self {
            device: DeviceFlowClient::new(http, github_url.clone()),
            github_url,
            linker,
            by_id: Mutex::new(HashMap::new()),
            start_lock: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn linker(&self) -> &Linker {
        &self.linker
    }

    /// A flow by id, if nobody holds it.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<Flow>> {
        self.held(id, None)
    }

    /// A flow by id, only for its holder (`None`: a flow nobody holds).
    pub fn held(&self, id: &str, holder: Option<&str>) -> Option<Arc<Flow>> {
        self.table().get(id).filter(|f| f.holder.as_deref() == holder).cloned()
    }

    /// The pending flows of `holder`, newest last.
    pub fn pending_of(&self, holder: &str) -> Vec<Arc<Flow>> {
        let mut flows: Vec<_> = self
            .table()
            .values()
            .filter(|f| f.holder.as_deref() == Some(holder) && f.is_live())
            .cloned()
            .collect();
        flows.sort_by_key(|f| f.expires_at);
        flows
    }

    /// The owner's pending flow of this holder, if any.
    pub(crate) fn pending(&self, owner: &str, holder: Option<&str>) -> Option<Arc<Flow>> {
        let table = self.table();
        table
            .values()
            .find(|f| f.owner == owner && f.holder.as_deref() == holder && f.is_live())
            .cloned()
    }

    /// The owner's pending flow of this holder, or a new one with its poller, started by
    /// `actor` (the audit log's name for them). A flow with a holder is found only by it.
    pub async fn start_or_reuse(
        self: &Arc<Self>,
        owner: &str,
        owner_label: &str,
        actor: &str,
        holder: Option<&str>,
    ) -> Result<Arc<Flow>, GithubError> {
        if let Some(flow) = self.pending(owner, holder) {
            return Ok(flow);
        }
        let _starting = self.start_lock.lock().await;
        // Another request may have started one while this one waited.
        if let Some(flow) = self.pending(owner, holder) {
            return Ok(flow);
        }
        let code = self.device.start().await?;
        // The page links to this URI; accept only web URLs from upstream.
        let verification_uri = if code.verification_uri.starts_with("https://")
            || code.verification_uri.starts_with("http://")
        {
            code.verification_uri
        } else {
            format!("{}/login/device", self.github_url.trim_end_matches('/'))
        };
        let flow = Arc::new(Flow {
            id: random_hex(16),
            owner: owner.to_owned(),
            owner_label: owner_label.to_owned(),
            actor: actor.to_owned(),
            holder: holder.map(str::to_owned),
            user_code: code.user_code,
            verification_uri,
            expires_at: Instant::now() + code.expires_in,
            state: Mutex::new((FlowState::Pending, None)),
        });
        {
            let mut table = self.table();
            let now = Instant::now();
            table.retain(|_, f| !f.is_stale(now));
            table.insert(flow.id.clone(), Arc::clone(&flow));
        }
        tracing::info!(account = %flow.owner_label, "GitHub device flow started");
        tokio::spawn(Arc::clone(self).poll(Arc::clone(&flow), code.device_code, code.interval));
        Ok(flow)
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Flow>>> {
        self.by_id.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Polls GitHub until the flow ends: waits `interval` before every poll, 5 s longer for
    /// good after each `slow_down`, and stops at the code's expiry.
    async fn poll(
        self: Arc<Self>,
        flow: Arc<Flow>,
        device_code: Secret<String>,
        interval: Duration,
    ) {
        let mut interval = interval;
        let mut failures = 0;
        let end = loop {
            tokio::time::sleep(interval).await;
            match self.device.poll(&device_code).await {
                Ok(PollOutcome::Authorized { access_token }) => {
                    break self.complete(&flow, &access_token).await;
                }
                Ok(PollOutcome::Expired) => break FlowState::Expired,
                Ok(PollOutcome::Denied) => break FlowState::Denied,
                Ok(outcome) => {
                    failures = 0;
                    let next = next_interval(interval, &outcome);
                    if next != interval {
                        tracing::debug!(seconds = next.as_secs(), "GitHub asked to poll slower");
                        interval = next;
                    }
                }
                Err(GithubError::OAuth { code, description }) => {
                    tracing::warn!(account = %flow.owner_label, %code, "GitHub ended the device flow");
                    let detail = description.map(|d| format!(": {d}")).unwrap_or_default();
                    break FlowState::Failed {
                        message: format!("GitHub refused the link ({code}{detail}). Start again."),
                    };
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(account = %flow.owner_label, error = %e, failures, "polling GitHub failed");
                    if failures >= MAX_FAILURES {
                        break FlowState::Failed { message: failure_message(&e) };
                    }
                }
            }
            if Instant::now() >= flow.expires_at {
                break FlowState::Expired;
            }
        };
        match &end {
            FlowState::Linked { login } => {
                tracing::info!(account = %flow.owner_label, login = login.as_deref().unwrap_or("unknown"), "GitHub account linked");
            }
            other => {
                tracing::info!(account = %flow.owner_label, outcome = ?other, "GitHub device flow ended")
            }
        }
        flow.finish(end);
    }

    async fn complete(&self, flow: &Flow, token: &Secret<String>) -> FlowState {
        match self.linker.link(&flow.owner, token, &flow.actor).await {
            Ok(login) => FlowState::Linked { login },
            Err(e) => {
                tracing::error!(account = %flow.owner_label, error = %e, "cannot store the linked GitHub account");
                FlowState::Failed {
                    message: "GitHub approved the link, but tollgate could not save it (see the \
                              server log). Start again."
                        .to_owned(),
                }
            }
        }
    }
}

/// A short, safe summary of why a flow could not start, for a page (the log has the details).
pub fn start_failure(e: &GithubError) -> String {
    match e {
        GithubError::OAuth { code, .. } => format!("GitHub refused to start linking ({code})."),
        GithubError::Upstream { status, .. } => format!("GitHub answered HTTP {status}."),
        GithubError::InvalidResponse(_) => "GitHub sent an unexpected answer.".to_owned(),
        _ => "GitHub could not be reached.".to_owned(),
    }
}

/// A short, safe summary of a polling failure for the page (the log has the details).
fn failure_message(e: &GithubError) -> String {
    let what = match e {
        GithubError::Upstream { status, .. } => format!("GitHub answered HTTP {status}"),
        GithubError::InvalidResponse(_) => "GitHub sent an unexpected answer".to_owned(),
        _ => "GitHub could not be reached".to_owned(),
    };
    format!("{what} while tollgate waited for your approval. Start again.")
}
