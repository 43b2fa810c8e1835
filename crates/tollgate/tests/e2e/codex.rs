//! The real Codex CLI (`codex exec`) against tollgate, set up by `tollgate codex --write`, with
//! testkit upstreams behind it: a Responses deployment (passed through), a chat-only one
//! (Responses translated to Chat Completions and back), and the GitHub Copilot stand-in with
//! a model it serves on `/responses` only.
//!
//! In each, the upstream's first answer calls Codex's `exec_command` tool (or, for a model in
//! Codex's catalog, its free-form `apply_patch` tool) to write a file and the second is the
//! final text: Codex must run the command, send its output back, print the
//! text and exit 0, and the file must be there.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use tollgate_store::SpendRecord;
use tollgate_testkit::openai_mock::encrypted_reasoning;
use tollgate_testkit::{MockGitHub, MockOpenAi, ReplySpec, TestApp, ToolCall};

use crate::support::*;

/// The model Codex is told to use; tollgate routes it to the upstream under test.
const MODEL: &str = "e2e-codex";
/// How long one Codex run may take before the test fails.
const CODEX_TIMEOUT: Duration = Duration::from_secs(120);
const PROMPT: &str = "Create hello.txt containing 'hello from codex'";
/// The file the tool call writes, in Codex's working directory, and what it holds.
const FILE: &str = "hello.txt";
const FILE_CONTENT: &str = "hello from codex\n";
const CALL_ID: &str = "call_e2e_exec";
const FINAL_TEXT: &str = "Done: the file is written.";

/// What Codex needs besides the provider to stay offline and fail fast (see
/// tollgate-protocol's fixtures/codex/README.md); `tollgate codex --write` merges the
/// provider into it, keeping the retries set here in the provider's table.
const OFFLINE_CONFIG: &str = r#"# Written by the e2e test; `tollgate codex --write` adds the provider.
check_for_update_on_startup = false

[model_providers.tollgate]
request_max_retries = 0
stream_max_retries = 0

[features]
plugins = false
apps = false
remote_plugin = false

[analytics]
enabled = false

[feedback]
enabled = false

[otel]
exporter = "none"

[history]
persistence = "none"
"#;

/// A scratch `CODEX_HOME`, `HOME` and working directory for one Codex run. `CODEX_HOME` is
/// kept out of `/tmp`, where Codex refuses to create its helper links.
struct CodexScratch {
    codex_home: tempfile::TempDir,
    home: tempfile::TempDir,
    work: tempfile::TempDir,
}

impl CodexScratch {
    /// The directories, with `config.toml` written by `tollgate codex --write` for `model`
    /// at `app`.
    fn new(app: &TestApp, model: &str) -> Self {
        let scratch = Self {
            codex_home: tempfile::Builder::new()
                .prefix("codex-home-")
                .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
                .unwrap(),
            home: tempfile::Builder::new().prefix("tollgate-e2e-home-").tempdir().unwrap(),
            work: tempfile::Builder::new().prefix("tollgate-e2e-work-").tempdir().unwrap(),
        };
        let config = scratch.codex_home.path().join("config.toml");
        std::fs::write(&config, OFFLINE_CONFIG).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["codex", "--model", model, "--key", MASTER, "--base-url", &app.base_url()])
            .arg("--write")
            .env_clear()
            .env("CODEX_HOME", scratch.codex_home.path())
            .env("HOME", scratch.home.path())
            .env("TOLLGATE_DATA_DIR", scratch.home.path())
            .current_dir(scratch.home.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("export TOLLGATE_API_KEY={MASTER}\n")
        );
        let written = std::fs::read_to_string(&config).unwrap();
        assert!(written.contains("request_max_retries = 0"), "{written}");
        assert!(!written.contains(MASTER), "the key stays out of config.toml: {written}");
        scratch
    }

    fn work_dir(&self) -> PathBuf {
        self.work.path().canonicalize().unwrap()
    }
}

