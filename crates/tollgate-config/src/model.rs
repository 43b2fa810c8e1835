//! Validated model entries: one deployment each.

use std::time::Duration;

use crate::Secret;

/// The upstream protocol family a deployment speaks, from the prefix of `litellm_params.model`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    /// `openai/...` or no prefix: any OpenAI-compatible API.
    OpenAi,
    /// `openrouter/...`: OpenRouter's OpenAI-compatible API.
    OpenRouter,
    /// `anthropic/...`: Anthropic's Messages API and compatible ones.
    Anthropic,
    /// `github_copilot/...`: GitHub Copilot.
    GithubCopilot,
}

impl ProviderKind {
    /// Every prefix tollgate understands, for error messages.
    pub const PREFIXES: [&'static str; 4] = ["openai", "openrouter", "anthropic", "github_copilot"];

    /// The prefix as written in `litellm_params.model`.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::OpenRouter => "openrouter",
            Self::Anthropic => "anthropic",
            Self::GithubCopilot => "github_copilot",
        }
    }

    /// Splits `litellm_params.model` into its provider and the upstream model name.
    /// A name without a known prefix is an OpenAI model, as in LiteLLM; a name whose first
    /// segment looks like another LiteLLM provider prefix is refused so it does not go to
    /// the wrong place silently.
    pub fn split_model(model: &str) -> Result<(Self, &str), String> {
        if let Some((prefix, rest)) = model.split_once('/') {
            let kind = match prefix {
                "openai" => Some(Self::OpenAi),
                "openrouter" => Some(Self::OpenRouter),
                "anthropic" => Some(Self::Anthropic),
                "github_copilot" => Some(Self::GithubCopilot),
                _ => None,
            };
            if let Some(kind) = kind {
                if rest.is_empty() {
                    return Err(format!("`{model}` names the provider but no model"));
                }
                return Ok((kind, rest));
            }
            if OTHER_LITELLM_PROVIDERS.contains(&prefix) {
                return Err(format!(
                    "provider `{prefix}` is not supported (supported prefixes: {})",
                    Self::PREFIXES.join(", ")
                ));
            }
        }
        Ok((Self::OpenAi, model))
    }

    /// The default API base for providers that have one.
    pub fn default_api_base(self) -> Option<&'static str> {
        match self {
            Self::OpenAi => Some("https://api.openai.com/v1"),
            Self::OpenRouter => Some("https://openrouter.ai/api/v1"),
            Self::Anthropic => Some("https://api.anthropic.com"),
            Self::GithubCopilot => None,
        }
    }
}

/// LiteLLM provider prefixes that tollgate does not speak. Listed so that a config written for
/// them fails loudly rather than sending `azure/gpt-4o` to OpenAI as a model name.
const OTHER_LITELLM_PROVIDERS: &[&str] = &[
    "azure",
    "azure_ai",
    "bedrock",
    "vertex_ai",
    "gemini",
    "cohere",
    "huggingface",
    "ollama",
    "ollama_chat",
    "mistral",
    "groq",
    "deepseek",
    "together_ai",
    "fireworks_ai",
    "replicate",
    "sagemaker",
    "watsonx",
    "xai",
    "perplexity",
    "databricks",
    "cloudflare",
    "vllm",
    "hosted_vllm",
    "text-completion-openai",
];

/// One deployment: a `model_list` entry, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelEntry {
    /// The name clients ask for; may be a glob pattern such as `openai/*` or `*`.
    pub model_name: String,
    /// `litellm_params.model` as written, e.g. `openai/gpt-4o-mini`.
    pub model: String,
    /// Which provider serves it.
    pub provider: ProviderKind,
    /// The model name sent upstream (the part after the prefix); may contain `*`, which is
    /// replaced by the part of the requested name the pattern matched.
    pub upstream_model: String,
    /// Base URL of the upstream API.
    pub api_base: Option<String>,
    /// Credential sent upstream.
    pub api_key: Option<Secret<String>>,
    /// Headers added to every upstream request; values may hold credentials.
    pub extra_headers: Vec<(String, Secret<String>)>,
    /// Limit for a whole non-streaming request, and for the first byte of a stream.
    pub timeout: Option<Duration>,
    /// Limit for streaming requests, when different.
    pub stream_timeout: Option<Duration>,
    /// Drop parameters the upstream does not accept instead of failing.
    pub drop_params: bool,
    /// Relative weight among deployments of one model name.
    pub weight: f64,
    /// `model_info.id` when given.
    pub id: Option<String>,
    /// `model_info.access_groups`: named groups a key's `models` may list to allow this one.
    pub access_groups: Vec<String>,
    /// Price overrides from `model_info`, in USD per token.
    pub pricing: PriceOverride,
    /// A fallback chain written on the entry itself (entry level or in `litellm_params`).
    pub fallbacks: Vec<String>,
    /// Requests per minute this deployment may take.
    pub rpm: Option<u64>,
    /// Tokens per minute this deployment may take.
    pub tpm: Option<u64>,
    /// Remove reasoning from this deployment's answers (`strip_thinking: true`).
    pub strip_thinking: bool,
    /// What `model_info` says of the model, for listings (`/model/info`).
    pub described: Described,
}

/// Descriptive `model_info` fields: shown by `/model/info`, never used for routing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Described {
    /// `mode`: `chat`, `embedding`, ...
    pub mode: Option<String>,
    /// `max_tokens`.
    pub max_tokens: Option<u64>,
    /// `max_input_tokens`: the context window.
    pub max_input_tokens: Option<u64>,
    /// `max_output_tokens`.
    pub max_output_tokens: Option<u64>,
    /// `description`.
    pub description: Option<String>,
}

/// Prices written in `model_info`; unset ones fall back to the built-in table.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PriceOverride {
    /// `input_cost_per_token`.
    pub input: Option<f64>,
    /// `output_cost_per_token`.
    pub output: Option<f64>,
    /// `cache_read_input_token_cost`.
    pub cached_input: Option<f64>,
}

impl ModelEntry {
    /// Whether `model_name` is a pattern rather than a plain name.
    pub fn is_pattern(&self) -> bool {
        self.model_name.contains('*')
    }
}
