//! The MCP server form the list (add) and a stored server's page (edit) share: what was
//! typed, how it becomes the body of `POST /v1/mcp/server` or `PUT /v1/mcp/server`, and which
//! field an operation's refusal belongs next to.
//!
//! An edit starts from the stored entry with its credentials as `<redacted>`
//! ([`tollgate_proxy::ops::mcp_servers::stored_entry`]), so what the form does not show
//! (environment values, headers, the working directory, the timeout) is sent back as it is
//! and the operation keeps the stored credentials. The bearer token is typed to replace the
//! stored authentication, left empty to keep it, or cleared with its checkbox.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use tollgate_proxy::ApiError;

use crate::page::{self, Errors};

/// The transports the forms offer.
pub(crate) const TRANSPORTS: [&str; 3] = ["stdio", "http", "sse"];

const FORM_FIELDS: [&str; 10] = [
    "server_name",
    "transport",
    "command",
    "args",
    "url",
    "description",
    "allowed_tools",
    "disallowed_tools",
    "bearer_token",
    "clear_bearer_token",
];

/// Keys of an entry that only one kind of transport takes.
const STDIO_ONLY: [&str; 4] = ["command", "args", "env", "cwd"];
const REMOTE_ONLY: [&str; 5] =
    ["url", "static_headers", "auth_type", "auth_value", "authentication_token"];
/// Keys that hold a remote server's authentication.
const AUTH: [&str; 3] = ["auth_type", "auth_value", "authentication_token"];

/// The form, as typed. The token field is never filled in by the page.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct McpForm {
    #[serde(default)]
    pub(crate) server_name: String,
    #[serde(default)]
    pub(crate) transport: String,
    #[serde(default)]
    pub(crate) command: Option<String>,
    /// One argument a line.
    #[serde(default)]
    pub(crate) args: Option<String>,
    #[serde(default)]
    pub(crate) url: Option<String>,
    #[serde(default)]
    pub(crate) description: Option<String>,
    /// Comma-separated; empty offers every tool.
    #[serde(default)]
    pub(crate) allowed_tools: Option<String>,
    /// Comma-separated.
    #[serde(default)]
    pub(crate) disallowed_tools: Option<String>,
    #[serde(default)]
    pub(crate) bearer_token: Option<String>,
    /// `on` to remove the stored authentication.
    #[serde(default)]
    pub(crate) clear_bearer_token: Option<String>,
}

fn strings(v: &Value, key: &str) -> Option<Vec<String>> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
}

impl McpForm {
    /// A stored server as the edit form shows it, from its answer (credentials redacted,
    /// and not read here).
    pub(crate) fn of(shown: &Value) -> Self {
        let text = |k: &str| shown.get(k).and_then(Value::as_str).map(str::to_owned);
        Self {
            server_name: text("server_name").unwrap_or_default(),
            transport: text("transport").unwrap_or_default(),
            command: text("command"),
            args: strings(shown, "args").map(|a| a.join("\n")),
            url: text("url"),
            description: text("description"),
            allowed_tools: strings(shown, "allowed_tools").map(|a| a.join(", ")),
            disallowed_tools: strings(shown, "disallowed_tools").map(|a| a.join(", ")),
            bearer_token: None,
            clear_bearer_token: None,
        }
    }

    /// The form as typed, without the token: what a refused form shows again.
    pub(crate) fn without_token(self) -> Self {
        Self { bearer_token: None, ..self }
    }

    /// The `POST /v1/mcp/server` body: only the fields of the chosen transport, so the
    /// operation's checks speak of what the admin meant; a typed token is always passed on
    /// (and refused for a stdio server).
    pub(crate) fn new_body(&self) -> Map<String, Value> {
        let mut body = Map::new();
        self.fill(&mut body);
        if let Some(t) = page::text(self.bearer_token.clone()) {
            body.insert("auth_type".into(), json!("bearer_token"));
            body.insert("auth_value".into(), json!(t));
        }
        body
    }

    /// The `PUT /v1/mcp/server` body for server `name`: its stored entry (`stored`,
    /// credentials `<redacted>`) with the form's fields as typed — an emptied one removed,
    /// the other transport's settings dropped — and the token replaced, kept or cleared.
    pub(crate) fn edit_body(
        &self,
        name: &str,
        mut stored: Map<String, Value>,
    ) -> Result<Map<String, Value>, Errors> {
        let token = page::text(self.bearer_token.clone());
        let clear = self.clear_bearer_token.is_some();
        if token.is_some() && clear {
            return Err(Errors::from_iter([(
                "bearer_token".to_owned(),
                "Type a new token or clear the stored one, not both.".to_owned(),
            )]));
        }
        let other = if self.transport.trim() == "stdio" { &REMOTE_ONLY[..] } else { &STDIO_ONLY };
        for k in other {
            stored.remove(*k);
        }
        if clear {
            for k in AUTH {
                stored.remove(k);
            }
        }
        self.fill(&mut stored);
        if let Some(t) = token {
            for k in AUTH {
                stored.remove(k);
            }
            stored.insert("auth_type".into(), json!("bearer_token"));
            stored.insert("auth_value".into(), json!(t));
        }
        stored.insert("server_name".into(), json!(name));
        Ok(stored)
    }

