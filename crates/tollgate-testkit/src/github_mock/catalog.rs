//! The `/models` entries the stand-in lists: shaped like Copilot's, with realistic limits and
//! premium multipliers.

use serde_json::{Value, json};

/// A chat model entry with the given premium `multiplier` (0 = included) and
/// `supported_endpoints`; limits of 128k context and 16k output.
pub fn copilot_model(id: &str, vendor: &str, multiplier: f64, endpoints: &[&str]) -> Value {
    chat_model(&Spec {
        id,
        name: id,
        vendor,
        multiplier,
        context: 128_000,
        output: 16_384,
        endpoints,
        preview: false,
    })
}

/// A model Copilot serves on the Responses API only (`supported_endpoints: ["/responses"]`),
/// as it does its Codex and newest GPT models; 400k context, 128k output.
pub fn responses_model(id: &str, multiplier: f64) -> Value {
    chat_model(&Spec {
        id,
        name: id,
        vendor: "Azure OpenAI",
        multiplier,
        context: 400_000,
        output: 128_000,
        endpoints: &["/responses"],
        preview: false,
    })
}

/// An embeddings model entry.
pub fn embeddings_model(id: &str) -> Value {
    json!({
        "id": id,
        "name": id,
        "object": "model",
        "vendor": "Azure OpenAI",
        "version": id,
        "preview": false,
        "model_picker_enabled": false,
        "capabilities": {
            "family": id,
            "type": "embeddings",
            "object": "model_capabilities",
            "tokenizer": "cl100k_base",
            "limits": {"max_inputs": 512},
            "supports": {"dimensions": true},
        },
        "supported_endpoints": ["/embeddings"],
    })
}

/// What the stand-in lists until [`crate::MockGitHub::set_models`] changes it: two included
/// OpenAI models (`gpt-5-mini` also on `/responses`), two premium models served on
/// `/responses` only (`gpt-5.4`, `gpt-5.1-codex`), two Claude models that also speak
/// `/v1/messages`, a Gemini preview and an embeddings model.
pub fn default_models() -> Vec<Value> {
    let chat = ["/chat/completions"];
    let messages = ["/chat/completions", "/v1/messages"];
    vec![
        chat_model(&Spec {
            id: "gpt-4o",
            name: "GPT-4o",
            vendor: "Azure OpenAI",
            multiplier: 0.0,
            context: 128_000,
            output: 4_096,
            endpoints: &chat,
            preview: false,
        }),
        chat_model(&Spec {
            id: "gpt-5-mini",
            name: "GPT-5 mini",
            vendor: "Azure OpenAI",
            multiplier: 0.0,
            context: 264_000,
            output: 64_000,
            endpoints: &["/chat/completions", "/responses"],
            preview: false,
        }),
        responses_model("gpt-5.4", 1.0),
        responses_model("gpt-5.1-codex", 1.0),
        chat_model(&Spec {
            id: "claude-sonnet-4.5",
            name: "Claude Sonnet 4.5",
            vendor: "Anthropic",
            multiplier: 1.0,
            context: 144_000,
            output: 16_000,
            endpoints: &messages,
            preview: false,
        }),
        chat_model(&Spec {
            id: "claude-opus-4.5",
            name: "Claude Opus 4.5",
            vendor: "Anthropic",
            multiplier: 3.0,
            context: 160_000,
            output: 16_000,
            endpoints: &messages,
            preview: false,
        }),
        chat_model(&Spec {
            id: "gemini-3-pro-preview",
            name: "Gemini 3 Pro (Preview)",
            vendor: "Google",
            multiplier: 1.0,
            context: 128_000,
            output: 64_000,
            endpoints: &chat,
            preview: true,
        }),
        embeddings_model("text-embedding-3-small"),
    ]
}

struct Spec<'a> {
    id: &'a str,
    name: &'a str,
    vendor: &'a str,
    multiplier: f64,
    context: u64,
    output: u64,
    endpoints: &'a [&'a str],
    preview: bool,
}

fn chat_model(spec: &Spec<'_>) -> Value {
    json!({
        "id": spec.id,
        "name": spec.name,
        "object": "model",
        "vendor": spec.vendor,
        "version": spec.id,
        "preview": spec.preview,
        "model_picker_enabled": true,
        "capabilities": {
            "family": spec.id,
            "type": "chat",
            "object": "model_capabilities",
            "tokenizer": "o200k_base",
            "limits": {
                "max_context_window_tokens": spec.context,
                "max_output_tokens": spec.output,
                "max_prompt_tokens": spec.context.saturating_sub(spec.output),
            },
            "supports": {
                "tool_calls": true,
                "parallel_tool_calls": true,
                "streaming": true,
                "vision": true,
            },
        },
        "billing": {"is_premium": spec.multiplier > 0.0, "multiplier": spec.multiplier},
        "policy": {"state": "enabled", "terms": "Enable access to the latest models."},
        "supported_endpoints": spec.endpoints,
    })
}
