//! Upstream clients: one pooled HTTP client, and per provider the URL, credentials and headers
//! of each call. Knows nothing of the HTTP server side.

pub mod anthropic;
pub mod claude_pool;
pub mod copilot;
mod error;
pub mod github;
mod headers;
mod http;
mod openai;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tollgate_config::{ModelEntry, ProviderKind};
use tollgate_protocol::{Operation, Protocol};

pub use error::{MAX_RETRY_AFTER, UpstreamError, retry_after};
pub use headers::apply_extra_headers;
pub use http::build_http_client;

/// What one attempt on a deployment is, settled before it is sent; see [`Providers::terms`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallTerms {
    /// The protocol the upstream is spoken to in.
    pub protocol: Protocol,
    /// Copilot premium requests the call uses (its model's `billing.multiplier`), when the
    /// deployment is Copilot's and the catalog says.
    pub premium_multiplier: Option<f64>,
}

/// Per-request facts a provider may need to set headers.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// The gateway's request id, forwarded where providers accept one.
    pub request_id: String,
    /// Whether the response is streamed.
    pub stream: bool,
    /// The client's `anthropic-version`, forwarded to Anthropic-format upstreams.
    pub anthropic_version: Option<String>,
    /// The client's `anthropic-beta` flags, forwarded to Anthropic-format upstreams.
    pub anthropic_beta: Vec<String>,
    /// A credential to use instead of the deployment's (pooled token or pass-through).
    pub credential: Option<String>,
    /// Whose Copilot account to use (`key:<hash>`), falling back to the shared default.
    pub account_owner: Option<String>,
    /// Whether the last message is the user's own text (Copilot's `X-Initiator: user`).
    pub initiator_user: bool,
    /// Whether the request carries images (Copilot's vision header).
    pub vision: bool,
}

/// The upstream clients, shared by every request.
#[derive(Debug, Clone)]
pub struct Providers {
    http: reqwest::Client,
    copilot: Arc<copilot::CopilotService>,
    claude_pool: Arc<claude_pool::ClaudePool>,
}

impl Providers {
    /// Builds the providers around one pooled HTTP client. `github_api_url` is where Copilot
    /// tokens are exchanged; `auth_page` is where people link a Copilot account.
    pub fn new(http: reqwest::Client, github_api_url: String, auth_page: String) -> Self {
        let copilot =
            Arc::new(copilot::CopilotService::new(http.clone(), github_api_url, auth_page));
        let claude_pool =
            Arc::new(claude_pool::ClaudePool::new(Vec::new(), Duration::from_secs(60)));
        Self { http, copilot, claude_pool }
    }

    /// Uses `pool` for Anthropic deployments that have no key of their own.
    pub fn with_claude_pool(mut self, pool: claude_pool::ClaudePool) -> Self {
        self.claude_pool = Arc::new(pool);
        self
    }

    /// GitHub Copilot: linked accounts, tokens, models.
    pub fn copilot(&self) -> &Arc<copilot::CopilotService> {
        &self.copilot
    }

    /// Sends `body` to `entry`'s upstream and returns the response once its status and headers
    /// have arrived. A non-success status becomes [`UpstreamError::Status`] with the body read;
    /// a success response is returned unread so that streams can be relayed as they arrive.
    pub async fn send(
        &self,
        entry: &ModelEntry,
        operation: Operation,
        body: Bytes,
        ctx: &CallContext,
        timeout: Duration,
    ) -> Result<reqwest::Response, UpstreamError> {
        if entry.provider == ProviderKind::GithubCopilot {
            return self.copilot.send(entry, operation, body, ctx, timeout).await;
        }
        if static_protocol(entry) != Protocol::Messages {
            let request = openai::build(&self.http, entry, operation, body, ctx);
            return http::execute(request, timeout).await;
        }
        // Anthropic: the deployment's own key, else the client's token (pass-through), else
        // the pool, moving to the next pooled token when one is rate limited.
        let pooled =
            entry.api_key.is_none() && ctx.credential.is_none() && !self.claude_pool.is_empty();
        if !pooled {
            let request = anthropic::build(
                &self.http,
                entry,
                operation,
                body,
                ctx,
                ctx.credential.as_deref(),
            );
            return http::execute(request, timeout).await;
        }
        let mut tries = 0;
        loop {
            let now = std::time::Instant::now();
            let Some((i, token)) = self.claude_pool.pick(now) else {
                return Err(UpstreamError::NotLinked("the Claude token pool is empty".to_owned()));
            };
            let request = anthropic::build(
                &self.http,
                entry,
                operation,
                body.clone(),
                ctx,
                Some(token.expose()),
            );
            tries += 1;
            match http::execute(request, timeout).await {
                Err(UpstreamError::Status { status: 429, retry_after, .. })
                    if tries < self.claude_pool.len() =>
                {
                    tracing::info!(token = i, "Claude token rate limited; resting it and rotating");
                    self.claude_pool.rest(i, now, retry_after);
                }
                Err(e @ UpstreamError::Status { status: 429, .. }) => {
                    if let UpstreamError::Status { retry_after, .. } = &e {
                        self.claude_pool.rest(i, now, *retry_after);
                    }
                    return Err(e);
                }
                other => return other,
            }
        }
    }

    /// How one attempt on `entry` goes: the protocol it speaks and what it bills, settled
    /// once per attempt. Anthropic-format providers speak Messages, OpenAI-format ones Chat
    /// Completions (or Responses, by `model_info.mode`). For Copilot both come from one read
    /// of the account's model catalog: its `supported_endpoints` choose the protocol
    /// ([`copilot::CopilotModel::protocol_for`]), and its `billing.multiplier` is the call's
    /// premium requests.
    pub async fn terms(
        &self,
        entry: &ModelEntry,
        operation: Operation,
        upstream_model: &str,
        owner: Option<&str>,
    ) -> CallTerms {
        if entry.provider != ProviderKind::GithubCopilot {
            return CallTerms { protocol: static_protocol(entry), premium_multiplier: None };
        }
        // No catalog (not linked, or Copilot unreachable): Chat Completions, which every Copilot
        // model speaks; the send itself reports what is wrong.
        let models = self.copilot.models_for(owner).await.ok();
        let model = models.as_deref().and_then(|ms| ms.iter().find(|m| m.id == upstream_model));
        let protocol = match (operation, model) {
            (Operation::Generate(client), Some(m)) => m.protocol_for(client),
            _ => Protocol::Chat,
        };
        CallTerms {
            protocol,
            premium_multiplier: model.and_then(copilot::CopilotModel::premium_multiplier),
        }
    }
}

/// Anthropic-format providers speak Messages; OpenAI-compatible ones Chat Completions, or the
/// Responses API with `model_info.mode: responses` (LiteLLM's setting). Copilot's come from
/// its catalog instead.
fn static_protocol(entry: &ModelEntry) -> Protocol {
    match entry.provider {
        ProviderKind::Anthropic => Protocol::Messages,
        _ if entry.described.mode.as_deref() == Some("responses") => Protocol::Responses,
        _ => Protocol::Chat,
    }
}

/// The upstream API paths a model generates on, as listings show them: a Copilot model's
/// from its catalog entry (`catalog`; `None` when the catalog cannot be read), the others'
/// from their provider and `mode`.
pub fn upstream_endpoints(
    entry: &ModelEntry,
    catalog: Option<&copilot::CopilotModel>,
) -> Option<Vec<String>> {
    if entry.provider == ProviderKind::GithubCopilot {
        return catalog.map(copilot::CopilotModel::endpoints);
    }
    Some(vec![copilot::endpoint_of(static_protocol(entry)).to_owned()])
}
