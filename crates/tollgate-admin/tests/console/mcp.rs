//! The MCP servers pages: config.yaml's and stored servers with their health, one server's
//! settings and tools (or why they cannot be listed), adding and deleting through the forms
//! with errors next to their fields, never a credential on a page, and the admin's only.

use tollgate_testkit::mcp_mock::mock_binary;
use tollgate_testkit::{McpOptions, MockMcp, RefusingPort};

use super::*;

const ENV_SECRET: &str = "mcp-env-secret-4242-abcd";
const TOKEN: &str = "mcp-bearer-secret-7777-efgh";
const NEW_TOKEN: &str = "mcp-bearer-replaced-3131-ijkl";
const HEADER_SECRET: &str = "mcp-header-secret-5151-mnop";

fn bin() -> String {
    mock_binary().unwrap().display().to_string()
}

/// A console whose config.yaml serves one stdio server, `from_file`, holding a secret in its
/// environment and hiding its `crash` tool.
async fn mcp_console() -> TestApp {
    let yaml = format!(
        "mcp_servers:\n  from_file:\n    command: {}\n    args: [--mcp-stdio, --name, from_file]\n    env:\n      MOCK_MCP_SECRET: {ENV_SECRET}\n    description: served from the file\n    disallowed_tools: [crash]\n",
        bin()
    );
    let env = [
        ("TOLLGATE_MASTER_KEY", MASTER),
        ("UI_USERNAME", "boss"),
        ("UI_PASSWORD", UI_PASSWORD),
        ("TOLLGATE_SECRET_KEY", "a-secret-key-for-the-console-test-1234"),
    ];
    TestApp::spawn_with_env(&yaml, &env).await.unwrap()
}

fn assert_no_secret(page: &str, html: &str) {
    for s in [ENV_SECRET, TOKEN, NEW_TOKEN, HEADER_SECRET] {
        assert!(!html.contains(s), "{page} shows a credential: {html}");
    }
}

/// A page that must answer `want`, checked for credentials.
async fn visit(b: &Browser<'_>, path: &str, want: u16) -> String {
    let (status, html) = b.get(path).await;
    assert_eq!(status, want, "{path}: {html}");
    assert_no_secret(path, &html);
    html
}

/// The names of the servers the API lists.
async fn api_names(app: &TestApp) -> Vec<String> {
    let (status, list) = api_get(app, "/v1/mcp/server").await;
    assert_eq!(status, 200);
    list.as_array().unwrap().iter().map(|s| s["server_name"].as_str().unwrap().into()).collect()
}

/// The list's row of server `name`.
fn server_row<'h>(html: &'h str, name: &str) -> &'h str {
    let at = html
        .find(&format!("href=\"/ui/mcp/{name}\""))
        .unwrap_or_else(|| panic!("no row for {name}: {html}"));
    let end = html[at..].find("</tr>").map_or(html.len(), |e| at + e);
    &html[at..end]
}

/// The tools table's row of `tool`.
fn tool_row<'h>(html: &'h str, tool: &str) -> &'h str {
    let at = html
        .find(&format!("<tr><td class=\"mono\">{tool}</td>"))
        .unwrap_or_else(|| panic!("no tool {tool}: {html}"));
    let end = html[at..].find("</tr>").map_or(html.len(), |e| at + e);
    &html[at..end]
}

