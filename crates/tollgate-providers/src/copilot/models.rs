//! The Copilot model catalog: `GET {api}/models` per account, cached, with the facts the
//! gateway routes and bills by (endpoints, context window, premium multiplier).
//!
//! Requests read the cached catalog without a lock. Once it is older than its TTL, the next
//! read still answers from it and starts one background fetch; only a caller with no catalog
//! for its API base waits, together with any others, on one fetch.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};
use tollgate_protocol::Protocol;

use super::cache::{Slot, SlotMap};
use super::{
    CopilotAccount, CopilotError, CopilotToken, Initiator, TokenManager, copilot_headers, fetch,
};

/// The `supported_endpoints` entry of embeddings models.
pub const EMBEDDINGS_ENDPOINT: &str = "/embeddings";
/// The `supported_endpoints` entry of models that speak Anthropic's Messages API natively.
pub const MESSAGES_ENDPOINT: &str = "/v1/messages";
/// The `supported_endpoints` entry of each protocol.
pub fn endpoint_of(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Chat => "/chat/completions",
        Protocol::Messages => MESSAGES_ENDPOINT,
        Protocol::Responses => "/responses",
    }
}
/// How long a fetched catalog is current; after it, reads start a background refresh.
pub const MODELS_TTL: Duration = Duration::from_secs(10 * 60);
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// After a failed background refresh, keep the catalog and try again after this long.
const RETRY_FAILED_REFRESH: Duration = Duration::from_secs(30);

/// One entry of Copilot's `/models`. Every field is optional in the wire format; unknown
/// fields are ignored so that new ones GitHub adds do not break the catalog.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CopilotModel {
    /// The id requests name, e.g. `claude-sonnet-4.5`.
    pub id: String,
    /// A display name.
    pub name: Option<String>,
    /// `OpenAI`, `Anthropic`, `Google`, ...
    pub vendor: Option<String>,
    /// The vendor's version string.
    pub version: Option<String>,
    /// What the model can do.
    pub capabilities: Capabilities,
    /// How a request is billed against the premium-request allowance.
    pub billing: Option<Billing>,
    /// API paths the model is served on, e.g. `/chat/completions`, `/v1/messages`.
    pub supported_endpoints: Vec<String>,
    /// Whether editors offer it in their model picker.
    pub model_picker_enabled: bool,
    /// Whether GitHub marks it as a preview.
    pub preview: bool,
}

/// `capabilities` of a [`CopilotModel`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Capabilities {
    /// The model family, e.g. `gpt-4o`.
    pub family: Option<String>,
    /// `chat`, `embeddings`, `completion`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Token limits.
    pub limits: Limits,
    /// Feature flags.
    pub supports: Supports,
}

/// `capabilities.limits`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Prompt plus output.
    pub max_context_window_tokens: Option<u64>,
    /// Output tokens per response.
    pub max_output_tokens: Option<u64>,
    /// Prompt tokens per request.
    pub max_prompt_tokens: Option<u64>,
}

/// `capabilities.supports`; `None` where the catalog does not say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Supports {
    /// Function calling.
    pub tool_calls: Option<bool>,
    /// Several tool calls in one turn.
    pub parallel_tool_calls: Option<bool>,
    /// SSE responses.
    pub streaming: Option<bool>,
    /// Image input.
    pub vision: Option<bool>,
}

/// `billing` of a [`CopilotModel`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Billing {
    /// Whether requests count against the premium allowance.
    pub is_premium: bool,
    /// Premium requests one request costs (0 for included models).
    pub multiplier: Option<f64>,
}

impl CopilotModel {
    /// Whether Anthropic requests can go to `{api}/v1/messages` natively.
    pub fn supports_messages_api(&self) -> bool {
        self.supported_endpoints.iter().any(|e| e == MESSAGES_ENDPOINT)
    }

