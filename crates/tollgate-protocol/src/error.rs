//! Why a client request could not be understood.

/// A request body that is not valid for its API: which parameter and why. Rendered by the
/// HTTP layer in the caller's protocol as a 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RequestError {
    /// The offending parameter path (`messages[0].role`), when known.
    pub param: Option<String>,
    /// A message for the client.
    pub message: String,
    /// A machine-readable code.
    pub code: &'static str,
}

impl RequestError {
    /// A body that is not JSON at all.
    pub fn invalid_json(detail: impl std::fmt::Display) -> Self {
        Self {
            param: None,
            message: format!("The request body is not valid JSON: {detail}"),
            code: "invalid_json",
        }
    }

    /// A parameter with a wrong or missing value.
    pub fn invalid_param(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self { param: Some(param.into()), message: message.into(), code: "invalid_request" }
    }

    /// Builds the error for a serde failure at `path`, phrased for people.
    pub(crate) fn from_serde(path: &serde_path_to_error::Path, err: &serde_json::Error) -> Self {
        Self::from_serde_at("", path, err)
    }

    /// Like [`Self::from_serde`] for a value found at `prefix` (`messages[2].content[0]`)
    /// inside the request, so the parameter is named from the request's root.
    pub(crate) fn from_serde_at(
        prefix: &str,
        path: &serde_path_to_error::Path,
        err: &serde_json::Error,
    ) -> Self {
        let inner = path.to_string();
        let path = match (prefix.is_empty(), inner.as_str()) {
            (true, _) => inner,
            (false, ".") => prefix.to_owned(),
            (false, p) if p.starts_with('[') => format!("{prefix}{p}"),
            (false, p) => format!("{prefix}.{p}"),
        };
        let detail = strip_position(&err.to_string());
        if err.is_syntax() || err.is_eof() {
            return Self::invalid_json(err);
        }
        if let Some(field) = detail.strip_prefix("missing field ") {
            let field = field.trim_matches('`');
            let param = if path == "." { field.to_owned() } else { format!("{path}.{field}") };
            return Self {
                message: format!("Missing required parameter: '{param}'."),
                param: Some(param),
                code: "missing_required_parameter",
            };
        }
        let param = if path == "." { None } else { Some(path) };
        let message = match &param {
            Some(p) => format!("Invalid value for '{p}': {detail}."),
            None => format!("Invalid request body: {detail}."),
        };
        Self { param, message, code: "invalid_type" }
    }
}

/// serde_json appends " at line 1 column 42", which says nothing useful once a path is known.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}