/// `codex exec PROMPT` in the scratch working directory, with nothing of this process's
/// environment but `PATH`, `LANG` and `TMPDIR`, and the key in `TOLLGATE_API_KEY` as
/// `tollgate codex` tells.
async fn codex(bin: PathBuf, scratch: &CodexScratch) -> Output {
    let mut cmd = Command::new(bin);
    cmd.args(["exec", "--strict-config", "--skip-git-repo-check", "-s", "workspace-write"])
        .arg(PROMPT);
    cmd.current_dir(scratch.work_dir());
    cmd.env_clear();
    for keep in ["PATH", "LANG", "TMPDIR"] {
        if let Some(v) = std::env::var_os(keep) {
            cmd.env(keep, v);
        }
    }
    cmd.env("HOME", scratch.home.path())
        .env("CODEX_HOME", scratch.codex_home.path())
        .env("TERM", "dumb")
        .env("TOLLGATE_API_KEY", MASTER);
    run(cmd, CODEX_TIMEOUT).await
}

/// The reasoning the upstream shows before its tool call.
const REASONING: &str = "The user wants a file; printf writes it.";

/// The upstream's first answer: reasoning, then `exec_command` writing [`FILE`], as Codex's
/// tool for a model outside its catalog takes it.
fn exec_call() -> ReplySpec {
    let args = json!({"cmd": format!("printf 'hello from codex\\n' > {FILE}")});
    ReplySpec::tool_calls(vec![ToolCall::new(CALL_ID, "exec_command", args.to_string())])
        .reasoning(REASONING)
}

/// Asserts that Codex sent the upstream's reasoning back as it got it: `store: false` keeps
/// no state upstream, so the encrypted reasoning must travel with the next turn.
fn assert_reasoning_returned(body: &Value) {
    let input = body["input"].as_array().unwrap();
    let reasoning = input
        .iter()
        .find(|i| i["type"] == "reasoning")
        .unwrap_or_else(|| panic!("no reasoning item in {input:?}"));
    assert_eq!(reasoning["encrypted_content"], encrypted_reasoning(REASONING), "{reasoning}");
}

/// Runs Codex on `app` and asserts the turn worked: exit 0, the file written, the final
/// text printed.
async fn run_turn(app: &TestApp, model: &str) -> Output {
    let bin = codex_bin();
    let scratch = CodexScratch::new(app, model);
    let out = codex(bin, &scratch).await;
    assert!(out.success(), "{out}");
    let path = scratch.work_dir().join(FILE);
    let content = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("Codex did not write {}: {e}\n{out}", path.display()));
    assert_eq!(content, FILE_CONTENT, "{out}");
    assert!(out.stdout.contains(FINAL_TEXT), "{out}");
    out
}

/// Spend records, oldest first, once `n` have been written; each a successful Responses
/// call for `served`.
async fn assert_spend(app: &TestApp, n: u64, requested: &str, served: &str) -> Vec<SpendRecord> {
    let written = app.wait_for_spend_written(n, Duration::from_secs(10)).await;
    assert!(written >= n, "only {written} of {n} spend records were written");
    let mut logs = app.store().spend_logs(Default::default()).await.unwrap();
    logs.sort_by_key(|l| l.started_at);
    assert_eq!(logs.len() as u64, n, "{logs:?}");
    for log in &logs {
        assert_eq!(log.api, "responses");
        assert_eq!(log.requested_model, requested);
        assert_eq!(log.served_model, served);
        assert_eq!(log.outcome, "success", "{log:?}");
        assert!(log.prompt_tokens > 0 && log.completion_tokens > 0, "{log:?}");
    }
    logs
}

/// Asserts a Responses request from Codex's second turn carries the call and its output.
fn assert_tool_turn(body: &Value) {
    let input = body["input"].as_array().unwrap_or_else(|| panic!("no input in {body}"));
    let call = input
        .iter()
        .find(|i| i["type"] == "function_call")
        .unwrap_or_else(|| panic!("no function_call in {input:?}"));
    assert_eq!(call["call_id"], CALL_ID);
    assert_eq!(call["name"], "exec_command");
    let output = input
        .iter()
        .find(|i| i["type"] == "function_call_output")
        .unwrap_or_else(|| panic!("no function_call_output in {input:?}"));
    assert_eq!(output["call_id"], CALL_ID);
    assert!(
        output["output"].as_str().unwrap_or_default().contains("exited with code 0"),
        "{output}"
    );
}

