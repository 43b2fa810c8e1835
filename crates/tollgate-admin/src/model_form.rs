//! The stored-model form the models page (add) and a model's page (edit) share: which fields
//! apply to which provider, what was typed, and how it becomes the `/model/new` body or the
//! `/model/{id}/update` change.
//!
//! The provider is chosen from a list or, left at "from the model's prefix", read from the
//! model as LiteLLM writes it (`openai/gpt-4o`). GitHub Copilot models use the linked GitHub
//! account, so they take no API base, key or credential: typed ones are refused next to the
//! field, stored ones are removed when a model becomes Copilot's. Without JavaScript every
//! field shows with the providers it applies to in its label; with it, the others hide.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use tollgate_config::ProviderKind;
use tollgate_proxy::ApiError;
use tollgate_proxy::ops::models::{ModelChange, NewModelBody};

use crate::page::{self, Errors};

/// The form as typed. A field not posted (hidden and disabled by the page's script) counts
/// as empty, except the API key, where empty keeps the stored one.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct ModelForm {
    #[serde(default)]
    pub(crate) model_name: String,
    /// A provider prefix, or empty: the one `model` starts with.
    #[serde(default)]
    pub(crate) provider: String,
    #[serde(default)]
    pub(crate) model: String,
    #[serde(default)]
    api_base: Option<String>,
    #[serde(default)]
    api_key: Option<String>,
    /// `on` to remove the stored key.
    #[serde(default)]
    clear_api_key: Option<String>,
    /// A named credential (`litellm_params.litellm_credential_name`).
    #[serde(default)]
    litellm_credential_name: Option<String>,
    #[serde(default)]
    fallbacks: Option<String>,
    #[serde(default)]
    access_groups: Option<String>,
    #[serde(default)]
    input_cost_per_token: Option<String>,
    #[serde(default)]
    output_cost_per_token: Option<String>,
    #[serde(default)]
    max_input_tokens: Option<String>,
}

/// Providers that talk to an API with a base URL and a key (every one but Copilot).
const KEYED: &str = "openai openrouter anthropic";

/// The form's text fields, in order: name, label, the providers it applies to (empty: all).
const FIELDS: [(&str, &str, &str); 8] = [
    ("model_name", "Model name clients ask for", ""),
    ("model", "Upstream model (gpt-4o; with the provider from the prefix: openai/gpt-4o)", ""),
    ("api_base", "API base URL (empty: the provider's own)", KEYED),
    ("fallbacks", "Fallbacks (comma-separated model names)", ""),
    ("access_groups", "Access groups", ""),
    ("input_cost_per_token", "Input price per token (USD)", ""),
    ("output_cost_per_token", "Output price per token (USD)", ""),
    ("max_input_tokens", "Context window (tokens)", ""),
];

/// The form's other fields: selects, the key and its checkbox.
const OTHER_FIELDS: [&str; 4] = ["provider", "litellm_credential_name", "api_key", "clear_api_key"];

/// `litellm_params` and `model_info`.
type Sections = (Map<String, Value>, Map<String, Value>);

/// What Test connection found: whether the provider answered, and what it said.
pub(crate) type Tested = (bool, String);

/// One field of the form as the template shows it.
#[derive(Debug, Clone)]
pub(crate) struct FormField {
    pub(crate) name: &'static str,
    pub(crate) label: &'static str,
    pub(crate) value: String,
    pub(crate) error: Option<String>,
    /// Space-separated provider prefixes it applies to; empty for all.
    pub(crate) providers: &'static str,
}

/// One option of a select.
#[derive(Debug, Clone)]
pub(crate) struct Choice {
    pub(crate) value: String,
    pub(crate) label: String,
    pub(crate) selected: bool,
}

/// Everything the form template needs.
#[derive(Debug, Clone)]
pub(crate) struct FormView {
    /// `id` of the form element.
    pub(crate) id: &'static str,
    /// Where it posts (inside the UI), and where Test connection posts.
    pub(crate) action: String,
    pub(crate) test_action: String,
    pub(crate) submit: &'static str,
    pub(crate) fields: Vec<FormField>,
    pub(crate) providers: Vec<Choice>,
    pub(crate) credentials: Vec<Choice>,
    pub(crate) errors: Errors,
    /// Whether a key is stored (an edit form offers to keep or clear it).
    pub(crate) key_stored: bool,
    pub(crate) clear_key: bool,
    /// The outcome of Test connection: whether it worked, and what the provider said.
    pub(crate) tested: Option<Tested>,
    /// The providers with an API base, key and credential, for the script.
    pub(crate) keyed: &'static str,
    /// Every provider prefix, for the script.
    pub(crate) known: String,
}

