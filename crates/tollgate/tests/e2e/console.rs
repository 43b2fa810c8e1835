//! The admin console at `/ui` in a real browser: headless Chromium driven by playwright-core
//! (`tests/browser/console.mjs`) through sign-in, keys, models, API traffic, logs, the
//! dashboard, the Copilot page (when there is one), an MCP server added, opened and edited, and
//! sign-out, against testkit upstreams.
//!
//! `TOLLGATE_E2E_SCREENSHOTS=docs/screenshots` keeps the screenshots (the README shows them).

use std::path::PathBuf;
use std::time::Duration;

use tollgate_testkit::{McpOptions, MockGitHub, MockMcp, MockOpenAi, TestApp};

use crate::support::*;

const UI_PASSWORD: &str = "e2e console password";
const UPSTREAM_KEY: &str = "sk-e2e-upstream-typed-in-the-console";
const REQUESTS: usize = 3;
const MCP_TOKEN: &str = "e2e-mcp-bearer-token-typed-in-the-console";
/// The screenshots the walk-through saves on every run (the Copilot page's only when it exists).
const SHOTS: &[&str] = &[
    "01-sign-in.png",
    "02-dashboard-before.png",
    "03-keys.png",
    "04-key-created.png",
    "05-keys-after.png",
    "06-key.png",
    "07-model-tested.png",
    "08-models.png",
    "09-logs.png",
    "10-log.png",
    "11-dashboard.png",
    "13-audit.png",
    "14-settings.png",
    "15-signed-out.png",
    "16-mcp.png",
    "17-mcp-server.png",
];