    /// Puts the form's fields of its transport into `body`, empty ones left out.
    fn fill(&self, body: &mut Map<String, Value>) {
        body.insert("server_name".into(), json!(self.server_name));
        let transport = self.transport.trim();
        body.insert("transport".into(), json!(transport));
        let set = |body: &mut Map<String, Value>, k: &str, v: Option<Value>| {
            match v {
                Some(v) => body.insert(k.into(), v),
                None => body.remove(k),
            };
        };
        if transport == "stdio" {
            set(body, "command", page::text(self.command.clone()).map(|c| json!(c)));
            let args: Vec<&str> = self
                .args
                .as_deref()
                .unwrap_or("")
                .lines()
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .collect();
            set(body, "args", (!args.is_empty()).then(|| json!(args)));
        } else {
            set(body, "url", page::text(self.url.clone()).map(|u| json!(u)));
        }
        set(body, "description", page::text(self.description.clone()).map(|d| json!(d)));
        for (k, v) in
            [("allowed_tools", &self.allowed_tools), ("disallowed_tools", &self.disallowed_tools)]
        {
            let tools = page::list(v.as_deref().unwrap_or(""));
            set(body, k, (!tools.is_empty()).then(|| json!(tools)));
        }
    }
}

/// An operation's refusal next to the field it is about: the token's field for the
/// authentication keys, the name's for a name that cannot name a server (whose message
/// names no key).
pub(crate) fn refusal(e: &ApiError, name: &str) -> Errors {
    let field = match e.param() {
        Some("auth_type" | "auth_value" | "authentication_token") => Some("bearer_token"),
        Some("name") => Some("server_name"),
        None if e.code() == Some("invalid_mcp_server")
            && !tollgate_config::valid_server_name(name.trim()) =>
        {
            Some("server_name")
        }
        _ => None,
    };
    match field {
        Some(f) => Errors::from_iter([(f.to_owned(), e.message().to_owned())]),
        None => page::field_error_among(e, &FORM_FIELDS),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn form(pairs: &[(&str, &str)]) -> McpForm {
        let body: Vec<(String, String)> =
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        serde_urlencoded::from_str(&serde_urlencoded::to_string(body).unwrap()).unwrap()
    }

    fn stored() -> Map<String, Value> {
        json!({
            "url": "http://old/mcp",
            "auth_type": "api_key",
            "auth_value": "<redacted>",
            "static_headers": {"X-Team": "<redacted>"},
            "timeout": 5,
            "description": "old",
            "disallowed_tools": ["crash"],
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn an_edit_keeps_what_the_form_does_not_show_and_an_untyped_token() {
        let f =
            form(&[("transport", "http"), ("url", "http://new/mcp"), ("allowed_tools", "a, b")]);
        let body = f.edit_body("wiki", stored()).unwrap();
        assert_eq!(body["server_name"], "wiki");
        assert_eq!(body["url"], "http://new/mcp");
        assert_eq!(
            (&body["auth_type"], &body["auth_value"]),
            (&json!("api_key"), &json!("<redacted>"))
        );
        assert_eq!(body["static_headers"]["X-Team"], "<redacted>");
        assert_eq!(body["timeout"], 5);
        assert_eq!(body["allowed_tools"], json!(["a", "b"]));
        // Emptied in the form: removed.
        assert!(!body.contains_key("description") && !body.contains_key("disallowed_tools"));
    }

    #[test]
    fn a_typed_token_replaces_the_authentication_and_the_checkbox_clears_it() {
        let f = form(&[("transport", "http"), ("url", "u"), ("bearer_token", "tok")]);
        let body = f.edit_body("wiki", stored()).unwrap();
        assert_eq!(
            (&body["auth_type"], &body["auth_value"]),
            (&json!("bearer_token"), &json!("tok"))
        );
        let f = form(&[("transport", "http"), ("url", "u"), ("clear_bearer_token", "on")]);
        let body = f.edit_body("wiki", stored()).unwrap();
        assert!(!body.contains_key("auth_type") && !body.contains_key("auth_value"));
        let both = form(&[("url", "u"), ("bearer_token", "tok"), ("clear_bearer_token", "on")]);
        assert!(both.edit_body("wiki", stored()).unwrap_err().of("bearer_token").is_some());
    }

    #[test]
    fn a_change_of_transport_drops_the_other_transports_settings() {
        let f = form(&[("transport", "stdio"), ("command", "npx"), ("args", "-y\nserver")]);
        let body = f.edit_body("wiki", stored()).unwrap();
        for k in ["url", "static_headers", "auth_type", "auth_value"] {
            assert!(!body.contains_key(k), "{k}: {body:?}");
        }
        assert_eq!(body["args"], json!(["-y", "server"]));
    }

    #[test]
    fn a_stored_server_fills_the_form_without_its_token() {
        let shown = json!({"server_name": "wiki", "transport": "stdio", "command": "x",
            "args": ["a", "b"], "allowed_tools": null, "disallowed_tools": ["crash", "rm"],
            "auth_value": "<redacted>"});
        let f = McpForm::of(&shown);
        assert_eq!(f.args.as_deref(), Some("a\nb"));
        assert_eq!(f.allowed_tools, None);
        assert_eq!(f.disallowed_tools.as_deref(), Some("crash, rm"));
        assert!(!format!("{f:?}").contains("redacted"));
    }
}