    /// The protocol to speak to this model for a client speaking `client`: the client's own
    /// when the catalog lists its endpoint, else Chat Completions when listed, else the
    /// Responses API when listed (the `gpt-5.x-codex` family answers nothing else), else
    /// Messages. An entry that lists no endpoints is spoken to in Chat Completions, which
    /// every model of older catalogs takes.
    pub fn protocol_for(&self, client: Protocol) -> Protocol {
        let lists = |p: Protocol| self.supported_endpoints.iter().any(|e| e == endpoint_of(p));
        if self.supported_endpoints.is_empty() {
            return Protocol::Chat;
        }
        if lists(client) {
            return client;
        }
        [Protocol::Chat, Protocol::Responses, Protocol::Messages]
            .into_iter()
            .find(|&p| lists(p))
            .unwrap_or(Protocol::Chat)
    }

    /// The upstream paths this model is spoken to on: the catalog's list, or for an entry
    /// that lists none, what [`CopilotModel::protocol_for`] then speaks (embeddings models
    /// their own endpoint).
    pub fn endpoints(&self) -> Vec<String> {
        if !self.supported_endpoints.is_empty() {
            return self.supported_endpoints.clone();
        }
        let only =
            if self.is_embeddings() { EMBEDDINGS_ENDPOINT } else { endpoint_of(Protocol::Chat) };
        vec![only.to_owned()]
    }

    /// Premium requests per request, when the catalog states it.
    pub fn premium_multiplier(&self) -> Option<f64> {
        self.billing.as_ref().and_then(|b| b.multiplier)
    }

    /// The context window in tokens, when the catalog states it.
    pub fn context_window(&self) -> Option<u64> {
        self.capabilities.limits.max_context_window_tokens
    }

    /// Whether this is an embeddings model.
    pub fn is_embeddings(&self) -> bool {
        self.capabilities.kind.as_deref() == Some("embeddings")
    }
}

/// Per-account cache of `/models`.
#[derive(Debug)]
pub struct ModelCatalog {
    fetcher: Arc<Fetcher>,
    ttl: Duration,
    slots: SlotMap<Entry>,
}

/// Fetches catalogs; shared with background refreshes.
#[derive(Debug)]
struct Fetcher {
    http: reqwest::Client,
}

#[derive(Debug, Clone)]
struct Entry {
    refresh_at: Instant,
    api_base: String,
    models: Arc<Vec<CopilotModel>>,
}

impl ModelCatalog {
    /// A catalog that keeps each account's list current for [`MODELS_TTL`].
    pub fn new(http: reqwest::Client) -> Self {
        Self { fetcher: Arc::new(Fetcher { http }), ttl: MODELS_TTL, slots: SlotMap::default() }
    }

    /// Keeps lists current for `ttl` instead.
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The account's models: the cached list for `token`'s API base, refreshed in the
    /// background once older than the TTL; fetched when there is none. Concurrent callers
    /// without a list share one fetch.
    pub async fn models(
        &self,
        token: &CopilotToken,
        account_id: &str,
    ) -> Result<Arc<Vec<CopilotModel>>, CopilotError> {
        let slot = self.slots.get_or_add(account_id);
        if let Some(entry) = slot.load().filter(|e| e.api_base == token.api_base) {
            if Instant::now() >= entry.refresh_at {
                self.refresh_in_background(&slot, token, account_id);
            }
            return Ok(Arc::clone(&entry.models));
        }
        let _turn = slot.turn().await;
        // Whoever had the turn before us may have fetched the list we need.
        if let Some(entry) = slot.load().filter(|e| e.api_base == token.api_base) {
            return Ok(Arc::clone(&entry.models));
        }
        self.fetch_into(&slot, token).await
    }

