//! MCP servers: every server the gateway serves, config.yaml's and the stored ones, with its
//! health; one server's settings and the tools it lists; adding and deleting stored servers.
//! Each is the operation behind `/v1/mcp/server*` (`tollgate_proxy::ops::mcp_servers`). The
//! admin's only; a credential is shown as set or not, never its value.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tollgate_proxy::AppState;
use tollgate_proxy::ops::mcp_servers as ops;

use crate::page::{self, Base, Choice, DoneQuery, Errors, Frame, Submitted};
use crate::session::Signed;

/// The transports the add form offers.
const TRANSPORTS: [&str; 3] = ["stdio", "http", "sse"];

const FORM_FIELDS: [&str; 7] =
    ["server_name", "transport", "command", "args", "url", "description", "bearer_token"];

/// The add form, as typed.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct McpForm {
    #[serde(default)]
    server_name: String,
    #[serde(default)]
    transport: String,
    #[serde(default)]
    command: Option<String>,
    /// One argument a line.
    #[serde(default)]
    args: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    bearer_token: Option<String>,
}

fn text_of(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn strings_of(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// A server's health, from the status the operations report.
struct Health {
    served: bool,
    connected: bool,
    restarts: u64,
    last_error: String,
}

impl Health {
    fn of(v: &Value) -> Self {
        let status = v.get("status").unwrap_or(&Value::Null);
        Self {
            served: v.get("served").and_then(Value::as_bool).unwrap_or(false),
            connected: status.get("connected").and_then(Value::as_bool).unwrap_or(false),
            restarts: status.get("restarts").and_then(Value::as_u64).unwrap_or(0),
            last_error: text_of(status, "last_error"),
        }
    }
}

/// One server as the list and its page show it.
struct Row {
    name: String,
    from_file: bool,
    transport: String,
    /// The URL, or the command and its arguments.
    target: String,
    description: String,
    /// Why a stored entry cannot be served, when it cannot.
    error: String,
    health: Health,
}

impl Row {
    fn of(v: &Value) -> Self {
        let target = match v.get("url").and_then(Value::as_str) {
            Some(url) => url.to_owned(),
            None => std::iter::once(text_of(v, "command"))
                .chain(strings_of(v, "args"))
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
        };
        Self {
            name: text_of(v, "server_name"),
            from_file: v.get("source").and_then(Value::as_str) == Some("config"),
            transport: text_of(v, "transport"),
            target,
            description: text_of(v, "description"),
            error: text_of(v, "error"),
            health: Health::of(v),
        }
    }
}

/// A setting of one server, as its page shows it.
struct Fact {
    label: &'static str,
    value: String,
}

/// A credential of one server: what it is and whether it is set — never its value.
struct Credential {
    what: String,
    set: bool,
}

/// A tool as the server lists it.
struct Tool {
    name: String,
    description: String,
    offered: bool,
}

fn facts(v: &Value) -> Vec<Fact> {
    let mut out = Vec::new();
    let mut add = |label: &'static str, value: String| {
        if !value.is_empty() {
            out.push(Fact { label, value });
        }
    };
    add("URL", text_of(v, "url"));
    add("Command", text_of(v, "command"));
    add("Arguments", strings_of(v, "args").join(" "));
    add("Working directory", text_of(v, "cwd"));
    add("Timeout (seconds)", text_of(v, "timeout"));
    let allowed = match v.get("allowed_tools") {
        Some(Value::Array(_)) => strings_of(v, "allowed_tools").join(", "),
        _ => "all".to_owned(),
    };
    add("Allowed tools", allowed);
    add("Hidden tools", strings_of(v, "disallowed_tools").join(", "));
    add("Created by", text_of(v, "created_by"));
    add("Updated by", text_of(v, "updated_by"));
    out
}

/// Names of credentials only: the operations answer `<redacted>` for each value, which is
/// not even read here.
fn credentials(v: &Value) -> Vec<Credential> {
    let mut out = Vec::new();
    for (map, what) in [("env", "environment variable"), ("static_headers", "header")] {
        if let Some(m) = v.get(map).and_then(Value::as_object) {
            out.extend(m.keys().map(|k| Credential { what: format!("{what} {k}"), set: true }));
        }
    }
    if let Some(auth) = v.get("auth_type").and_then(Value::as_str) {
        let set = v.get("auth_value").is_some_and(|a| !a.is_null());
        let what = match auth {
            "none" => "Authentication",
            "bearer_token" => "Bearer token",
            "api_key" => "API key",
            "basic" => "Basic credentials",
            "authorization" => "Authorization header",
            other => other,
        }
        .to_owned();
        out.push(Credential { what, set });
    }
    out
}

#[derive(Template)]
#[template(path = "admin/mcp_servers.html")]
struct ListPage {
    frame: Frame,
    rows: Vec<Row>,
    form: McpForm,
    transports: Vec<Choice>,
    errors: Errors,
}

#[derive(Template)]
#[template(path = "admin/mcp_server.html")]
struct DetailPage {
    frame: Frame,
    row: Row,
    facts: Vec<Fact>,
    credentials: Vec<Credential>,
    tools: Vec<Tool>,
    tools_error: Option<String>,
    errors: Errors,
}

fn admin(base: &Base, signed: &Signed) -> Result<(), Response> {
    if signed.role.manages() {
        Ok(())
    } else {
        Err(page::refused(base, "MCP servers are the admin's."))
    }
}

fn render_list(
    state: &AppState,
    base: &Base,
    signed: &Signed,
    (form, errors, status): (McpForm, Errors, StatusCode),
    notice: Option<String>,
) -> Response {
    let rows = match ops::list(state) {
        Value::Array(all) => all.iter().map(Row::of).collect(),
        _ => Vec::new(),
    };
    let frame = Frame::new(base, signed, "MCP servers", "mcp").with_notice(notice);
    let nonce = frame.nonce.clone();
    let transports = page::choices(&TRANSPORTS, &form.transport);
    page::html(status, &nonce, &ListPage { frame, rows, form, transports, errors })
}

pub(crate) async fn list(
    State(state): State<AppState>,
    parts: Parts,
    signed: Signed,
    Query(q): Query<DoneQuery>,
) -> Response {
    let base = Base::of(&parts, &state);
    if let Err(r) = admin(&base, &signed) {
        return r;
    }
    let blank = McpForm { transport: TRANSPORTS[0].to_owned(), ..McpForm::default() };
    render_list(&state, &base, &signed, (blank, Errors::default(), StatusCode::OK), q.done)
}

/// The form as a body in config.yaml's shape: only the fields of the chosen transport, so the
/// operation's checks speak of what the admin meant; a typed token is always passed on (and
/// refused for a stdio server).
fn body_of(f: &McpForm) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("server_name".into(), json!(f.server_name));
    let transport = f.transport.trim();
    body.insert("transport".into(), json!(transport));
    match transport {
        "stdio" => {
            if let Some(c) = page::text(f.command.clone()) {
                body.insert("command".into(), json!(c));
            }
            let args: Vec<&str> = f
                .args
                .as_deref()
                .unwrap_or("")
                .lines()
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .collect();
            if !args.is_empty() {
                body.insert("args".into(), json!(args));
            }
        }
        _ => {
            if let Some(u) = page::text(f.url.clone()) {
                body.insert("url".into(), json!(u));
            }
        }
    }
    if let Some(d) = page::text(f.description.clone()) {
        body.insert("description".into(), json!(d));
    }
    if let Some(t) = page::text(f.bearer_token.clone()) {
        body.insert("auth_type".into(), json!("bearer_token"));
        body.insert("auth_value".into(), json!(t));
    }
    body
}