/// A form that is refused: its fields, the field the error is next to, and what it says.
type Refusal = (&'static [(&'static str, &'static str)], &'static str, &'static str);

#[tokio::test]
async fn mcp_servers_are_listed_added_with_their_tools_shown_and_deleted_through_the_forms() {
    let mcp = MockMcp::start_http_with(McpOptions {
        bearer_token: Some(TOKEN.to_owned()),
        ..McpOptions::named("remote").only(&["echo", "add"])
    })
    .await
    .unwrap();
    let app = mcp_console().await;
    let b = Browser::sign_in(&app, "boss", UI_PASSWORD).await;

    let keys = visit(&b, "/ui/keys", 200).await;
    assert!(keys.contains("href=\"/ui/mcp\""), "the nav links to the MCP servers: {keys}");
    let list = visit(&b, "/ui/mcp", 200).await;
    let row = server_row(&list, "from_file");
    assert!(row.contains("config.yaml") && row.contains("stdio"), "{row}");
    assert!(row.contains("--mcp-stdio --name from_file") && row.contains("served from the file"));

    // Refused forms: the field is named, nothing is stored, the typed token is not echoed.
    let refusals: [Refusal; 5] = [
        (&[("server_name", "remote"), ("transport", "http")], "url", "url"),
        (
            &[("server_name", "bad name"), ("transport", "stdio"), ("command", "x")],
            "server_name",
            "bad name",
        ),
        (
            &[("server_name", "from_file"), ("transport", "stdio"), ("command", "x")],
            "server_name",
            "config.yaml",
        ),
        (&[("server_name", "local"), ("transport", "stdio")], "command", "command"),
        (
            &[
                ("server_name", "local"),
                ("transport", "stdio"),
                ("command", "x"),
                ("bearer_token", TOKEN),
            ],
            "bearer_token",
            "HTTP and SSE",
        ),
    ];
    for (fields, field, says) in refusals {
        let (status, html, _) = b.post("/ui/mcp", fields).await;
        assert_eq!(status, 400, "{fields:?}: {html}");
        assert_no_secret("the refused form", &html);
        let error = error_next_to(&html, field).unwrap_or_else(|| panic!("{field}: {html}"));
        assert!(error.contains(says), "{fields:?}: {error}");
        assert!(
            html.contains(&format!("value=\"{}\"", fields[0].1)),
            "the form keeps what was typed"
        );
    }
    let (status, _, _) = b
        .post_raw(
            "/ui/mcp",
            &form(&[("server_name", "local"), ("transport", "stdio"), ("command", "x")]),
        )
        .await;
    assert_eq!(status, 403, "a form without the session's CSRF token is refused");
    assert_eq!(api_names(&app).await, ["from_file"]);

    // Added through the form: the API lists them, with the token set and never shown.
    let remote = [
        ("server_name", "remote"),
        ("transport", "http"),
        ("url", &mcp.url()),
        ("description", "docs over http"),
        ("bearer_token", TOKEN),
    ];
    let (status, html, location) = b.post("/ui/mcp", &remote).await;
    assert_eq!(status, 303, "{html}");
    let added = location.unwrap();
    assert!(added.starts_with("/ui/mcp?done="), "{added}");
    let local = [
        ("server_name", "local"),
        ("transport", "stdio"),
        ("command", &bin()),
        ("args", "--mcp-stdio\n--name\nlocal"),
    ];
    assert_eq!(b.post("/ui/mcp", &local).await.0, 303);
    let refusing = RefusingPort::new().unwrap();
    let gone_url = format!("http://{}/mcp", refusing.addr());
    let gone = [("server_name", "gone"), ("transport", "sse"), ("url", &gone_url)];
    assert_eq!(b.post("/ui/mcp", &gone).await.0, 303);
    assert_eq!(api_names(&app).await, ["from_file", "remote", "local", "gone"]);
    let (_, answer) = api_get(&app, "/v1/mcp/server/remote").await;
    assert_eq!(answer["auth_type"], "bearer_token");
    assert_eq!(answer["description"], "docs over http");
    let (_, answer) = api_get(&app, "/v1/mcp/server/local").await;
    assert_eq!(answer["args"], json!(["--mcp-stdio", "--name", "local"]));

    let list = visit(&b, &added, 200).await;
    assert!(list.contains("MCP server remote added."), "{list}");
    let row = server_row(&list, "remote");
    assert!(row.contains("stored") && row.contains(&mcp.url()) && row.contains("docs over http"));
    assert!(server_row(&list, "local").contains("--mcp-stdio --name local"));

    // One server's page: settings, credentials as set, tools as the server lists them.
    let page = visit(&b, "/ui/mcp/remote", 200).await;
    assert!(page.contains("<th>Bearer token</th><td><span class=\"badge ok\">set"), "{page}");
    assert!(
        tool_row(&page, "echo").contains("offered") && tool_row(&page, "add").contains("offered")
    );
    assert!(
        !page.contains("<tr><td class=\"mono\">whoami</td>"),
        "only the tools the server lists"
    );
    let listed = mcp.calls_of("tools/list");
    assert!(!listed.is_empty(), "the page asked the server");
    assert_eq!(
        listed[0].header("authorization").map(str::to_owned),
        Some(format!("Bearer {TOKEN}"))
    );
    assert!(page.contains("action=\"/ui/mcp/remote/delete\""), "a stored server can be deleted");

    let page = visit(&b, "/ui/mcp/from_file", 200).await;
    assert!(page.contains("environment variable MOCK_MCP_SECRET"), "{page}");
    assert!(tool_row(&page, "crash").contains("hidden by filters"), "{page}");
    assert!(tool_row(&page, "echo").contains("offered"));
    assert!(
        page.contains("change or remove it in the file") && !page.contains("/from_file/delete")
    );
    let list = visit(&b, "/ui/mcp", 200).await;
    assert!(server_row(&list, "from_file").contains("badge ok\">connected"), "{list}");

    // A server that cannot be reached: its page says so, it is not a 500.
    let page = visit(&b, "/ui/mcp/gone", 200).await;
    assert!(
        page.contains("id=\"tools-error\"") && page.contains("did not list its tools"),
        "{page}"
    );
    assert!(!server_row(&visit(&b, "/ui/mcp", 200).await, "gone").contains("badge ok\">connected"));
    assert!(visit(&b, "/ui/mcp/no_such", 404).await.contains("No MCP server"));

    // Deleting: config.yaml's are refused with why, stored ones go.
    let (status, html, _) = b.post("/ui/mcp/from_file/delete", &[]).await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("defined in config.yaml"), "{html}");
    assert_no_secret("the refused delete", &html);
    for name in ["remote", "gone"] {
        let (status, html, location) = b.post(&format!("/ui/mcp/{name}/delete"), &[]).await;
        assert_eq!(status, 303, "{html}");
        let back = location.unwrap();
        assert!(back.starts_with("/ui/mcp?done="), "{back}");
        let list = visit(&b, &back, 200).await;
        assert!(list.contains(&format!("MCP server {name} deleted.")), "{list}");
    }
    assert_eq!(b.post("/ui/mcp/remote/delete", &[]).await.0, 404);
    assert_eq!(api_names(&app).await, ["from_file", "local"]);
    visit(&b, "/ui/mcp/remote", 404).await;
    let list = visit(&b, "/ui/mcp", 200).await;
    assert!(!list.contains("/ui/mcp/remote\"") && list.contains("/ui/mcp/local\""));

    // Audited as the console's user, like the API's changes.
    visit(&b, "/ui/audit", 200).await;
    let trail = app.state.store().audit_logs(Default::default()).await.unwrap();
    let changes: Vec<(&str, &str)> = trail
        .iter()
        .filter(|r| r.object_type == "mcp_server" && r.actor.starts_with("ui:"))
        .map(|r| (r.action.as_str(), r.object_id.as_str()))
        .collect();
    for change in [("create", "remote"), ("create", "local"), ("delete", "remote")] {
        assert!(changes.contains(&change), "{change:?} in {changes:?}");
    }
}

