//! A stand-in for GitHub and the Copilot API, on one loopback port with three roles:
//!
//! | role | URL | routes |
//! |---|---|---|
//! | GitHub ([`MockGitHub::github_url`], `TOLLGATE_GITHUB_URL`) | `http://127.0.0.1:PORT` | `POST /login/device/code`, `POST /login/oauth/access_token`, `GET /login/device` |
//! | GitHub API ([`MockGitHub::api_url`], `TOLLGATE_GITHUB_API_URL`) | `…/api` | `GET /copilot_internal/v2/token`, `GET /copilot_internal/user`, `GET /user` |
//! | Copilot API ([`MockGitHub::copilot_api_url`], handed out as `endpoints.api`) | `…/copilot` | `GET /models`, `POST /chat/completions`, `POST /responses`, `POST /embeddings`, `POST /v1/messages` |
//!
//! ```no_run
//! # async fn demo() {
//! use tollgate_testkit::MockGitHub;
//! let github = MockGitHub::start().await;
//! // point the gateway at github.github_url() and github.api_url(), start the device flow, then:
//! let oauth = github.approve_latest().expect("a flow was started");
//! assert_eq!(github.exchange_count(&oauth), 0);
//! # }
//! ```
//!
//! Chat completions, responses and embeddings are answered by [`crate::MockOpenAi`]'s reply
//! engine, so [`MockGitHub::enqueue`] takes the same [`crate::ReplySpec`]s. A model the
//! catalog lists is answered only on the endpoints its `supported_endpoints` names: sent to
//! another, it gets Copilot's 400 `unsupported_api_for_model` (see [`endpoints`]). Every Copilot API call must
//! carry `Authorization: Bearer <a valid issued Copilot token>` (else 401) and, unless
//! [`MockGitHub::require_editor_headers`] turns it off, an `editor-version` header (else 400,
//! as Copilot answers). API calls are recorded with paths relative to the API base.

mod api;
mod catalog;
mod control;
pub mod endpoints;
mod internal;
mod knobs;
mod messages;
mod oauth;
mod state;

use std::{io, net::SocketAddr, sync::Arc};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    routing::{get, post},
    serve::ListenerExt,
};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

pub use catalog::{copilot_model, default_models, embeddings_model, responses_model};
pub use state::{DEFAULT_MESSAGES_TEXT, DeviceRequest, MockQuota, ScriptedPoll};

use crate::openai_mock::{DEFAULT_RECORD_LIMIT, MockConfig, Shared};
use state::State;

/// Large enough for image-bearing requests.
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// A running GitHub + Copilot stand-in. Dropping it shuts the server down.
pub struct MockGitHub {
    addr: SocketAddr,
    state: Arc<State>,
    engine: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl MockGitHub {
    /// Starts on `127.0.0.1` and a free port.
    ///
    /// # Panics
    /// When binding a loopback port fails, which means the test machine is broken.
    #[allow(clippy::expect_used)] // a test helper: failing loudly is the useful outcome
    pub async fn start() -> Self {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("github stand-in: bind 127.0.0.1:0")
    }

    /// Starts on a fixed address.
    pub async fn start_on(addr: SocketAddr) -> io::Result<Self> {
        Self::start_with_origin(addr, None).await
    }

    /// Starts on `addr`, telling clients it is `origin` (`http://github-mock:9000`) where
    /// they reach it by another name than the address it listens on (a container network).
    /// Also serves `POST /__mock/approve`, approving the most recent device flow (and
    /// answering its token), `POST /__mock/account`, knowing a token's account again
    /// after a restart, `POST /__mock/models`, `/__mock/enqueue` and `/__mock/error`,
    /// programming the catalog, replies and errors, and `GET /__mock/requests`, the Copilot
    /// API calls so far, for tests that drive it from outside the process.
    pub async fn start_with_origin(addr: SocketAddr, public: Option<String>) -> io::Result<Self> {
        Self::start_with_options(addr, public, DEFAULT_RECORD_LIMIT).await
    }

    /// As [`MockGitHub::start_with_origin`], keeping at most `record_limit` recent Copilot API
    /// calls for [`MockGitHub::requests`]; 0 keeps none, so that a benchmark's stand-in does
    /// no more per call than the OpenAI mock it is compared with.
    pub async fn start_with_options(
        addr: SocketAddr,
        public: Option<String>,
        record_limit: usize,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (shutdown, stopped) = watch::channel(false);
        let config = MockConfig { addr, record_limit, ..MockConfig::default() };
        let engine = Arc::new(Shared::new(config, stopped.clone()));
        let origin = public.map_or_else(|| origin(addr), |o| o.trim_end_matches('/').to_owned());
        let state = Arc::new(State::new(origin, Arc::clone(&engine)));
        let listener = listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "github stand-in: cannot set TCP_NODELAY");
            }
        });
        let mut stopped = stopped;
        let app = router(&state, &engine);
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        });
        let task = tokio::spawn(async move {
            if let Err(error) = server.await {
                tracing::warn!(%error, "github stand-in: server failed");
            }
        });
        Ok(Self { addr, state, engine, shutdown, task: Some(task) })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: GitHub itself, for `TOLLGATE_GITHUB_URL`.
    pub fn github_url(&self) -> String {
        self.state.origin.clone()
    }

    /// `http://127.0.0.1:PORT/api`: GitHub's API, for `TOLLGATE_GITHUB_API_URL`.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.state.origin)
    }

    /// `http://127.0.0.1:PORT/copilot`: the Copilot API base the token exchange hands out.
    pub fn copilot_api_url(&self) -> String {
        self.state.copilot_api_url()
    }

    /// Stops the server and waits until open connections have ended.
    pub async fn shutdown(mut self) {
        self.shutdown.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for MockGitHub {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

impl std::fmt::Debug for MockGitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockGitHub").field("addr", &self.addr).finish_non_exhaustive()
    }
}

fn router(state: &Arc<State>, engine: &Arc<Shared>) -> Router {
    let github_api = Router::new()
        .route("/copilot_internal/v2/token", get(internal::token))
        .route("/copilot_internal/user", get(internal::user))
        .route("/user", get(internal::github_user))
        .with_state(Arc::clone(state));
    Router::new()
        .route("/login/device/code", post(oauth::device_code))
        .route("/login/oauth/access_token", post(oauth::access_token))
        .route("/login/device", get(oauth::device_page))
        .route("/__mock/approve", post(oauth::approve_latest))
        .route("/__mock/account", post(oauth::remember_account))
        .route("/__mock/models", post(control::models))
        .route("/__mock/enqueue", post(control::enqueue))
        .route("/__mock/error", post(control::error))
        .route("/__mock/requests", get(control::requests))
        .with_state(Arc::clone(state))
        .nest("/api", github_api)
        .nest("/copilot", api::router(state, engine))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// `http://HOST:PORT`, with an unspecified host shown as loopback.
fn origin(mut addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    format!("http://{addr}")
}