    /// Fetches the account's models now, replacing the cached list. Readers keep being
    /// answered from the old list meanwhile; a fetch that finished while this one waited for
    /// its turn counts.
    pub async fn refresh(
        &self,
        token: &CopilotToken,
        account_id: &str,
    ) -> Result<Arc<Vec<CopilotModel>>, CopilotError> {
        let slot = self.slots.get_or_add(account_id);
        let seen = slot.generation();
        let _turn = slot.turn().await;
        if slot.generation() != seen
            && let Some(entry) = slot.load().filter(|e| e.api_base == token.api_base)
        {
            return Ok(Arc::clone(&entry.models));
        }
        self.fetch_into(&slot, token).await
    }

    /// [`ModelCatalog::models`] with the token from `tokens`; a 401 (a token Copilot no
    /// longer accepts) buys a new token and retries once.
    pub async fn models_for(
        &self,
        tokens: &TokenManager,
        account: &CopilotAccount,
    ) -> Result<Arc<Vec<CopilotModel>>, CopilotError> {
        let token = tokens.token(account).await?;
        match self.models(&token, &account.id).await {
            Err(CopilotError::Upstream { status: 401, .. }) => {
                tokens.invalidate_token(&account.id, &token);
                let token = tokens.token(account).await?;
                self.models(&token, &account.id).await
            }
            other => other,
        }
    }

    /// One model of the account's catalog.
    pub async fn model(
        &self,
        token: &CopilotToken,
        account_id: &str,
        id: &str,
    ) -> Result<Option<CopilotModel>, CopilotError> {
        let models = self.models(token, account_id).await?;
        Ok(models.iter().find(|m| m.id == id).cloned())
    }

    /// Drops the account's cached list.
    pub fn invalidate(&self, account_id: &str) {
        if let Some(slot) = self.slots.get(account_id) {
            slot.clear();
        }
    }

    /// Fetches with the turn held and stores the list.
    async fn fetch_into(
        &self,
        slot: &Slot<Entry>,
        token: &CopilotToken,
    ) -> Result<Arc<Vec<CopilotModel>>, CopilotError> {
        let models = Arc::new(self.fetcher.fetch(token).await?);
        slot.store(Entry {
            refresh_at: Instant::now() + self.ttl,
            api_base: token.api_base.clone(),
            models: Arc::clone(&models),
        });
        Ok(models)
    }

    /// Refetches a stale list in a task of its own, unless a refresh already runs.
    fn refresh_in_background(&self, slot: &Arc<Slot<Entry>>, token: &CopilotToken, id: &str) {
        let Some(claim) = slot.claim_refresh() else {
            return;
        };
        let fetcher = Arc::clone(&self.fetcher);
        let token = token.clone();
        let account = id.to_owned();
        let ttl = self.ttl;
        tokio::spawn(async move {
            let slot = claim.slot();
            let _turn = slot.turn().await;
            // Only the stale list we saw: not one replaced or invalidated meanwhile.
            let Some(current) = slot
                .load()
                .filter(|e| e.api_base == token.api_base && Instant::now() >= e.refresh_at)
            else {
                return;
            };
            let renewed = match fetcher.fetch(&token).await {
                Ok(models) => Entry {
                    refresh_at: Instant::now() + ttl,
                    api_base: token.api_base.clone(),
                    models: Arc::new(models),
                },
                Err(error) => {
                    tracing::warn!(%account, %error,
                        "copilot model catalog refresh failed; keeping the current one");
                    Entry {
                        refresh_at: Instant::now() + RETRY_FAILED_REFRESH,
                        ..Entry::clone(&current)
                    }
                }
            };
            slot.replace(&current, Some(renewed));
        });
    }
}

impl Fetcher {
    async fn fetch(&self, token: &CopilotToken) -> Result<Vec<CopilotModel>, CopilotError> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut headers = copilot_headers(token, &request_id, Initiator::Agent, false);
        // Not a conversation turn, so nothing to attribute.
        headers.remove("x-initiator");
        let request = self
            .http
            .get(format!("{}/models", token.api_base))
            .headers(headers)
            .header(http::header::ACCEPT, "application/json")
            .timeout(FETCH_TIMEOUT);
        let (status, _, body) = fetch(request).await?;
        if !(200..300).contains(&status) {
            return Err(CopilotError::upstream(status, &body));
        }
        parse_models(&body)
    }
}