#[tokio::test]
#[ignore = "needs Chromium and playwright-core; scripts/test runs them"]
async fn the_console_walks_through_keys_models_logs_and_the_dashboard_in_a_browser() {
    let (node, chromium, node_modules) = (node_bin(), chromium_bin(), node_modules());
    let mock = MockOpenAi::start().await;
    let gh = MockGitHub::start().await;
    let mcp = MockMcp::start_http_with(McpOptions {
        bearer_token: Some(MCP_TOKEN.to_owned()),
        ..McpOptions::named("e2e_docs").only(&["echo", "add"])
    })
    .await
    .unwrap();
    let mcp_url = mcp.url();
    let (github, github_api) = (gh.github_url(), gh.api_url());
    let app = TestApp::spawn_with_env(
        "",
        &[
            ("TOLLGATE_MASTER_KEY", MASTER),
            ("UI_PASSWORD", UI_PASSWORD),
            ("TOLLGATE_GITHUB_URL", github.as_str()),
            ("TOLLGATE_GITHUB_API_URL", github_api.as_str()),
        ],
    )
    .await
    .unwrap();
    // A linked Copilot account for the Copilot page to list.
    let oauth = "ghu_e2e_console_account";
    gh.add_account(oauth, true);
    app.link_copilot("default", oauth).await.unwrap();

    // Screenshots go to a temporary directory, or to $TOLLGATE_E2E_SCREENSHOTS to keep.
    let tmp = tempfile::Builder::new().prefix("tollgate-e2e-console-").tempdir().unwrap();
    let shots_dir = std::env::var_os("TOLLGATE_E2E_SCREENSHOTS")
        .filter(|d| !d.is_empty())
        .map_or_else(|| tmp.path().to_path_buf(), PathBuf::from);
    let shots_dir = if shots_dir.is_absolute() { shots_dir } else { repo_root().join(shots_dir) };
    std::fs::create_dir_all(&shots_dir).unwrap();
    let script = repo_root().join("tests/browser/console.mjs");
    let (base, upstream, requests) = (app.base_url(), mock.base_url(), REQUESTS.to_string());
    let page = spawn_lines(
        &node,
        &[
            script.to_str().unwrap(),
            &base,
            "--username",
            "admin",
            "--password",
            UI_PASSWORD,
            "--upstream",
            &upstream,
            "--upstream-key",
            UPSTREAM_KEY,
            "--requests",
            &requests,
            "--screenshots",
            shots_dir.to_str().unwrap(),
            // The Copilot page may name the account by its owner or by its GitHub login.
            "--copilot-account",
            "default",
            "--copilot-account",
            "mock-user",
            "--mcp-url",
            &mcp_url,
            "--mcp-token",
            MCP_TOKEN,
        ],
        &[("TOLLGATE_CHROMIUM", &chromium), ("TOLLGATE_NODE_MODULES", &node_modules)],
        Duration::from_secs(120),
    );
    let out = page.finish().await;
    assert!(out.success(), "{out}");
    println!("the walk-through took {:.1}s", out.took.as_secs_f64());
    let said = |tag: &str| -> Vec<String> {
        let prefix = format!("{tag} ");
        out.stdout.lines().filter_map(|l| l.strip_prefix(&prefix).map(str::to_owned)).collect()
    };
    let one = |tag: &str| -> String {
        let all = said(tag);
        assert_eq!(all.len(), 1, "one {tag} line\n{out}");
        all[0].clone()
    };

    // The key the page showed once is the one stored, with the alias and the edited limit.
    let (key, hash) = (one("KEY"), one("HASH"));
    let stored = app.store().get_key(&hash).await.unwrap().expect("the key is stored");
    assert_eq!(stored.key_alias.as_deref(), Some("e2e-console-key"));
    assert_eq!(stored.limits.rpm_limit, Some(120), "the edited rpm limit is saved");
    assert_eq!(
        tollgate_proxy::access::keys::hash(&key),
        hash,
        "the shown key hashes to the stored one"
    );

    // The model went to the mock with the key typed into the form: the connection test and
    // then each request.
    let model = one("MODEL");
    let models = app.store().list_models().await.unwrap();
    assert!(models.iter().any(|m| m.model_name == model), "{models:?}");
    assert_eq!(said("API"), vec!["200"; REQUESTS], "{out}");
    let upstream_requests = mock.requests();
    assert_eq!(upstream_requests.len(), REQUESTS + 1, "a test connection, then the requests");
    for r in &upstream_requests {
        assert_eq!(r.header("authorization"), Some(format!("Bearer {UPSTREAM_KEY}").as_str()));
    }

    // The log the page opened is one of the key's requests; the dashboard counted them all.
    let request_id = one("LOG");
    let logs = app
        .store()
        .spend_logs(tollgate_store::SpendFilter { limit: 100, ..Default::default() })
        .await
        .unwrap();
    let opened = logs.iter().find(|l| l.request_id == request_id).expect("the opened log");
    assert_eq!(opened.token_hash.as_deref(), Some(hash.as_str()));
    assert_eq!(opened.requested_model, model);
    let totals = one("TOTALS");
    let (before, after) = totals.split_once(' ').unwrap();
    let (before, after): (usize, usize) = (before.parse().unwrap(), after.parse().unwrap());
    assert_eq!(after, before + REQUESTS, "{out}");

    let copilot = one("COPILOT");
    if copilot == "skipped" {
        println!("note: /ui/copilot answered 404, so the Copilot step was skipped");
    } else {
        assert!(copilot.starts_with("listed "), "{out}");
    }
    // The MCP server added on the page is stored and served: its two tools were listed from
    // the mock with the token typed into the form.
    assert_eq!(one("MCP"), "e2e_docs 2", "{out}");
    let stored = app.store().get_mcp_server("e2e_docs").await.unwrap().unwrap();
    assert_eq!(stored.entry["description"], "edited in the browser", "{out}");
    assert_eq!(stored.entry["disallowed_tools"], serde_json::json!(["add"]));
    // Listed again after the edit: with the token the edit kept.
    let listed = mcp.calls_of("tools/list");
    assert!(!listed.is_empty(), "{out}");
    let bearer = format!("Bearer {MCP_TOKEN}");
    assert!(listed.iter().all(|c| c.header("authorization") == Some(bearer.as_str())));
    assert!(one("SIGNED_OUT").starts_with("/ui/login"), "{out}");

    // Every page visited was saved, as a PNG.
    let mut expected: Vec<&str> = SHOTS.to_vec();
    if copilot != "skipped" {
        expected.push("12-copilot.png");
    }
    let mut saved = said("SHOT");
    saved.sort();
    expected.sort_unstable();
    assert_eq!(saved, expected, "{out}");
    for shot in &saved {
        let bytes = std::fs::read(shots_dir.join(shot)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{shot} is a PNG");
    }
}
