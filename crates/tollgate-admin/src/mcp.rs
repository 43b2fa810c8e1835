//! MCP servers: every server the gateway serves, config.yaml's and the stored ones, with its
//! health; one server's settings and the tools it lists; adding and deleting stored servers.
//! Each is the operation behind `/v1/mcp/server*` (`tollgate_proxy::ops::mcp_servers`). The
//! admin's only; a credential is shown as set or not, never its value.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use serde_json::Value;
use tollgate_proxy::AppState;
use tollgate_proxy::ops::mcp_servers as ops;

use crate::mcp_form::{McpForm, TRANSPORTS, refusal};
use crate::page::{self, Base, Choice, DoneQuery, Errors, Frame, Submitted};
use crate::session::Signed;

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
    /// The edit form, for a stored server.
    edit: Option<Edit>,
}

/// A stored server's edit form: as stored, or as typed when refused.
struct Edit {
    form: McpForm,
    transports: Vec<Choice>,
    /// Whether an authentication is stored (the form offers to keep, replace or clear it).
    auth_set: bool,
    /// The environment variables and headers the form keeps as they are.
    kept: Vec<String>,
}

impl Edit {
    fn of(server: &Value, typed: Option<McpForm>) -> Self {
        let form = typed.unwrap_or_else(|| McpForm::of(server));
        let kept = credentials(server)
            .into_iter()
            .filter(|c| c.what.starts_with("environment variable") || c.what.starts_with("header"))
            .map(|c| c.what)
            .collect();
        Self {
            transports: page::choices(&TRANSPORTS, form.transport.trim()),
            auth_set: server.get("auth_value").is_some_and(|a| !a.is_null()),
            kept,
            form,
        }
    }
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

pub(crate) async fn create(
    State(state): State<AppState>,
    Submitted { base, signed, form }: Submitted<McpForm>,
) -> Response {
    if let Err(r) = admin(&base, &signed) {
        return r;
    }
    match ops::create(&state, &signed.actor(), form.new_body()).await {
        Ok(_) => {
            let notice = format!("MCP server {} added.", form.server_name.trim());
            page::done(&base, "/mcp", &notice)
        }
        Err(e) => {
            let errors = refusal(&e, &form.server_name);
            let typed = form.without_token();
            render_list(&state, &base, &signed, (typed, errors, StatusCode::BAD_REQUEST), None)
        }
    }
}

async fn render_one(
    state: &AppState,
    base: &Base,
    signed: &Signed,
    name: &str,
    (errors, typed): (Errors, Option<McpForm>),
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
    let edit = (!row.from_file).then(|| Edit::of(&server, typed));
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
        edit,
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
    render_one(&state, &base, &signed, &name, (Errors::default(), None), q.done).await
}

/// The edit form (`edit`) or the delete form, which holds only its CSRF token; both the same
/// operations as `PUT /v1/mcp/server` and `DELETE /v1/mcp/server/{name}`.
pub(crate) async fn act(
    State(state): State<AppState>,
    Path((name, action)): Path<(String, String)>,
    Submitted { base, signed, form }: Submitted<McpForm>,
) -> Response {
    if let Err(r) = admin(&base, &signed) {
        return r;
    }
    let actor = signed.actor();
    let refused = match action.as_str() {
        "edit" => {
            let body = match ops::stored_entry(&state, &name).await {
                Ok(stored) => form.edit_body(&name, stored),
                Err(e) => Err(Errors::from_iter([("form".to_owned(), e.message().to_owned())])),
            };
            let saved = match body {
                Ok(body) => ops::update(&state, &actor, body).await.map_err(|e| {
                    if e.status().is_server_error() {
                        tracing::error!(error = %e.message(), "admin UI: MCP server not saved");
                    }
                    refusal(&e, &name)
                }),
                Err(errors) => Err(errors),
            };
            match saved {
                Ok(_) => {
                    let path = format!("/mcp/{}", page::url_encode(&name));
                    return page::done(&base, &path, &format!("MCP server {name} saved."));
                }
                Err(errors) => (errors, Some(form.without_token())),
            }
        }
        "delete" => match ops::delete(&state, &actor, &name).await {
            Ok(_) => return page::done(&base, "/mcp", &format!("MCP server {name} deleted.")),
            Err(e) => (Errors::from_iter([("form".to_owned(), e.message().to_owned())]), None),
        },
        _ => return page::not_found(&base, "No such action."),
    };
    // Not found stays not found; the page says any other refusal.
    render_one(&state, &base, &signed, &name, refused, None).await
}
