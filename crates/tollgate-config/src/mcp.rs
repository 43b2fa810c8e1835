//! The MCP gateway's servers, in LiteLLM's `mcp_servers` shape: a mapping from a server's name
//! to how it is reached (a command started as a child process, or a URL), which of its tools
//! are offered, and what credentials go with each request.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::Secret;
use crate::raw::RawSemanticFilter;

/// How many tools the semantic filter keeps unless `top_k` says otherwise (LiteLLM's default).
pub const DEFAULT_SEMANTIC_TOP_K: usize = 10;

/// How long a request to an MCP server may take unless the server sets `timeout`.
pub const DEFAULT_MCP_TIMEOUT: Duration = Duration::from_secs(60);

/// One upstream MCP server.
#[derive(Debug, Clone, PartialEq)]
pub struct McpServer {
    /// Its name: the prefix of its tools (`name-tool`) and the path `/{name}/mcp`.
    pub name: String,
    /// How it is reached.
    pub transport: McpTransport,
    /// What it is for, shown to clients and admins.
    pub description: Option<String>,
    /// Only these tools are offered, when set (it wins over `disallowed_tools`).
    pub allowed_tools: Option<Vec<String>>,
    /// These tools are never offered.
    pub disallowed_tools: Vec<String>,
    /// Headers sent with every HTTP request to the server.
    pub static_headers: BTreeMap<String, Secret<String>>,
    /// Credentials sent with every HTTP request to the server.
    pub auth: McpAuth,
    /// Longest wait for one answer.
    pub timeout: Duration,
}

impl McpServer {
    /// Whether the server's config lets clients see and call `tool`.
    pub fn offers(&self, tool: &str) -> bool {
        match &self.allowed_tools {
            Some(allowed) => allowed.iter().any(|t| t == tool),
            None => !self.disallowed_tools.iter().any(|t| t == tool),
        }
    }
}

/// How an MCP server is reached.
#[derive(Debug, Clone, PartialEq)]
pub enum McpTransport {
    /// A child process speaking JSON-RPC over its standard input and output.
    Stdio {
        /// The program.
        command: String,
        /// Its arguments.
        args: Vec<String>,
        /// Variables set for it, on top of a minimal environment (never tollgate's own).
        env: BTreeMap<String, Secret<String>>,
        /// Its working directory.
        cwd: Option<String>,
    },
    /// Streamable HTTP: one endpoint answering POSTs with JSON or an event stream.
    Http {
        /// The endpoint.
        url: String,
    },
    /// The older HTTP+SSE transport: an event stream that names where to POST.
    Sse {
        /// The event stream's URL.
        url: String,
    },
}

impl McpTransport {
    /// `stdio`, `http` or `sse`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Stdio { .. } => "stdio",
            Self::Http { .. } => "http",
            Self::Sse { .. } => "sse",
        }
    }
}

/// Credentials sent to an HTTP MCP server, as LiteLLM's `auth_type`/`auth_value` write them.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum McpAuth {
    /// Nothing.
    #[default]
    None,
    /// `Authorization: Bearer <value>`.
    Bearer(Secret<String>),
    /// `x-api-key: <value>`.
    ApiKey(Secret<String>),
    /// `Authorization: Basic <value>` (the value as written: `base64(user:password)`).
    Basic(Secret<String>),
    /// `Authorization: <value>`.
    Authorization(Secret<String>),
}

impl McpAuth {
    /// The header this sends, if any.
    pub fn header(&self) -> Option<(&'static str, String)> {
        match self {
            Self::None => None,
            Self::Bearer(v) => Some(("authorization", format!("Bearer {}", v.expose()))),
            Self::ApiKey(v) => Some(("x-api-key", v.expose().clone())),
            Self::Basic(v) => Some(("authorization", format!("Basic {}", v.expose()))),
            Self::Authorization(v) => Some(("authorization", v.expose().clone())),
        }
    }
}

/// Semantic tool filtering (`mcp_semantic_tool_filter`, when `enabled`): of the tools a caller
/// may see, only those closest in meaning to the caller's query are listed.
#[derive(Debug, Clone, PartialEq)]
pub struct SemanticFilter {
    /// The model, served by tollgate, that embeds tool descriptions and queries.
    pub embedding_model: String,
    /// At most this many tools are listed.
    pub top_k: usize,
    /// Tools less similar than this (cosine, -1 to 1) are left out, when set.
    pub similarity_threshold: Option<f32>,
}