/// An operation's refusal next to the field it is about: the token's field for the
/// authentication keys, the name's for a name that cannot name a server (whose message
/// names no key).
fn refusal(e: &tollgate_proxy::ApiError, name: &str) -> Errors {
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

pub(crate) async fn create(
    State(state): State<AppState>,
    Submitted { base, signed, form }: Submitted<McpForm>,
) -> Response {
    if let Err(r) = admin(&base, &signed) {
        return r;
    }
    match ops::create(&state, &signed.actor(), body_of(&form)).await {
        Ok(_) => {
            let notice = format!("MCP server {} added.", form.server_name.trim());
            page::done(&base, "/mcp", &notice)
        }
        Err(e) => {
            let errors = refusal(&e, &form.server_name);
            let typed = McpForm { bearer_token: None, ..form };
            render_list(&state, &base, &signed, (typed, errors, StatusCode::BAD_REQUEST), None)
        }
    }
}

async fn render_one(
    state: &AppState,
    base: &Base,
    signed: &Signed,
    name: &str,
    errors: Errors,
    notice: Option<String>,
) -> Response {
    let server = match ops::get(state, name).await {
        Ok(v) => v,
        Err(e) if e.status() == StatusCode::NOT_FOUND => {
            return page::not_found(base, "No MCP server has this name.");
        }
        Err(e) => {
            tracing::error!(error = %e.message(), "admin UI: MCP server not read");
            return page::unavailable(base);
        }
    };
    let (tools, tools_error) = match ops::tools(state, name).await {
        Ok(answer) => {
            let listed = answer.get("tools").and_then(Value::as_array).cloned().unwrap_or_default();
            let tools = listed
                .iter()
                .map(|t| Tool {
                    name: text_of(t, "name"),
                    description: text_of(t, "description"),
                    offered: t.get("offered").and_then(Value::as_bool).unwrap_or(false),
                })
                .collect();
            (tools, None)
        }
        Err(e) => (Vec::new(), Some(e.message().to_owned())),
    };
    // Listing the tools may have connected it: its health as of now.
    let server = ops::get(state, name).await.unwrap_or(server);
    let status = if errors.0.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let row = Row::of(&server);
    let frame =
        Frame::new(base, signed, &format!("MCP server {}", row.name), "mcp").with_notice(notice);
    let nonce = frame.nonce.clone();
    let detail = DetailPage {
        frame,
        facts: facts(&server),
        credentials: credentials(&server),
        row,
        tools,
        tools_error,
        errors,
    };
    page::html(status, &nonce, &detail)
}

pub(crate) async fn detail(
    State(state): State<AppState>,
    parts: Parts,
    signed: Signed,
    Path(name): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let base = Base::of(&parts, &state);
    if let Err(r) = admin(&base, &signed) {
        return r;
    }
    render_one(&state, &base, &signed, &name, Errors::default(), q.done).await
}

/// No field: the delete form holds only its CSRF token.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Nothing {}

pub(crate) async fn act(
    State(state): State<AppState>,
    Path((name, action)): Path<(String, String)>,
    Submitted { base, signed, form: Nothing {} }: Submitted<Nothing>,
) -> Response {
    if let Err(r) = admin(&base, &signed) {
        return r;
    }
    match action.as_str() {
        "delete" => match ops::delete(&state, &signed.actor(), &name).await {
            Ok(_) => page::done(&base, "/mcp", &format!("MCP server {name} deleted.")),
            Err(e) if e.status() == StatusCode::NOT_FOUND => {
                page::not_found(&base, "No MCP server has this name.")
            }
            Err(e) => {
                let errors = Errors::from_iter([("form".to_owned(), e.message().to_owned())]);
                render_one(&state, &base, &signed, &name, errors, None).await
            }
        },
        _ => page::not_found(&base, "No such action."),
    }
}
