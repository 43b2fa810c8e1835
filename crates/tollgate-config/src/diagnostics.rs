//! Warnings found while loading a config: unknown keys, features not available yet, missing
//! environment variables. None of them stops start-up; each names the key it is about.

use std::fmt;

/// One warning about a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diagnostic {
    /// A key tollgate does not know; it is ignored.
    UnknownKey {
        /// Where it is, e.g. `model_list[0].litellm_params.foo`.
        key: String,
        /// A likely intended spelling or place.
        hint: Option<&'static str>,
    },
    /// A key tollgate knows but whose feature this version does not have yet.
    NotYetSupported {
        /// Where it is.
        key: String,
        /// What the key is for.
        feature: &'static str,
    },
    /// An `os.environ/NAME` reference to an unset variable; the key is treated as unset.
    MissingEnv {
        /// Where it is.
        key: String,
        /// The variable.
        var: String,
    },
    /// A key honoured although LiteLLM would not read it there.
    Misplaced {
        /// Where it is.
        key: String,
        /// Where it belongs.
        belongs: &'static str,
    },
}

impl Diagnostic {
    /// The key it is about.
    pub fn key(&self) -> &str {
        match self {
            Self::UnknownKey { key, .. }
            | Self::NotYetSupported { key, .. }
            | Self::MissingEnv { key, .. }
            | Self::Misplaced { key, .. } => key,
        }
    }

    /// The same warning with `prefix` taken off its key.
    pub(crate) fn relocated(mut self, prefix: &str) -> Self {
        let (Self::UnknownKey { key, .. }
        | Self::NotYetSupported { key, .. }
        | Self::MissingEnv { key, .. }
        | Self::Misplaced { key, .. }) = &mut self;
        if let Some(rest) = key.strip_prefix(prefix) {
            *key = rest.to_owned();
        }
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownKey { key, hint: None } => write!(f, "unknown key `{key}` is ignored"),
            Self::UnknownKey { key, hint: Some(h) } => {
                write!(f, "unknown key `{key}` is ignored ({h})")
            }
            Self::NotYetSupported { key, feature } => write!(
                f,
                "`{key}` ({feature}) is not supported by this version of tollgate yet and has no effect"
            ),
            Self::MissingEnv { key, var } => write!(
                f,
                "`{key}` refers to environment variable {var}, which is not set; treated as unset"
            ),
            Self::Misplaced { key, belongs } => write!(
                f,
                "`{key}` is honoured, but LiteLLM reads it from `{belongs}`; move it there"
            ),
        }
    }
}

/// Keys whose features are planned but not built in this version, by normalised path
/// (sequence indices written as `[]`).
const NOT_YET: &[(&str, &str)] =
    &[("general_settings.disable_spend_logs", "turning spend logs off")];

/// `model_info` keys that only describe a model (LiteLLM uses them for documentation and
/// pre-call checks); accepted without comment.
const DESCRIPTIVE_MODEL_INFO: &[&str] = &["base_model", "litellm_provider"];

/// `model_info` keys `/model/info` adds to what an entry says (so an entry read there can be
/// sent back): accepted without comment, and never stored.
pub const COMPUTED_MODEL_INFO: &[&str] = &[
    "id",
    "db_model",
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
    "upstream_endpoints",
    "premium_multiplier",
];

/// Classifies a key that the typed config did not take.
pub(crate) fn classify_ignored(key: String) -> Option<Diagnostic> {
    let normalised = normalise(&key);
    if let Some((_, feature)) = NOT_YET.iter().find(|(k, _)| *k == normalised) {
        return Some(Diagnostic::NotYetSupported { key, feature });
    }
    if let Some(info_key) = normalised.strip_prefix("model_list[].model_info.")
        && (info_key.starts_with("supports_")
            || DESCRIPTIVE_MODEL_INFO.contains(&info_key)
            || COMPUTED_MODEL_INFO.contains(&info_key))
    {
        return None;
    }
    let hint = if normalised.starts_with("model_list[].litellm_params.supports_") {
        Some("capability flags belong under model_info")
    } else if normalised == "model_list[].api_key" || normalised == "model_list[].api_base" {
        Some("connection settings belong under litellm_params")
    } else {
        None
    };
    Some(Diagnostic::UnknownKey { key, hint })
}

/// `model_list[3].litellm_params.x` → `model_list[].litellm_params.x`.
fn normalise(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut in_index = false;
    for c in key.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push('[');
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_indices() {
        assert_eq!(normalise("model_list[12].litellm_params.x"), "model_list[].litellm_params.x");
    }

    #[test]
    fn classifies_keys() {
        assert!(matches!(
            classify_ignored("general_settings.disable_spend_logs".into()),
            Some(Diagnostic::NotYetSupported { .. })
        ));
        assert_eq!(classify_ignored("model_list[0].model_info.supports_vision".into()), None);
        let d = classify_ignored("model_list[0].litellm_params.supports_tool_calling".into());
        assert!(d.unwrap().to_string().contains("model_info"));
        assert!(matches!(
            classify_ignored("general_settings.nonsense".into()),
            Some(Diagnostic::UnknownKey { hint: None, .. })
        ));
    }
}
