//! A mock OpenAI-compatible upstream: chat completions and the Responses API (JSON and SSE,
//! text, tool calls, reasoning), embeddings and models, answering with replies a test
//! programs in advance.
//!
//! ```no_run
//! # async fn demo() {
//! use tollgate_testkit::{MockOpenAi, ReplySpec};
//! let mock = MockOpenAi::start().await;
//! mock.enqueue(ReplySpec::text("hi there").chunk_interval_ms(50));
//! // point the gateway at mock.base_url(), send a request, then:
//! assert_eq!(mock.request_count(), 1);
//! # }
//! ```
//!
//! Chat completions, responses and embeddings each take the next reply from the queue, or
//! the default when the queue is empty; `/v1/models` and the `/__mock/*` control endpoints take none.
//! Token counts follow the rule documented in [`tokens`].

mod chat;
mod control;
mod extras;
mod reply;
pub mod responses;
mod shared;
mod stream;
pub mod tokens;

use std::{io, net::SocketAddr, sync::Arc};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    routing::{get, post},
    serve::ListenerExt,
};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

pub use extras::{EMBEDDING_DIMENSIONS, embed};
pub use reply::{DEFAULT_TEXT, Reply, ReplySpec, ResponseFailure, ToolCall};
pub use responses::encrypted_reasoning;
pub use shared::RecordedRequest;
pub(crate) use shared::Shared;
// The Copilot stand-in answers chat, responses and embeddings with this same engine.
pub(crate) use {
    chat::chat_completions, extras::embeddings, responses::responses as create_response,
};

/// Requests kept for [`MockOpenAi::requests`] unless configured otherwise; older ones are
/// dropped so a long benchmark run cannot grow without bound.
pub const DEFAULT_RECORD_LIMIT: usize = 10_000;

/// Large enough for image-bearing requests, which axum's 2 MB default would reject.
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// How to start a [`MockOpenAi`]; [`MockOpenAi::reset`] returns to these values.
#[derive(Debug, Clone)]
pub struct MockConfig {
    /// Where to listen; port 0 picks a free port.
    pub addr: SocketAddr,
    /// The reply used when the queue is empty.
    pub default_reply: ReplySpec,
    /// Ids listed by `/v1/models`.
    pub models: Vec<String>,
    /// How many recent requests to keep; 0 records none (the count still runs).
    pub record_limit: usize,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            default_reply: ReplySpec::default(),
            models: vec!["gpt-4o-mini".to_owned(), "gpt-4o".to_owned()],
            record_limit: DEFAULT_RECORD_LIMIT,
        }
    }
}

/// A running mock upstream. Dropping it shuts the server down, ending hung requests and
/// open streams too.
pub struct MockOpenAi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl MockOpenAi {
    /// Starts on `127.0.0.1` and a free port with the default configuration.
    ///
    /// # Panics
    /// When binding a loopback port fails, which means the test machine is broken.
    #[allow(clippy::expect_used)] // a test helper: failing loudly is the useful outcome
    pub async fn start() -> Self {
        Self::start_with(MockConfig::default()).await.expect("mock upstream: bind 127.0.0.1:0")
    }

    /// Starts on a fixed address.
    pub async fn start_on(addr: SocketAddr) -> io::Result<Self> {
        Self::start_with(MockConfig { addr, ..MockConfig::default() }).await
    }

    /// Starts with a full configuration.
    pub async fn start_with(config: MockConfig) -> io::Result<Self> {
        let listener = TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let (shutdown, stopped) = watch::channel(false);
        let shared = Arc::new(Shared::new(config, stopped.clone()));
        let listener = listener.tap_io(|tcp| {
            // Small SSE chunks must leave at once; Nagle would batch them and skew timings.
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "mock upstream: cannot set TCP_NODELAY");
            }
        });
        let mut stopped = stopped;
        let server =
            axum::serve(listener, router(Arc::clone(&shared))).with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            });
        let task = tokio::spawn(async move {
            if let Err(error) = server.await {
                tracing::warn!(%error, "mock upstream: server failed");
            }
        });
        Ok(Self { addr, shared, shutdown, task: Some(task) })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://HOST:PORT`, with an unspecified host (`0.0.0.0`) shown as loopback.
    pub fn origin(&self) -> String {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        format!("http://{addr}")
    }

    /// `http://HOST:PORT/v1`: what an OpenAI client takes as its base URL.
    pub fn base_url(&self) -> String {
        format!("{}/v1", self.origin())
    }

    /// Appends a reply to the queue; each chat, responses or embeddings request takes the
    /// oldest.
    pub fn enqueue(&self, spec: impl Into<ReplySpec>) {
        self.shared.enqueue(spec.into());
    }

    /// Replaces the reply used when the queue is empty.
    pub fn set_default(&self, spec: impl Into<ReplySpec>) {
        self.shared.set_default(spec.into());
    }

    /// Replaces the ids `/v1/models` lists.
    pub fn set_models(&self, models: Vec<String>) {
        self.shared.set_models(models);
    }

    /// Replies still waiting in the queue.
    pub fn queued(&self) -> usize {
        self.shared.queued()
    }

    /// The recorded requests, oldest first (control calls excluded).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }

    /// The most recent recorded request.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.shared.last_request()
    }

    /// Requests served since start or the last reset, including those beyond the record limit.
    pub fn request_count(&self) -> usize {
        self.shared.request_count()
    }

    /// The most chat completions and responses that were being answered at once (until their response
    /// head), since start or the last reset.
    pub fn peak_concurrency(&self) -> usize {
        self.shared.peak_concurrency()
    }

    /// Clears queue, records and count, and restores the configured default and models.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Stops the server and waits until open connections have ended.
    pub async fn shutdown(mut self) {
        self.shutdown.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for MockOpenAi {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

impl std::fmt::Debug for MockOpenAi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockOpenAi").field("addr", &self.addr).finish_non_exhaustive()
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/chat/completions", post(chat::chat_completions))
        .route("/v1/responses", post(responses::responses))
        .route("/responses", post(responses::responses))
        .route("/v1/embeddings", post(extras::embeddings))
        .route("/embeddings", post(extras::embeddings))
        .route("/v1/models", get(extras::models))
        .route("/models", get(extras::models))
        .route("/v1/models/{*id}", get(extras::model))
        .route("/models/{*id}", get(extras::model))
        .route("/__mock/enqueue", post(control::enqueue))
        .route("/__mock/default", post(control::set_default))
        .route("/__mock/models", post(control::set_models))
        .route("/__mock/requests", get(control::requests))
        .route("/__mock/reset", post(control::reset))
        .fallback(extras::fallback)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}