impl ModelForm {
    /// A stored model as the edit form shows it (`shown` is its `/model/info` answer, keys
    /// redacted): the key itself is never in the form.
    pub(crate) fn of(shown: &Value) -> Self {
        let params = &shown["litellm_params"];
        let info = &shown["model_info"];
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let list = |v: &Value| {
            v.as_array().map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
        };
        let number = |v: &Value| v.is_number().then(|| v.to_string());
        let model = params["model"].as_str().unwrap_or_default();
        let (provider, upstream) = match model.split_once('/') {
            Some((p, rest)) if ProviderKind::PREFIXES.contains(&p) => (p, rest),
            _ => ("", model),
        };
        Self {
            model_name: shown["model_name"].as_str().unwrap_or_default().to_owned(),
            provider: provider.to_owned(),
            model: upstream.to_owned(),
            api_base: text(&params["api_base"]),
            api_key: None,
            clear_api_key: None,
            litellm_credential_name: text(&params["litellm_credential_name"]),
            fallbacks: list(&params["fallbacks"]),
            access_groups: list(&info["access_groups"]),
            input_cost_per_token: number(&info["input_cost_per_token"]),
            output_cost_per_token: number(&info["output_cost_per_token"]),
            max_input_tokens: number(&info["max_input_tokens"]),
        }
    }

    /// `litellm_params.model`: the provider's prefix and the upstream model, or the model as
    /// written when no provider is chosen.
    fn full_model(&self) -> String {
        let model = self.model.trim();
        match self.provider.trim() {
            "" => model.to_owned(),
            p => format!("{p}/{model}"),
        }
    }

    /// The provider the model will have, when it can be told.
    fn provider_kind(&self) -> Option<ProviderKind> {
        ProviderKind::split_model(&self.full_model()).ok().map(|(p, _)| p)
    }