/// Checks `mcp_semantic_tool_filter`; `None` unless it is enabled. Errors name the key
/// (relative to the section) and say what is wrong.
pub(crate) fn semantic_filter(
    raw: RawSemanticFilter,
) -> Result<Option<SemanticFilter>, (String, String)> {
    let bad = |key: &str, reason: String| (key.to_owned(), reason);
    let top_k = match raw.top_k {
        None => DEFAULT_SEMANTIC_TOP_K,
        Some(n) if n.is_finite() && n >= 1.0 && n.fract() == 0.0 && n <= 10_000.0 => n as usize,
        Some(n) => {
            return Err(bad("top_k", format!("must be a whole number of tools from 1, found {n}")));
        }
    };
    let similarity_threshold = match raw.similarity_threshold {
        None => None,
        Some(t) if t.is_finite() && (-1.0..=1.0).contains(&t) => Some(t as f32),
        Some(t) => {
            return Err(bad(
                "similarity_threshold",
                format!("must be a cosine similarity from -1 to 1, found {t}"),
            ));
        }
    };
    if raw.enabled != Some(true) {
        return Ok(None);
    }
    let embedding_model = match raw.embedding_model.as_deref().map(str::trim) {
        Some(m) if !m.is_empty() => m.to_owned(),
        _ => {
            return Err(bad(
                "embedding_model",
                "names the embedding model that ranks the tools; it is needed when `enabled`"
                    .to_owned(),
            ));
        }
    };
    Ok(Some(SemanticFilter { embedding_model, top_k, similarity_threshold }))
}

/// An `mcp_servers` entry as written.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawMcpServer {
    #[serde(default)]
    pub transport: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub args: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<BTreeMap<String, Secret<String>>>,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub allowed_tools: Option<Vec<String>>,
    #[serde(default)]
    pub disallowed_tools: Option<Vec<String>>,
    #[serde(default)]
    pub static_headers: Option<BTreeMap<String, Secret<String>>>,
    #[serde(default)]
    pub auth_type: Option<String>,
    #[serde(default)]
    pub auth_value: Option<Secret<String>>,
    /// LiteLLM's older name for `auth_value`.
    #[serde(default)]
    pub authentication_token: Option<Secret<String>>,
    #[serde(default)]
    pub timeout: Option<f64>,
    /// Accepted for compatibility: tollgate negotiates the version with each server.
    #[serde(default)]
    #[allow(dead_code)]
    pub spec_version: Option<String>,
}

/// Whether `name` can name a server: letters, digits and `_`, so that `name-tool` splits back
/// unambiguously and `/{name}/mcp` is a plain path segment.
pub fn valid_server_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !RESERVED_SERVER_NAMES.contains(&name)
}

/// Names whose `/{name}/mcp` is another route: `/ui/mcp` is the admin console's page.
const RESERVED_SERVER_NAMES: &[&str] = &["ui"];

