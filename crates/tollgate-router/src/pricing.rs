//! What a request cost: per-token prices from `model_info`, else from a built-in table of
//! list prices. GitHub Copilot requests cost 0 unless prices are configured: the seat is paid
//! for already, and what they use up is premium requests, counted separately.

use tollgate_config::{ModelEntry, ProviderKind};

/// USD per token.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Price {
    /// Uncached input tokens.
    pub input: f64,
    /// Output tokens.
    pub output: f64,
    /// Input tokens read from the provider's prompt cache.
    pub cached_input: f64,
}

impl Price {
    /// The cost of one request's tokens. `prompt` includes `cached`.
    pub fn cost(&self, prompt: u64, completion: u64, cached: u64) -> f64 {
        let cached = cached.min(prompt);
        (prompt - cached) as f64 * self.input
            + cached as f64 * self.cached_input
            + completion as f64 * self.output
    }
}

/// List prices in USD per million tokens: (model prefix, input, output, cached input).
/// Matched by the longest prefix of the model's last path segment, dots read as dashes.
const TABLE: &[(&str, f64, f64, f64)] = &[
    ("gpt-4o-mini", 0.15, 0.60, 0.075),
    ("gpt-4o", 2.50, 10.00, 1.25),
    ("gpt-4-1-nano", 0.10, 0.40, 0.025),
    ("gpt-4-1-mini", 0.40, 1.60, 0.10),
    ("gpt-4-1", 2.00, 8.00, 0.50),
    ("gpt-5-nano", 0.05, 0.40, 0.005),
    ("gpt-5-mini", 0.25, 2.00, 0.025),
    ("gpt-5", 1.25, 10.00, 0.125),
    ("o4-mini", 1.10, 4.40, 0.275),
    ("o3-mini", 1.10, 4.40, 0.55),
    ("o3", 2.00, 8.00, 0.50),
    ("claude-opus-4-5", 5.00, 25.00, 0.50),
    ("claude-opus-4-6", 5.00, 25.00, 0.50),
    ("claude-opus-4", 15.00, 75.00, 1.50),
    ("claude-sonnet-4", 3.00, 15.00, 0.30),
    ("claude-3-7-sonnet", 3.00, 15.00, 0.30),
    ("claude-3-5-sonnet", 3.00, 15.00, 0.30),
    ("claude-haiku-4", 1.00, 5.00, 0.10),
    ("claude-3-5-haiku", 0.80, 4.00, 0.08),
    ("text-embedding-3-small", 0.02, 0.0, 0.0),
    ("text-embedding-3-large", 0.13, 0.0, 0.0),
    ("text-embedding-ada-002", 0.10, 0.0, 0.0),
];

/// The price of `upstream_model` served by `entry`: configured prices first, then the table.
/// `None` when nothing is known (the request is recorded with cost 0).
pub fn price_for(entry: &ModelEntry, upstream_model: &str) -> Option<Price> {
    let listed = if entry.provider == ProviderKind::GithubCopilot {
        Some(Price::default())
    } else {
        list_price(upstream_model)
    };
    let o = entry.pricing;
    if o.input.is_none() && o.output.is_none() && o.cached_input.is_none() {
        return listed;
    }
    let base = listed.unwrap_or_default();
    let input = o.input.unwrap_or(base.input);
    Some(Price {
        input,
        output: o.output.unwrap_or(base.output),
        cached_input: o.cached_input.or(o.input).unwrap_or(base.cached_input),
    })
}

fn list_price(model: &str) -> Option<Price> {
    let name = model.rsplit('/').next().unwrap_or(model).to_ascii_lowercase().replace('.', "-");
    TABLE
        .iter()
        .filter(|(prefix, ..)| name.starts_with(prefix))
        .max_by_key(|(prefix, ..)| prefix.len())
        .map(|&(_, input, output, cached)| Price {
            input: input / 1e6,
            output: output / 1e6,
            cached_input: cached / 1e6,
        })
}

#[cfg(test)]
mod tests {
    use tollgate_config::{MapEnv, from_yaml_str};

    use super::*;

    fn entry(yaml_model: &str, info: &str) -> ModelEntry {
        let yaml = format!(
            "model_list:\n  - model_name: m\n    litellm_params:\n      model: {yaml_model}\n{info}"
        );
        from_yaml_str(&yaml, None, &MapEnv::default()).unwrap().models.remove(0)
    }

    #[test]
    fn longest_prefix_wins() {
        let p = list_price("gpt-4o-mini-2024-07-18").unwrap();
        assert!((p.input - 0.15e-6).abs() < 1e-15);
        let p = list_price("openai/gpt-4o").unwrap();
        assert!((p.output - 10e-6).abs() < 1e-15);
        let p = list_price("claude-sonnet-4.5").unwrap();
        assert!((p.input - 3e-6).abs() < 1e-15);
        assert!(list_price("mystery-model").is_none());
    }

    #[test]
    fn cost_counts_cached_tokens_at_their_price() {
        let p = Price { input: 1.0, output: 10.0, cached_input: 0.1 };
        assert!((p.cost(100, 5, 40) - (60.0 + 4.0 + 50.0)).abs() < 1e-9);
        assert!((p.cost(10, 0, 50) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn configured_prices_override_and_copilot_is_free() {
        let e = entry("openai/gpt-4o", "    model_info:\n      output_cost_per_token: 0.001\n");
        let p = price_for(&e, "gpt-4o").unwrap();
        assert!((p.output - 0.001).abs() < 1e-12 && (p.input - 2.5e-6).abs() < 1e-15);
        let e = entry("github_copilot/gpt-4o", "");
        assert_eq!(price_for(&e, "gpt-4o"), Some(Price::default()));
        let e = entry("openai/custom", "    model_info:\n      input_cost_per_token: 0.5\n");
        let p = price_for(&e, "custom").unwrap();
        assert_eq!((p.input, p.output, p.cached_input), (0.5, 0.0, 0.5));
        assert!(price_for(&entry("openai/custom", ""), "custom").is_none());
    }
}