    /// Whether the model is mode `embedding` for Test connection.
    pub(crate) fn mode(&self) -> &'static str {
        if self.model.contains("embedding") { "embedding" } else { "chat" }
    }

    /// The model's parameters and info, every field of the form in them: an empty one as
    /// `null` (removed by a change), the key only when typed (`null` when cleared).
    fn sections(&self) -> Result<Sections, Errors> {
        let mut errors = Vec::new();
        let provider = self.provider.trim();
        if !provider.is_empty() && !ProviderKind::PREFIXES.contains(&provider) {
            errors.push(("provider".to_owned(), format!("`{provider}` is not a provider")));
        }
        if self.model.trim().is_empty() {
            errors.push(("model".to_owned(), "Name the upstream model, e.g. gpt-4o.".to_owned()));
        }
        let copilot = self.provider_kind() == Some(ProviderKind::GithubCopilot);
        let key = page::text(self.api_key.clone());
        let clear = self.clear_api_key.is_some();
        if key.is_some() && clear {
            errors.push((
                "api_key".to_owned(),
                "Type a new key or clear the stored one, not both.".to_owned(),
            ));
        }
        let mut p = Map::new();
        p.insert("model".into(), json!(self.full_model()));
        let keyed = [
            ("api_base", page::text(self.api_base.clone())),
            ("litellm_credential_name", page::text(self.litellm_credential_name.clone())),
            ("api_key", key),
        ];
        for (k, v) in keyed {
            match (v, copilot) {
                (Some(_), true) => errors.push((
                    k.to_owned(),
                    "GitHub Copilot models use the linked GitHub account (the Copilot page); \
                     leave this empty."
                        .to_owned(),
                )),
                (Some(v), false) => {
                    p.insert(k.into(), json!(v));
                }
                // An untyped key is kept, unless cleared or the model is now Copilot's.
                (None, _) if k == "api_key" && !clear && !copilot => {}
                (None, _) => {
                    p.insert(k.into(), Value::Null);
                }
            }
        }
        let fallbacks = page::list(self.fallbacks.as_deref().unwrap_or(""));
        p.insert(
            "fallbacks".into(),
            if fallbacks.is_empty() { Value::Null } else { json!(fallbacks) },
        );
        let mut info = Map::new();
        let groups = page::list(self.access_groups.as_deref().unwrap_or(""));
        info.insert(
            "access_groups".into(),
            if groups.is_empty() { Value::Null } else { json!(groups) },
        );
        for (k, v) in [
            ("input_cost_per_token", &self.input_cost_per_token),
            ("output_cost_per_token", &self.output_cost_per_token),
        ] {
            let n = page::number::<f64>(k, v, &mut errors);
            if n.is_some_and(|n| !n.is_finite() || n < 0.0) {
                errors.push((k.to_owned(), "must be a price of 0 or more".to_owned()));
            }
            info.insert(k.into(), n.map_or(Value::Null, |n| json!(n)));
        }
        let n = page::number::<u64>("max_input_tokens", &self.max_input_tokens, &mut errors);
        info.insert("max_input_tokens".into(), n.map_or(Value::Null, |n| json!(n)));
        if errors.is_empty() { Ok((p, info)) } else { Err(errors.into_iter().collect()) }
    }

    /// The `/model/new` body, or the errors to show next to the fields.
    pub(crate) fn new_model(&self) -> Result<NewModelBody, Errors> {
        let (mut litellm_params, mut info) = self.sections()?;
        litellm_params.retain(|_, v| !v.is_null());
        info.retain(|_, v| !v.is_null());
        Ok(NewModelBody {
            model_name: self.model_name.clone(),
            litellm_params,
            model_info: Some(info),
        })
    }

    /// The change the edit form asks for, applied as a patch: fields not in the form (extra
    /// headers, timeouts, ...) stay as they are.
    pub(crate) fn change(&self) -> Result<ModelChange, Errors> {
        let (litellm_params, model_info) = self.sections()?;
        Ok(ModelChange {
            model_name: Some(self.model_name.clone()),
            litellm_params: Some(litellm_params),
            model_info: Some(model_info),
        })
    }

    /// The form's parts as the template shows them; the key field is always empty.
    pub(crate) fn view(&self, errors: Errors, credential_names: &[String]) -> FormView {
        let value = |name: &str| {
            match name {
                "model_name" => Some(self.model_name.clone()),
                "model" => Some(self.model.clone()),
                "api_base" => self.api_base.clone(),
                "fallbacks" => self.fallbacks.clone(),
                "access_groups" => self.access_groups.clone(),
                "input_cost_per_token" => self.input_cost_per_token.clone(),
                "output_cost_per_token" => self.output_cost_per_token.clone(),
                "max_input_tokens" => self.max_input_tokens.clone(),
                _ => None,
            }
            .unwrap_or_default()
        };
        let fields = FIELDS
            .iter()
            .map(|&(name, label, providers)| FormField {
                name,
                label,
                value: value(name),
                error: errors.of(name),
                providers,
            })
            .collect();
        let provider = self.provider.trim();
        let providers = std::iter::once(("", "from the model's prefix"))
            .chain(ProviderKind::PREFIXES.iter().map(|p| (*p, provider_label(p))))
            .map(|(value, label)| Choice {
                value: value.to_owned(),
                label: label.to_owned(),
                selected: value == provider,
            })
            .collect();
        let current = page::text(self.litellm_credential_name.clone()).unwrap_or_default();
        let mut names: Vec<&str> = credential_names.iter().map(String::as_str).collect();
        if !current.is_empty() && !names.contains(&current.as_str()) {
            names.push(&current);
        }
        let credentials = std::iter::once(("", "none: the key below"))
            .chain(names.iter().map(|n| (*n, *n)))
            .map(|(value, label)| Choice {
                value: value.to_owned(),
                label: label.to_owned(),
                selected: value == current,
            })
            .collect();
        FormView {
            id: "new-model",
            action: String::new(),
            test_action: String::new(),
            submit: "Add model",
            fields,
            providers,
            credentials,
            errors,
            key_stored: false,
            clear_key: self.clear_api_key.is_some(),
            tested: None,
            keyed: KEYED,
            known: ProviderKind::PREFIXES.join(" "),
        }
    }
}

fn provider_label(prefix: &str) -> &'static str {
    match prefix {
        "openai" => "OpenAI-compatible (openai/)",
        "openrouter" => "OpenRouter (openrouter/)",
        "anthropic" => "Anthropic-compatible (anthropic/)",
        "github_copilot" => "GitHub Copilot (github_copilot/)",
        _ => "other",
    }
}