/// Names of the function tools a Responses request offered.
fn tool_names(body: &Value) -> Vec<&str> {
    body["tools"]
        .as_array()
        .map(|tools| tools.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default()
}

/// tollgate with [`MODEL`] on an OpenAI-compatible upstream, its `model_info` as given.
async fn openai_app(upstream_model: &str, model_info: &str) -> (MockOpenAi, TestApp) {
    let mock = MockOpenAi::start().await;
    mock.set_default(ReplySpec::text("unexpected extra request"));
    let yaml = format!(
        "model_list:\n  - model_name: {MODEL}\n    litellm_params:\n      model: openai/{upstream_model}\n      api_base: {}\n      api_key: sk-openai-upstream\n{model_info}",
        mock.base_url()
    );
    let app = TestApp::spawn_with_env(&yaml, &[("TOLLGATE_MASTER_KEY", MASTER)]).await.unwrap();
    (mock, app)
}

#[tokio::test]
#[ignore = "needs the Codex CLI; scripts/test runs it"]
async fn exec_command_round_trip_through_a_responses_deployment() {
    let (mock, app) =
        openai_app("gpt-e2e-responses", "    model_info:\n      mode: responses\n").await;
    mock.enqueue(exec_call());
    mock.enqueue(ReplySpec::text(FINAL_TEXT));
    let out = run_turn(&app, MODEL).await;

    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2, "a tool call and its result: {out}");
    for req in &reqs {
        assert_eq!(req.path, "/v1/responses");
        assert_eq!(req.body["model"], "gpt-e2e-responses");
        assert_eq!(req.body["stream"], true, "Codex streams");
        assert_eq!(req.header("authorization"), Some("Bearer sk-openai-upstream"));
        // Passed through: Codex's own fields arrive as it sent them.
        assert_eq!(req.body["store"], false);
        assert!(req.body["prompt_cache_key"].is_string(), "{}", req.body);
        assert!(req.body["client_metadata"].is_object(), "{}", req.body);
    }
    assert!(tool_names(&reqs[0].body).contains(&"exec_command"), "{}", reqs[0].body);
    assert!(reqs[0].body.to_string().contains(PROMPT), "the prompt went upstream");
    assert_tool_turn(&reqs[1].body);
    assert_reasoning_returned(&reqs[1].body);

    assert_spend(&app, 2, MODEL, "openai/gpt-e2e-responses").await;
}

#[tokio::test]
#[ignore = "needs the Codex CLI; scripts/test runs it"]
async fn exec_command_round_trip_through_a_chat_deployment() {
    let (mock, app) = openai_app("gpt-e2e-chat", "").await;
    mock.enqueue(exec_call());
    mock.enqueue(ReplySpec::text(FINAL_TEXT));
    let out = run_turn(&app, MODEL).await;

    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2, "a tool call and its result: {out}");
    for req in &reqs {
        assert_eq!(req.path, "/v1/chat/completions", "translated: {out}");
        assert_eq!(req.body["model"], "gpt-e2e-chat");
        assert_eq!(req.body["stream"], true);
        assert_eq!(req.header("authorization"), Some("Bearer sk-openai-upstream"));
        let tools: Vec<&str> = req.body["tools"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["function"]["name"].as_str())
            .collect();
        assert!(tools.contains(&"exec_command"), "{tools:?}");
    }
    // The second turn: the call and its output in Chat Completions' shape.
    let messages = reqs[1].body["messages"].as_array().unwrap();
    let call = messages
        .iter()
        .find_map(|m| m["tool_calls"].as_array().and_then(|c| c.first()))
        .unwrap_or_else(|| panic!("no assistant tool call in {messages:?}"));
    assert_eq!(call["id"], CALL_ID);
    assert_eq!(call["function"]["name"], "exec_command");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert!(args["cmd"].as_str().unwrap().contains(FILE), "{args}");
    let result = messages
        .iter()
        .find(|m| m["role"] == "tool")
        .unwrap_or_else(|| panic!("no tool result in {messages:?}"));
    assert_eq!(result["tool_call_id"], CALL_ID);
    assert!(result["content"].to_string().contains("exited with code 0"), "{result}");

    assert_spend(&app, 2, MODEL, "openai/gpt-e2e-chat").await;
}