#[tokio::test]
async fn viewers_and_users_cannot_open_or_change_mcp_servers() {
    let app = mcp_console().await;
    let stored = json!({
        "server_name": "stored",
        "url": "http://127.0.0.1:9/mcp",
        "auth_type": "bearer_token",
        "auth_value": TOKEN,
    });
    api(&app, "/v1/mcp/server", stored).await;
    api(&app, "/user/new", json!({"user_id": "vic", "password": "vic's password", "user_role": "proxy_admin_viewer", "auto_create_key": false})).await;
    api(&app, "/user/new", json!({"user_id": "ann", "password": "ann's password", "user_role": "internal_user", "auto_create_key": false})).await;
    for (who, password) in [("vic", "vic's password"), ("ann", "ann's password")] {
        let b = Browser::sign_in(&app, who, password).await;
        for path in ["/ui/mcp", "/ui/mcp/stored", "/ui/mcp/from_file"] {
            visit(&b, path, 403).await;
        }
        let add = [("server_name", "sneaky"), ("transport", "stdio"), ("command", "sh")];
        assert_eq!(b.post("/ui/mcp", &add).await.0, 403, "{who}");
        assert_eq!(b.post("/ui/mcp/stored/delete", &[]).await.0, 403, "{who}");
        let edit = [("transport", "http"), ("url", "http://127.0.0.1:10/mcp")];
        assert_eq!(b.post("/ui/mcp/stored/edit", &edit).await.0, 403, "{who}");
        let (_, keys) = b.get("/ui/keys").await;
        assert!(!keys.contains("/ui/mcp\""), "{who} is not shown the MCP servers: {keys}");
    }
    assert_eq!(api_names(&app).await, ["from_file", "stored"]);
    let (_, answer) = api_get(&app, "/v1/mcp/server/stored").await;
    assert_eq!(answer["url"], "http://127.0.0.1:9/mcp", "no edit took");
}