#[derive(Deserialize)]
struct RawList {
    data: Vec<serde_json::Value>,
}

/// The models of a `/models` body. An entry that does not parse is skipped and logged, so
/// one odd model cannot hide all the others.
fn parse_models(body: &str) -> Result<Vec<CopilotModel>, CopilotError> {
    let list: RawList = serde_json::from_str(body)
        .map_err(|e| CopilotError::InvalidResponse(format!("models: {e}")))?;
    Ok(list
        .data
        .into_iter()
        .filter_map(|value| match serde_json::from_value::<CopilotModel>(value) {
            Ok(model) if !model.id.is_empty() => Some(model),
            Ok(_) => None,
            Err(error) => {
                tracing::debug!(%error, "copilot /models: skipped an entry that does not parse");
                None
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_catalog_and_ignores_unknown_fields() {
        let body = r#"{"object":"list","data":[
            {"id":"claude-sonnet-4.5","name":"Claude Sonnet 4.5","vendor":"Anthropic","version":"x",
             "object":"model","policy":{"state":"enabled"},
             "capabilities":{"family":"claude-sonnet-4.5","type":"chat","tokenizer":"o200k_base",
               "limits":{"max_context_window_tokens":144000,"max_output_tokens":16000,"max_prompt_tokens":128000},
               "supports":{"tool_calls":true,"parallel_tool_calls":true,"streaming":true,"vision":true}},
             "billing":{"is_premium":true,"multiplier":1},
             "supported_endpoints":["/chat/completions","/v1/messages"],
             "model_picker_enabled":true,"preview":false},
            {"id":"text-embedding-3-small","capabilities":{"type":"embeddings"}},
            {"id":"broken","preview":"not a bool"},
            {"name":"no id"}
        ]}"#;
        let models = parse_models(body).unwrap();
        assert_eq!(models.len(), 2);
        let claude = &models[0];
        assert!(claude.supports_messages_api());
        assert_eq!(claude.premium_multiplier(), Some(1.0));
        assert_eq!(claude.context_window(), Some(144_000));
        assert_eq!(claude.capabilities.supports.vision, Some(true));
        assert!(claude.model_picker_enabled);
        let embedding = &models[1];
        assert!(embedding.is_embeddings());
        assert!(!embedding.supports_messages_api());
        assert_eq!(embedding.premium_multiplier(), None);
        assert_eq!(embedding.context_window(), None);
    }

    #[test]
    fn the_catalog_chooses_the_protocol_the_client_speaks_when_it_can() {
        let model = |endpoints: &[&str]| CopilotModel {
            supported_endpoints: endpoints.iter().map(|e| (*e).to_owned()).collect(),
            ..CopilotModel::default()
        };
        let (chat, messages, responses) = (Protocol::Chat, Protocol::Messages, Protocol::Responses);
        let claude = model(&["/chat/completions", "/v1/messages"]);
        assert_eq!(claude.protocol_for(messages), messages);
        assert_eq!(claude.protocol_for(chat), chat);
        assert_eq!(claude.protocol_for(responses), chat);
        let codex = model(&["/responses"]);
        for client in [chat, messages, responses] {
            assert_eq!(codex.protocol_for(client), responses, "{client:?}");
        }
        let both = model(&["/chat/completions", "/responses"]);
        assert_eq!(both.protocol_for(responses), responses);
        assert_eq!(both.protocol_for(messages), chat);
        let old = model(&[]);
        for client in [chat, messages, responses] {
            assert_eq!(old.protocol_for(client), chat, "{client:?}");
        }
    }

    #[test]
    fn a_body_without_data_is_an_error() {
        assert!(matches!(parse_models("{}"), Err(CopilotError::InvalidResponse(_))));
    }
}
