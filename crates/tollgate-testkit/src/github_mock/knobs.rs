//! What tests set and observe on a [`MockGitHub`].

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{
    MockGitHub,
    state::{DeviceRequest, FlowStatus, MockQuota, ScriptedPoll},
};
use crate::{RecordedRequest, ReplySpec};

/// Device flow.
impl MockGitHub {
    /// Queues a scripted answer for the next poll (of any flow); queued answers come before
    /// the flows' own state.
    pub fn enqueue_poll(&self, outcome: ScriptedPoll) {
        self.state.lock().script.push_back(outcome);
    }

    /// The `interval` (seconds) new flows are given; 1 by default.
    pub fn set_poll_interval(&self, seconds: u64) {
        self.state.lock().interval = seconds;
    }

    /// The `expires_in` (seconds) new flows are given; after it, polls answer `expired_token`.
    pub fn set_device_expires_in(&self, seconds: u64) {
        self.state.lock().device_expires_in = seconds;
    }

    /// When on, a poll sooner than the flow's interval after the previous one answers
    /// `slow_down` and raises the interval by 5 s, as GitHub does. Off by default.
    pub fn enforce_interval(&self, on: bool) {
        self.state.lock().enforce_interval = on;
    }

    /// Approves the flow with this user code; returns its new OAuth token (`ghu_…`).
    pub fn approve(&self, user_code: &str) -> Option<String> {
        let mut inner = self.state.lock();
        let index = inner.flows.iter().position(|f| f.user_code == user_code)?;
        inner.approve(index)
    }

    /// Approves the most recently started flow; returns its new OAuth token.
    pub fn approve_latest(&self) -> Option<String> {
        let mut inner = self.state.lock();
        let index = inner.flows.len().checked_sub(1)?;
        inner.approve(index)
    }

    /// Makes the most recent flow answer `access_denied` from now on.
    pub fn deny(&self) {
        self.set_latest_status(FlowStatus::Denied);
    }

    /// Makes the most recent flow answer `expired_token` from now on.
    pub fn expire(&self) {
        self.set_latest_status(FlowStatus::Expired);
    }

    /// Whether new approvals get an account with a Copilot seat (default `true`).
    pub fn new_accounts_have_seat(&self, seat: bool) {
        self.state.lock().new_accounts_have_seat = seat;
    }

    /// The user code of the most recent flow.
    pub fn latest_user_code(&self) -> Option<String> {
        self.state.lock().flows.last().map(|f| f.user_code.clone())
    }

    /// Flows started so far.
    pub fn flow_count(&self) -> usize {
        self.state.lock().flows.len()
    }

    /// What each `/login/device/code` call sent.
    pub fn device_requests(&self) -> Vec<DeviceRequest> {
        self.state.lock().device_requests.clone()
    }

    /// Polls of `/login/oauth/access_token` so far.
    pub fn poll_count(&self) -> usize {
        self.state.lock().polls.len()
    }

    /// When each poll arrived, oldest first, to check intervals were honoured.
    pub fn poll_times(&self) -> Vec<Instant> {
        self.state.lock().polls.clone()
    }

    fn set_latest_status(&self, status: FlowStatus) {
        if let Some(flow) = self.state.lock().flows.last_mut() {
            flow.status = status;
        }
    }
}

/// Accounts and the token exchange.
impl MockGitHub {
    /// Registers (or updates) an account by its OAuth token, with or without a Copilot seat.
    pub fn add_account(&self, oauth_token: &str, seat: bool) {
        let mut inner = self.state.lock();
        let account = inner.accounts.entry(oauth_token.to_owned()).or_default();
        account.seat = seat;
        account.revoked = false;
    }

    /// Revokes an OAuth token: the exchange and `/copilot_internal/user` answer 401.
    pub fn revoke(&self, oauth_token: &str) {
        if let Some(account) = self.state.lock().accounts.get_mut(oauth_token) {
            account.revoked = true;
        }
    }

    /// The lifetime (seconds) of Copilot tokens issued from now on; 1800 by default.
    pub fn set_expires_in(&self, seconds: u64) {
        self.state.lock().expires_in = seconds;
    }

    /// The `refresh_in` (seconds) of Copilot tokens issued from now on; 1500 by default.
    pub fn set_refresh_in(&self, seconds: u64) {
        self.state.lock().refresh_in = seconds;
    }