/// Checks one entry and turns it into a server; errors name the key (relative to the entry)
/// and say what is wrong.
pub(crate) fn validate(name: &str, raw: RawMcpServer) -> Result<McpServer, (String, String)> {
    let bad = |key: &str, reason: String| (key.to_owned(), reason);
    if !valid_server_name(name) {
        return Err(bad(
            "",
            format!(
                "`{name}` cannot name an MCP server: use letters, digits and `_` (at most 64), \
                 since tools are offered as `{name}-<tool>`, and not `ui` (`/ui/mcp` is the \
                 admin console's)"
            ),
        ));
    }
    let kind = match raw.transport.as_deref().map(str::trim) {
        Some(t) => t.to_ascii_lowercase(),
        None if raw.command.is_some() => "stdio".to_owned(),
        None if raw.url.is_some() => "http".to_owned(),
        None => {
            return Err(bad("", "needs either `command` (a stdio server) or `url`".to_owned()));
        }
    };
    let http_only = |key: &str, set: bool| -> Result<(), (String, String)> {
        if set && kind == "stdio" {
            return Err(bad(key, "applies to HTTP and SSE servers, not to stdio ones".to_owned()));
        }
        Ok(())
    };
    http_only("static_headers", raw.static_headers.is_some())?;
    http_only("auth_type", raw.auth_type.is_some())?;
    let transport = match kind.as_str() {
        "stdio" => {
            if raw.url.is_some() {
                return Err(bad("url", "a stdio server is started from `command`".to_owned()));
            }
            let command = raw.command.filter(|c| !c.trim().is_empty()).ok_or_else(|| {
                bad("command", "a stdio server needs the command that starts it".to_owned())
            })?;
            McpTransport::Stdio {
                command,
                args: raw.args.unwrap_or_default(),
                env: raw.env.unwrap_or_default(),
                cwd: raw.cwd,
            }
        }
        "http" | "streamable_http" | "streamable-http" | "sse" => {
            for (key, set) in [
                ("command", raw.command.is_some()),
                ("args", raw.args.is_some()),
                ("env", raw.env.is_some()),
                ("cwd", raw.cwd.is_some()),
            ] {
                if set {
                    return Err(bad(key, format!("applies to stdio servers, not to {kind} ones")));
                }
            }
            let url =
                raw.url.ok_or_else(|| bad("url", format!("an {kind} server needs its `url`")))?;
            let parsed = url.trim();
            if !(parsed.starts_with("http://") || parsed.starts_with("https://")) {
                return Err(bad(
                    "url",
                    format!("expected an http:// or https:// URL, found {url:?}"),
                ));
            }
            let url = parsed.to_owned();
            if kind == "sse" { McpTransport::Sse { url } } else { McpTransport::Http { url } }
        }
        other => {
            return Err(bad(
                "transport",
                format!("expected `stdio`, `http` or `sse`, found {other:?}"),
            ));
        }
    };
    let value = raw.auth_value.or(raw.authentication_token);
    let auth = match (raw.auth_type.as_deref().map(str::trim), value) {
        (None | Some("none"), None) => McpAuth::None,
        (Some("none"), Some(_)) => {
            return Err(bad("auth_value", "is set but `auth_type` is `none`".to_owned()));
        }
        (None, Some(v)) => McpAuth::Bearer(v),
        (Some(t), None) => {
            return Err(bad("auth_value", format!("`auth_type: {t}` needs `auth_value`")));
        }
        (Some("bearer_token" | "bearer"), Some(v)) => McpAuth::Bearer(v),
        (Some("api_key"), Some(v)) => McpAuth::ApiKey(v),
        (Some("basic"), Some(v)) => McpAuth::Basic(v),
        (Some("authorization"), Some(v)) => McpAuth::Authorization(v),
        (Some(other), Some(_)) => {
            return Err(bad(
                "auth_type",
                format!(
                    "expected `none`, `bearer_token`, `api_key`, `basic` or `authorization`, \
                     found {other:?}"
                ),
            ));
        }
    };
    let mut static_headers = raw.static_headers.unwrap_or_default();
    for (header, value) in &mut static_headers {
        let lower = header.to_ascii_lowercase();
        if http::HeaderName::from_bytes(lower.as_bytes()).is_err()
            || http::HeaderValue::from_str(value.expose()).is_err()
        {
            return Err(bad(
                &format!("static_headers.{header}"),
                "is not a valid HTTP header name and value".to_owned(),
            ));
        }
        if matches!(lower.as_str(), "mcp-session-id" | "content-type" | "accept" | "host") {
            return Err(bad(
                &format!("static_headers.{header}"),
                "is set by the MCP transport itself".to_owned(),
            ));
        }
    }
    let timeout = match raw.timeout {
        None => DEFAULT_MCP_TIMEOUT,
        Some(t) if t.is_finite() && t > 0.0 && t <= 86_400.0 => Duration::from_secs_f64(t),
        Some(t) => {
            return Err(bad("timeout", format!("must be a positive number of seconds, found {t}")));
        }
    };
    let tools =
        |key: &str, list: Option<Vec<String>>| -> Result<Option<Vec<String>>, (String, String)> {
            if let Some(list) = &list
                && let Some(t) = list.iter().find(|t| t.trim().is_empty())
            {
                return Err(bad(key, format!("tool names cannot be empty, found {t:?}")));
            }
            Ok(list)
        };
    Ok(McpServer {
        name: name.to_owned(),
        transport,
        description: raw.description.filter(|d| !d.trim().is_empty()),
        allowed_tools: tools("allowed_tools", raw.allowed_tools)?,
        disallowed_tools: tools("disallowed_tools", raw.disallowed_tools)?.unwrap_or_default(),
        static_headers,
        auth,
        timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(yaml: &str) -> RawMcpServer {
        yaml_serde::from_str(yaml).unwrap()
    }

    #[test]
    fn the_transport_follows_from_what_is_given() {
        let s = validate("memory", raw("command: npx\nargs: [-y, pkg]")).unwrap();
        assert_eq!(s.transport.kind(), "stdio");
        let s = validate("wiki", raw("url: https://example.com/mcp")).unwrap();
        assert_eq!(s.transport, McpTransport::Http { url: "https://example.com/mcp".into() });
        let s = validate("t", raw("url: http://h:9/sse\ntransport: sse")).unwrap();
        assert_eq!(s.transport.kind(), "sse");
        assert_eq!(s.timeout, DEFAULT_MCP_TIMEOUT);
    }

    #[test]
    fn credentials_become_the_header_litellm_sends() {
        let h = |yaml: &str| validate("s", raw(yaml)).unwrap().auth.header();
        assert_eq!(
            h("url: http://h/mcp\nauth_type: bearer_token\nauth_value: t1"),
            Some(("authorization", "Bearer t1".to_owned()))
        );
        assert_eq!(
            h("url: http://h/mcp\nauth_type: api_key\nauth_value: t2"),
            Some(("x-api-key", "t2".to_owned()))
        );
        assert_eq!(
            h("url: http://h/mcp\nauth_type: authorization\nauth_value: Token t3"),
            Some(("authorization", "Token t3".to_owned()))
        );
        assert_eq!(h("url: http://h/mcp"), None);
    }

    #[test]
    fn mistakes_are_named() {
        let e = |name: &str, yaml: &str| validate(name, raw(yaml)).unwrap_err();
        assert_eq!(e("a-b", "command: x").0, "");
        assert!(e("ui", "command: x").1.contains("admin console"));
        assert!(valid_server_name("ui_tools"));
        assert_eq!(e("s", "transport: stdio").0, "command");
        assert_eq!(e("s", "transport: carrier-pigeon\nurl: http://h").0, "transport");
        assert_eq!(e("s", "url: ftp://h").0, "url");
        assert_eq!(e("s", "command: x\nstatic_headers: {a: b}").0, "static_headers");
        assert_eq!(e("s", "url: http://h\nauth_type: bearer_token").0, "auth_value");
        assert_eq!(e("s", "url: http://h\nauth_type: oauth2\nauth_value: x").0, "auth_type");
        assert_eq!(e("s", "url: http://h\ntimeout: -1").0, "timeout");
        assert_eq!(e("s", "url: http://h\nstatic_headers: {accept: x}").0, "static_headers.accept");
        assert_eq!(e("s", "url: http://h\nargs: [x]").0, "args");
    }

    #[test]
    fn the_semantic_filter_is_read_in_litellms_shape() {
        let f = |yaml: &str| semantic_filter(yaml_serde::from_str(yaml).unwrap());
        assert_eq!(
            f("enabled: true\nembedding_model: text-embedding-3-small").unwrap(),
            Some(SemanticFilter {
                embedding_model: "text-embedding-3-small".into(),
                top_k: DEFAULT_SEMANTIC_TOP_K,
                similarity_threshold: None,
            })
        );
        let s = f("enabled: 'true'\nembedding_model: e\ntop_k: 3\nsimilarity_threshold: 0.3")
            .unwrap()
            .unwrap();
        assert_eq!((s.top_k, s.similarity_threshold), (3, Some(0.3)));
        assert_eq!(f("enabled: false\ntop_k: 5").unwrap(), None);
        assert_eq!(f("embedding_model: e").unwrap(), None);
        assert_eq!(f("enabled: true").unwrap_err().0, "embedding_model");
        assert_eq!(f("enabled: true\nembedding_model: ' '").unwrap_err().0, "embedding_model");
        for top_k in ["0", "-1", "2.5", "1e9"] {
            let yaml = format!("enabled: true\nembedding_model: e\ntop_k: {top_k}");
            assert_eq!(f(&yaml).unwrap_err().0, "top_k", "{top_k}");
        }
        // A bad value is an error even while the filter is off: it would bite when turned on.
        assert_eq!(f("enabled: false\ntop_k: 0").unwrap_err().0, "top_k");
        let e = f("enabled: true\nembedding_model: e\nsimilarity_threshold: 2").unwrap_err();
        assert_eq!(e.0, "similarity_threshold");
    }

    #[test]
    fn allowed_tools_win_over_disallowed_ones() {
        let s =
            validate("s", raw("command: x\nallowed_tools: [a]\ndisallowed_tools: [a, b]")).unwrap();
        assert!(s.offers("a") && !s.offers("b"));
        let s = validate("s", raw("command: x\ndisallowed_tools: [b]")).unwrap();
        assert!(s.offers("a") && !s.offers("b"));
    }
}