/// One JSON-RPC request to `/mcp` with the master key: its answer.
async fn mcp_rpc(app: &TestApp, method: &str, params: Value) -> Value {
    let resp = client()
        .post(app.url("/mcp"))
        .bearer_auth(MASTER)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{method}");
    resp.json().await.unwrap()
}

async fn mcp_tools(app: &TestApp) -> Vec<String> {
    let answer = mcp_rpc(app, "tools/list", json!({})).await;
    let tools = answer["result"]["tools"].as_array().unwrap_or_else(|| panic!("{answer}"));
    tools.iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
}

/// Calls `remote-echo` through the gateway: the `authorization` header the server saw.
async fn echo_through(app: &TestApp, server: &MockMcp) -> Option<String> {
    server.clear_calls();
    let answer =
        mcp_rpc(app, "tools/call", json!({"name": "remote-echo", "arguments": {"text": "hi"}}))
            .await;
    assert_eq!(answer["result"]["content"][0]["text"], "hi", "{answer}");
    let calls = server.calls_of("tools/call");
    assert_eq!(calls.len(), 1, "the call reached this server");
    calls[0].header("authorization").map(str::to_owned)
}

#[tokio::test]
async fn a_stored_mcp_server_is_edited_on_its_page_with_its_token_kept_replaced_or_cleared() {
    let first = MockMcp::start_http_with(McpOptions::named("first")).await.unwrap();
    let second = MockMcp::start_http_with(McpOptions::named("second")).await.unwrap();
    let app = mcp_console().await;
    let stored = json!({
        "server_name": "remote",
        "url": first.url(),
        "description": "the first one",
        "auth_type": "bearer_token",
        "auth_value": TOKEN,
        "static_headers": {"X-Team": HEADER_SECRET},
    });
    api(&app, "/v1/mcp/server", stored).await;
    let b = Browser::sign_in(&app, "boss", UI_PASSWORD).await;

    // The form holds the settings, says the token is set, and shows no credential.
    let page = visit(&b, "/ui/mcp/remote", 200).await;
    assert!(page.contains("action=\"/ui/mcp/remote/edit\""), "{page}");
    assert!(page.contains(&format!("value=\"{}\"", first.url())));
    assert!(page.contains("value=\"the first one\"") && page.contains("authentication is set"));
    assert!(page.contains("name=\"clear_bearer_token\"") && page.contains("header X-Team"));
    assert!(!page.contains("redacted"), "{page}");

    // Refused edits: the error next to its field, nothing changed, no token echoed.
    let url = second.url();
    let refusals: [Refusal; 3] = [
        (&[("transport", "http"), ("url", "")], "url", "url"),
        (&[("transport", "http"), ("url", "ftp://files/mcp")], "url", "http://"),
        (
            &[
                ("transport", "http"),
                ("url", "http://127.0.0.1:9/mcp"),
                ("bearer_token", NEW_TOKEN),
                ("clear_bearer_token", "on"),
            ],
            "bearer_token",
            "not both",
        ),
    ];
    for (fields, field, says) in refusals {
        let (status, html, _) = b.post("/ui/mcp/remote/edit", fields).await;
        assert_eq!(status, 400, "{fields:?}: {html}");
        assert_no_secret("the refused edit", &html);
        let error = error_next_to(&html, field).unwrap_or_else(|| panic!("{field}: {html}"));
        assert!(error.contains(says), "{fields:?}: {error}");
    }
    let edit = [("transport", "http"), ("url", url.as_str())];
    let (status, _, _) = b.post_raw("/ui/mcp/remote/edit", &form(&edit)).await;
    assert_eq!(status, 403, "an edit without the session's CSRF token is refused");
    let (_, answer) = api_get(&app, "/v1/mcp/server/remote").await;
    assert_eq!(answer["url"], first.url(), "no refused edit took");
    assert_eq!(echo_through(&app, &first).await, Some(format!("Bearer {TOKEN}")));

    // Saved: the gateway calls the new URL with the kept token and headers, and hides the
    // tool the edit hid.
    let edit = [
        ("transport", "http"),
        ("url", url.as_str()),
        ("description", "the second one"),
        ("disallowed_tools", "add, fail"),
        ("bearer_token", ""),
    ];
    let (status, html, location) = b.post("/ui/mcp/remote/edit", &edit).await;
    assert_eq!(status, 303, "{html}");
    let back = location.unwrap();
    assert!(back.starts_with("/ui/mcp/remote?done="), "{back}");
    let page = visit(&b, &back, 200).await;
    assert!(page.contains("MCP server remote saved.") && page.contains("value=\"add, fail\""));
    let (_, answer) = api_get(&app, "/v1/mcp/server/remote").await;
    assert_eq!((&answer["url"], &answer["description"]), (&json!(url), &json!("the second one")));
    assert_eq!(answer["auth_type"], "bearer_token");
    let tools = mcp_tools(&app).await;
    assert!(tools.iter().any(|t| t == "remote-echo"), "{tools:?}");
    assert!(!tools.iter().any(|t| t == "remote-add" || t == "remote-fail"), "{tools:?}");
    assert_eq!(echo_through(&app, &second).await, Some(format!("Bearer {TOKEN}")));
    let call = &second.calls_of("tools/call")[0];
    assert_eq!(call.header("x-team"), Some(HEADER_SECRET), "the header is kept too");

    // Replaced, then cleared.
    let replace = [("transport", "http"), ("url", url.as_str()), ("bearer_token", NEW_TOKEN)];
    assert_eq!(b.post("/ui/mcp/remote/edit", &replace).await.0, 303);
    assert_eq!(echo_through(&app, &second).await, Some(format!("Bearer {NEW_TOKEN}")));
    visit(&b, "/ui/mcp/remote", 200).await;
    let clear = [("transport", "http"), ("url", url.as_str()), ("clear_bearer_token", "on")];
    assert_eq!(b.post("/ui/mcp/remote/edit", &clear).await.0, 303);
    assert_eq!(echo_through(&app, &second).await, None);
    let (_, answer) = api_get(&app, "/v1/mcp/server/remote").await;
    assert_eq!(answer["auth_type"], "none");
    let page = visit(&b, "/ui/mcp/remote", 200).await;
    assert!(page.contains("none is set") && !page.contains("name=\"clear_bearer_token\""));

    // config.yaml's servers have no form, and a posted one is refused with why.
    let page = visit(&b, "/ui/mcp/from_file", 200).await;
    assert!(!page.contains("/from_file/edit") && !page.contains("id=\"edit-mcp-server\""));
    let edit = [("transport", "stdio"), ("command", "sh")];
    let (status, html, _) = b.post("/ui/mcp/from_file/edit", &edit).await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("defined in config.yaml"), "{html}");
    assert_no_secret("the refused edit", &html);
    assert_eq!(b.post("/ui/mcp/no_such/edit", &edit).await.0, 404);
    let (_, answer) = api_get(&app, "/v1/mcp/server/from_file").await;
    assert_eq!(answer["args"], json!(["--mcp-stdio", "--name", "from_file"]));

    // Each save audited as the console's user, with no credential in the trail.
    let trail = app.state.store().audit_logs(Default::default()).await.unwrap();
    let updates: Vec<_> =
        trail.iter().filter(|r| r.object_type == "mcp_server" && r.action == "update").collect();
    assert_eq!(updates.len(), 3, "{updates:?}");
    assert!(updates.iter().all(|r| r.actor.starts_with("ui:") && r.object_id == "remote"));
    let text = format!("{updates:?}");
    for s in [TOKEN, NEW_TOKEN, HEADER_SECRET] {
        assert!(!text.contains(s), "a credential in the audit trail: {text}");
    }
    visit(&b, "/ui/audit", 200).await;
}