    /// Makes every exchange take this long, so concurrent callers overlap.
    pub fn set_exchange_delay(&self, delay: Duration) {
        self.state.lock().exchange_delay = delay;
    }

    /// Makes the next exchange (of any account) answer `status` with a JSON error, before
    /// the account is looked at; queued answers are used in order. 5xx and 429 are what a
    /// struggling GitHub answers; 401 and 403 read as a revoked link and a missing seat.
    pub fn enqueue_exchange_error(&self, status: u16) {
        self.state.lock().exchange_errors.push_back(status);
    }

    /// The login `GET /user` answers for every known account; without one (the default)
    /// `/user` answers 404, as for a token that may not read the user.
    pub fn set_login(&self, login: &str) {
        self.state.lock().login = Some(login.to_owned());
    }

    /// Exchange requests made with this OAuth token (answered or refused).
    pub fn exchange_count(&self, oauth_token: &str) -> usize {
        self.state.lock().accounts.get(oauth_token).map_or(0, |a| a.exchanges)
    }

    /// Exchange requests of any token, known or not.
    pub fn total_exchanges(&self) -> usize {
        self.state.lock().exchanges
    }

    /// Makes every Copilot token issued so far invalid: API calls with them answer 401.
    pub fn expire_all_tokens(&self) {
        for issued in self.state.lock().tokens.values_mut() {
            issued.revoked = true;
        }
    }

    /// The calls to the GitHub API (`/copilot_internal/*`, `/user`), oldest first (paths
    /// relative to the API URL).
    pub fn github_requests(&self) -> Vec<RecordedRequest> {
        self.state.lock().github_requests.clone()
    }

    /// What `/copilot_internal/user` reports.
    pub fn set_quota(&self, quota: MockQuota) {
        self.state.lock().quota = quota;
    }
}

/// The Copilot API.
impl MockGitHub {
    /// Replaces the `/models` entries (see [`super::copilot_model`]).
    pub fn set_models(&self, models: Vec<Value>) {
        self.state.lock().models = models.into();
    }

    /// Adds a `/models` entry, or replaces the one with the same `id`, e.g.
    /// [`super::responses_model`]`("gpt-5.5", 1.0)` for a model served on `/responses` only.
    pub fn add_model(&self, model: Value) {
        self.state.lock().add_model(model);
    }

    /// Makes every `/models` answer take this long (it is recorded on arrival).
    pub fn set_models_delay(&self, delay: Duration) {
        self.state.lock().models_delay = delay;
    }

    /// Queues a reply for chat completions, responses and embeddings, as
    /// [`crate::MockOpenAi::enqueue`].
    pub fn enqueue(&self, spec: impl Into<ReplySpec>) {
        self.engine.enqueue(spec.into());
    }

    /// Replaces the chat and responses reply used when the queue is empty.
    pub fn set_default(&self, spec: impl Into<ReplySpec>) {
        self.engine.set_default(spec.into());
    }

    /// Queues an error for the next model call (chat, responses, embeddings or messages,
    /// not `/models`): `status` with a JSON `body`, or `text/plain` when `body` is a string.
    /// E.g. 402 `{"error":{"message":"You have no quota","code":"quota_exceeded"}}`.
    pub fn enqueue_error(&self, status: u16, body: Value) {
        self.state.lock().errors.push_back((status, body));
    }

    /// The text `/v1/messages` answers with.
    pub fn set_messages_text(&self, text: impl Into<String>) {
        self.state.lock().messages_text = text.into();
    }

    /// Whether API calls without `editor-version` are refused with 400 (default `true`).
    pub fn require_editor_headers(&self, on: bool) {
        self.state.lock().require_editor_headers = on;
    }

    /// The recorded Copilot API calls, oldest first, paths relative to the API base.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.engine.requests()
    }

    /// The most recent Copilot API call.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.engine.last_request()
    }

    /// The most chat completions, responses and messages calls that were being answered at once (until
    /// their response head).
    pub fn peak_concurrency(&self) -> usize {
        self.engine.peak_concurrency()
    }

    /// Copilot API calls so far, rejected ones included.
    pub fn request_count(&self) -> usize {
        self.engine.request_count()
    }
}