/// An operation's refusal next to the field it names, or above the form.
pub(crate) fn field_error(e: &ApiError) -> Errors {
    let mut fields: Vec<&str> = FIELDS.iter().map(|(name, ..)| *name).collect();
    fields.extend(OTHER_FIELDS);
    page::field_error_among(e, &fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> ModelForm {
        let body: Vec<(String, String)> =
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        serde_urlencoded::from_str(&serde_urlencoded::to_string(body).unwrap()).unwrap()
    }

    #[test]
    fn a_chosen_provider_prefixes_the_model_and_none_takes_it_as_written() {
        let f = form(&[("model_name", "m"), ("provider", "anthropic"), ("model", "claude-x")]);
        assert_eq!(f.new_model().unwrap().litellm_params["model"], "anthropic/claude-x");
        let f = form(&[("model_name", "m"), ("model", "openai/gpt-4o")]);
        assert_eq!(f.new_model().unwrap().litellm_params["model"], "openai/gpt-4o");
        // An OpenAI-compatible server's own namespaced model keeps its name.
        let f = form(&[("model_name", "m"), ("provider", "openai"), ("model", "openai/gpt-oss")]);
        assert_eq!(f.new_model().unwrap().litellm_params["model"], "openai/openai/gpt-oss");
    }

    #[test]
    fn copilot_takes_no_key_base_or_credential() {
        let f = form(&[
            ("model_name", "m"),
            ("provider", "github_copilot"),
            ("model", "gpt-5-mini"),
            ("api_key", "sk-typed"),
            ("litellm_credential_name", "shared"),
        ]);
        let errors = f.new_model().unwrap_err();
        assert!(errors.of("api_key").unwrap().contains("linked GitHub account"));
        assert!(errors.of("litellm_credential_name").is_some());
        // A change to Copilot drops what a keyed provider had.
        let f = form(&[("model_name", "m"), ("model", "github_copilot/gpt-5-mini")]);
        let p = f.change().unwrap().litellm_params.unwrap();
        assert_eq!((&p["api_key"], &p["api_base"]), (&Value::Null, &Value::Null));
    }

    #[test]
    fn an_edit_keeps_an_untyped_key_and_clears_one_on_request() {
        let keep = form(&[("model_name", "m"), ("provider", "openai"), ("model", "x")]);
        assert!(!keep.change().unwrap().litellm_params.unwrap().contains_key("api_key"));
        let clear = form(&[("model_name", "m"), ("model", "x"), ("clear_api_key", "on")]);
        assert_eq!(clear.change().unwrap().litellm_params.unwrap()["api_key"], Value::Null);
        let both = form(&[("model", "x"), ("api_key", "sk-new"), ("clear_api_key", "on")]);
        assert!(both.change().unwrap_err().of("api_key").is_some());
        // Emptied fields are removed by the change, and left out of a new model.
        let f = form(&[("model_name", "m"), ("model", "x"), ("fallbacks", "")]);
        assert_eq!(f.change().unwrap().litellm_params.unwrap()["fallbacks"], Value::Null);
        assert!(!f.new_model().unwrap().litellm_params.contains_key("fallbacks"));
    }

    #[test]
    fn bad_numbers_and_providers_are_named() {
        let f = form(&[
            ("model", "x"),
            ("provider", "azure"),
            ("input_cost_per_token", "cheap"),
            ("output_cost_per_token", "-1"),
        ]);
        let e = f.new_model().unwrap_err();
        assert!(e.of("provider").is_some() && e.of("input_cost_per_token").is_some());
        assert!(e.of("output_cost_per_token").is_some());
    }

    #[test]
    fn a_stored_model_fills_the_form_without_its_key() {
        let shown = json!({
            "model_name": "m",
            "litellm_params": {"model": "anthropic/claude-x", "api_key": "<redacted>",
                               "fallbacks": ["a", "b"]},
            "model_info": {"access_groups": ["g"], "max_input_tokens": 1000},
        });
        let f = ModelForm::of(&shown);
        assert_eq!((f.provider.as_str(), f.model.as_str()), ("anthropic", "claude-x"));
        assert_eq!(f.fallbacks.as_deref(), Some("a, b"));
        assert_eq!(f.max_input_tokens.as_deref(), Some("1000"));
        let view = f.view(Errors::default(), &[]);
        assert!(!format!("{view:?}").contains("redacted"));
    }
}