#[tokio::test]
#[ignore = "needs the Codex CLI; scripts/test runs it"]
async fn apply_patch_round_trip_through_a_chat_deployment() {
    // A model in Codex's own catalog gets the free-form `apply_patch` tool, which Chat
    // Completions can only carry as a function of one string.
    let mock = MockOpenAi::start().await;
    mock.set_default(ReplySpec::text("unexpected extra request"));
    let yaml = format!(
        "model_list:\n  - model_name: gpt-5.5\n    litellm_params:\n      model: openai/gpt-e2e-chat\n      api_base: {}\n",
        mock.base_url()
    );
    let app = TestApp::spawn_with_env(&yaml, &[("TOLLGATE_MASTER_KEY", MASTER)]).await.unwrap();
    let patch =
        format!("*** Begin Patch\n*** Add File: {FILE}\n+hello from codex\n*** End Patch\n");
    let args = json!({"input": patch}).to_string();
    mock.enqueue(ReplySpec::tool_calls(vec![ToolCall::new(CALL_ID, "apply_patch", args)]));
    mock.enqueue(ReplySpec::text(FINAL_TEXT));
    let out = run_turn(&app, "gpt-5.5").await;

    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2, "a tool call and its result: {out}");
    let offered = reqs[0].body["tools"].as_array().unwrap();
    let apply_patch = offered
        .iter()
        .find(|t| t["function"]["name"] == "apply_patch")
        .unwrap_or_else(|| panic!("apply_patch was not offered: {offered:?}"));
    assert_eq!(apply_patch["function"]["parameters"]["required"], json!(["input"]));
    let messages = reqs[1].body["messages"].as_array().unwrap();
    let call = messages
        .iter()
        .find_map(|m| m["tool_calls"].as_array().and_then(|c| c.first()))
        .unwrap_or_else(|| panic!("no assistant tool call in {messages:?}"));
    assert_eq!(call["id"], CALL_ID);
    let sent: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(sent, json!({"input": patch}), "Codex's custom_tool_call, as the function call");
    let result = messages
        .iter()
        .find(|m| m["role"] == "tool")
        .unwrap_or_else(|| panic!("no tool result in {messages:?}"));
    assert_eq!(result["tool_call_id"], CALL_ID);
    assert!(result["content"].to_string().contains(&format!("A {FILE}")), "{result}");

    assert_spend(&app, 2, "gpt-5.5", "openai/gpt-e2e-chat").await;
}

#[tokio::test]
#[ignore = "needs the Codex CLI; scripts/test runs it"]
async fn exec_command_round_trip_through_a_responses_only_copilot_model() {
    let gh = MockGitHub::start().await;
    // No config at all: every model name goes to Copilot.
    let app = copilot_app(&gh, "").await;
    gh.add_account("ghu_e2e_codex", true);
    app.link_copilot("default", "ghu_e2e_codex").await.unwrap();
    gh.set_default(ReplySpec::text("unexpected extra request"));
    gh.enqueue(exec_call());
    gh.enqueue(ReplySpec::text(FINAL_TEXT));
    let out = run_turn(&app, "gpt-5.4").await;

    let calls: Vec<_> = gh.requests().into_iter().filter(|r| r.path != "/models").collect();
    let seen: Vec<(&str, &str)> = calls
        .iter()
        .map(|r| (r.path.as_str(), r.body["model"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(seen, [("/responses", "gpt-5.4"), ("/responses", "gpt-5.4")], "{out}");
    for call in &calls {
        assert!(call.header("editor-version").is_some(), "Copilot's headers");
        assert_eq!(call.header("authorization").map(|a| a.starts_with("Bearer ")), Some(true));
    }
    assert_eq!(calls[0].header("x-initiator"), Some("user"));
    assert_eq!(calls[1].header("x-initiator"), Some("agent"), "a tool turn is the agent's");
    assert_tool_turn(&calls[1].body);
    assert_reasoning_returned(&calls[1].body);

    assert_spend(&app, 2, "gpt-5.4", "github_copilot/gpt-5.4").await;
}
