//! The real Claude Code CLI (`claude -p`) against tollgate, with testkit upstreams behind it:
//! an OpenAI-format one (translated), an Anthropic-format one (passed through), and the
//! GitHub Copilot stand-in (native `/v1/messages` for Claude models, `/chat/completions` for
//! GPT models, `/responses` for the models Copilot serves only there, and a quota failure
//! that falls back).

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tollgate_store::SpendRecord;
use tollgate_testkit::{MockAnthropic, MockGitHub, MockOpenAi, ReplySpec, TestApp, ToolCall};

use crate::support::*;

/// The model Claude Code is told to use; tollgate routes it to the upstream under test.
const MODEL: &str = "e2e-model";
/// What the Write tool call asks Claude Code to put in the file.
const FILE_CONTENT: &str = "hello from tollgate";

/// Anything other than [`MODEL`] (a small/fast model Claude Code might use for side
/// requests) goes to a separate upstream, so that such requests never take the replies the
/// test queued for the main conversation.
fn catch_all(aux: &MockOpenAi) -> String {
    format!(
        "  - model_name: \"*\"\n    litellm_params:\n      model: openai/side-model\n      api_base: {}\n",
        aux.base_url()
    )
}

fn aux_mock_default() -> ReplySpec {
    ReplySpec::text("side answer")
}

/// tollgate with [`MODEL`] on an OpenAI-format upstream.
async fn openai_setup() -> (MockOpenAi, MockOpenAi, TestApp) {
    let (main, aux) = (MockOpenAi::start().await, MockOpenAi::start().await);
    aux.set_default(aux_mock_default());
    main.set_default(ReplySpec::text("unexpected extra request"));
    let yaml = format!(
        "model_list:\n  - model_name: {MODEL}\n    litellm_params:\n      model: openai/gpt-e2e\n      api_base: {}\n      api_key: sk-openai-upstream\n{}",
        main.base_url(),
        catch_all(&aux)
    );
    let app = TestApp::spawn_with_env(&yaml, &[("TOLLGATE_MASTER_KEY", MASTER)]).await.unwrap();
    (main, aux, app)
}

/// tollgate with [`MODEL`] on an Anthropic-format upstream.
async fn anthropic_setup() -> (MockAnthropic, MockOpenAi, TestApp) {
    let (main, aux) = (MockAnthropic::start().await, MockOpenAi::start().await);
    aux.set_default(aux_mock_default());
    main.set_default(ReplySpec::text("unexpected extra request"));
    let yaml = format!(
        "model_list:\n  - model_name: {MODEL}\n    litellm_params:\n      model: anthropic/claude-e2e\n      api_base: {}\n      api_key: sk-ant-upstream\n{}",
        main.base_url(),
        catch_all(&aux)
    );
    let app = TestApp::spawn_with_env(&yaml, &[("TOLLGATE_MASTER_KEY", MASTER)]).await.unwrap();
    (main, aux, app)
}

/// The upstream's first answer: call Claude Code's Write tool on `path`.
fn write_call(path: &Path) -> ReplySpec {
    let args = json!({"file_path": path.to_str().unwrap(), "content": FILE_CONTENT});
    ReplySpec::tool_calls(vec![ToolCall::new("toolu_e2e_write", "Write", args.to_string())])
}

/// Spend records, oldest first, once `n` have been written.
async fn spend(app: &TestApp, n: u64) -> Vec<SpendRecord> {
    let written = app.wait_for_spend_written(n, Duration::from_secs(10)).await;
    assert!(written >= n, "only {written} of {n} spend records were written");
    let mut logs = app.store().spend_logs(Default::default()).await.unwrap();
    logs.sort_by_key(|l| l.started_at);
    logs
}

/// Asserts that the written file holds [`FILE_CONTENT`].
fn assert_file_written(path: &Path, out: &Output) {
    let content = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("Claude Code did not write {}: {e}\n{out}", path.display()));
    assert_eq!(content.trim_end(), FILE_CONTENT, "{out}");
}

/// Names of the tools a request offered, in either protocol.
fn tool_names(body: &Value) -> Vec<String> {
    body["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t["function"]["name"].as_str().or_else(|| t["name"].as_str()))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
#[ignore = "needs the Claude Code CLI and Chromium; scripts/test runs them"]
async fn plain_answer_through_an_openai_upstream() {
    let (main, _aux, app) = openai_setup().await;
    main.enqueue(ReplySpec::text("The answer is forty-two, says the OpenAI mock."));
    let scratch = Scratch::new();
    let out =
        claude(&app, MODEL, "What is the answer?", &scratch, Credential::AuthToken, &[]).await;
    assert!(out.success(), "{out}");
    assert!(out.stdout.contains("The answer is forty-two, says the OpenAI mock."), "{out}");

    let reqs = main.requests();
    assert_eq!(reqs.len(), 1, "one turn, one upstream request: {out}");
    let req = &reqs[0];
    assert_eq!(req.path, "/v1/chat/completions");
    assert_eq!(req.body["model"], "gpt-e2e");
    assert_eq!(req.body["stream"], true, "Claude Code streams");
    assert_eq!(req.header("authorization"), Some("Bearer sk-openai-upstream"));
    assert_eq!(req.body["messages"][0]["role"], "system", "Claude Code's system prompt");
    assert!(req.body.to_string().contains("What is the answer?"), "the prompt went upstream");
    assert!(
        tool_names(&req.body).iter().any(|t| t == "Write"),
        "Claude Code's tools went upstream"
    );

    let logs = spend(&app, 1).await;
    assert_eq!(logs[0].api, "messages");
    assert_eq!(logs[0].requested_model, MODEL);
    assert_eq!(logs[0].served_model, "openai/gpt-e2e");
    assert_eq!(logs[0].outcome, "success");
}

#[tokio::test]
#[ignore = "needs the Claude Code CLI and Chromium; scripts/test runs them"]
async fn tool_use_round_trip_through_an_openai_upstream() {
    let (main, _aux, app) = openai_setup().await;
    let scratch = Scratch::new();
    let target = scratch.work_dir().join("greeting.txt");
    main.enqueue(write_call(&target));
    main.enqueue(ReplySpec::text("I wrote greeting.txt for you."));
    let out = claude(
        &app,
        MODEL,
        "Write 'hello from tollgate' to greeting.txt",
        &scratch,
        Credential::AuthToken,
        &["--allowedTools", "Write"],
    )
    .await;
    assert!(out.success(), "{out}");
    assert_file_written(&target, &out);
    assert!(out.stdout.contains("I wrote greeting.txt for you."), "{out}");

    let reqs = main.requests();
    assert_eq!(reqs.len(), 2, "a tool call and its result: {out}");
    // The second request carries the call and its result, translated to OpenAI's shape.
    let messages = reqs[1].body["messages"].as_array().unwrap();
    let call = messages
        .iter()
        .find_map(|m| m["tool_calls"].as_array().and_then(|c| c.first()))
        .unwrap_or_else(|| panic!("no assistant tool call in {messages:?}"));
    assert_eq!(call["id"], "toolu_e2e_write");
    assert_eq!(call["function"]["name"], "Write");
    let result = messages
        .iter()
        .find(|m| m["role"] == "tool")
        .unwrap_or_else(|| panic!("no tool result in {messages:?}"));
    assert_eq!(result["tool_call_id"], "toolu_e2e_write");
    assert!(result["content"].to_string().contains("greeting.txt"), "{result}");

    let logs = spend(&app, 2).await;
    assert!(logs.iter().all(|l| l.served_model == "openai/gpt-e2e" && l.outcome == "success"));
}

#[tokio::test]
#[ignore = "needs the Claude Code CLI and Chromium; scripts/test runs them"]
async fn tool_use_round_trip_through_an_anthropic_upstream() {
    let (main, _aux, app) = anthropic_setup().await;
    let scratch = Scratch::new();
    let target = scratch.work_dir().join("greeting.txt");
    main.enqueue(write_call(&target));
    main.enqueue(ReplySpec::text("Done: greeting.txt is written."));
    let out = claude(
        &app,
        MODEL,
        "Write 'hello from tollgate' to greeting.txt",
        &scratch,
        Credential::ApiKey,
        &["--allowedTools", "Write"],
    )
    .await;
    assert!(out.success(), "{out}");
    assert_file_written(&target, &out);
    assert!(out.stdout.contains("Done: greeting.txt is written."), "{out}");

    let reqs = main.requests();
    assert_eq!(reqs.len(), 2, "a tool call and its result: {out}");
    for req in &reqs {
        assert_eq!(req.path, "/v1/messages");
        assert_eq!(req.body["model"], "claude-e2e");
        assert_eq!(req.header("x-api-key"), Some("sk-ant-upstream"));
        assert!(req.header("anthropic-version").is_some(), "forwarded as Claude Code sent it");
        assert_eq!(req.header("authorization"), None, "the client's credential stays in tollgate");
    }
    assert!(tool_names(&reqs[0].body).iter().any(|t| t == "Write"));
    // Pass-through: the tool result arrives in Anthropic's own shape.
    let messages = reqs[1].body["messages"].as_array().unwrap();
    let blocks: Vec<&Value> =
        messages.iter().filter_map(|m| m["content"].as_array()).flatten().collect();
    let tool_use = blocks.iter().find(|b| b["type"] == "tool_use").expect("the tool_use block");
    assert_eq!(tool_use["id"], "toolu_e2e_write");
    assert_eq!(tool_use["input"]["content"], FILE_CONTENT);
    let result = blocks.iter().find(|b| b["type"] == "tool_result").expect("the tool_result block");
    assert_eq!(result["tool_use_id"], "toolu_e2e_write");
    assert!(result["content"].to_string().contains("greeting.txt"), "{result}");
}

/// The paths and models of the model calls the Copilot stand-in answered.
fn copilot_calls(gh: &MockGitHub) -> Vec<(String, String)> {
    gh.requests()
        .into_iter()
        .filter(|r| r.path != "/models")
        .map(|r| (r.path.clone(), r.body["model"].as_str().unwrap_or_default().to_owned()))
        .collect()
}

#[tokio::test]
#[ignore = "needs the Claude Code CLI and Chromium; scripts/test runs them"]
async fn copilot_serves_a_claude_model_natively_and_a_gpt_model_translated() {
    let gh = MockGitHub::start().await;
    // No config at all: every model name goes to Copilot.
    let app = copilot_app(&gh, "").await;
    gh.add_account("ghu_e2e_default", true);
    app.link_copilot("default", "ghu_e2e_default").await.unwrap();
    gh.set_messages_text("Native Claude answer from the Copilot stand-in.");
    gh.set_default(ReplySpec::text("GPT answer from the Copilot stand-in."));

    let scratch = Scratch::new();
    let out =
        claude(&app, "claude-sonnet-4.5", "Say hi", &scratch, Credential::AuthToken, &[]).await;
    assert!(out.success(), "{out}");
    assert!(out.stdout.contains("Native Claude answer from the Copilot stand-in."), "{out}");
    let calls = copilot_calls(&gh);
    assert_eq!(calls, [("/v1/messages".to_owned(), "claude-sonnet-4.5".to_owned())], "{out}");

    let scratch = Scratch::new();
    let out = claude(&app, "gpt-4o", "Say hi", &scratch, Credential::AuthToken, &[]).await;
    assert!(out.success(), "{out}");
    assert!(out.stdout.contains("GPT answer from the Copilot stand-in."), "{out}");
    let calls = copilot_calls(&gh);
    assert_eq!(calls[1..], [("/chat/completions".to_owned(), "gpt-4o".to_owned())], "{out}");
    let gpt = gh.requests().into_iter().rfind(|r| r.path == "/chat/completions").unwrap();
    assert!(gpt.header("editor-version").is_some());
    // Claude Code appends a system reminder after the prompt: it is still the user's turn.
    assert_eq!(gpt.header("x-initiator"), Some("user"));

    let logs = spend(&app, 2).await;
    let served: Vec<&str> = logs.iter().map(|l| l.served_model.as_str()).collect();
    assert_eq!(served, ["github_copilot/claude-sonnet-4.5", "github_copilot/gpt-4o"]);
}

/// The request bodies of the Copilot stand-in's model calls, oldest first.
fn copilot_bodies(gh: &MockGitHub) -> Vec<Value> {
    gh.requests().into_iter().filter(|r| r.path != "/models").map(|r| r.body).collect()
}

/// The input items of a Responses request with this `type`.
fn items_of<'a>(body: &'a Value, kind: &str) -> Vec<&'a Value> {
    body["input"].as_array().into_iter().flatten().filter(|i| i["type"] == kind).collect()
}

#[tokio::test]
#[ignore = "needs the Claude Code CLI and Chromium; scripts/test runs them"]
async fn tool_use_round_trip_on_a_copilot_model_served_only_on_responses() {
    let gh = MockGitHub::start().await;
    let app = copilot_app(&gh, "").await;
    gh.add_account("ghu_e2e_codex", true);
    app.link_copilot("default", "ghu_e2e_codex").await.unwrap();
    gh.set_default(ReplySpec::text("unexpected extra request"));
    let scratch = Scratch::new();
    let target = scratch.work_dir().join("greeting.txt");
    // gpt-5.4 lists only `/responses`: the stand-in answers it nowhere else, so the call to
    // Write comes back as a `function_call` item.
    gh.enqueue(write_call(&target));
    gh.enqueue(ReplySpec::text("gpt-5.4 wrote greeting.txt through the Responses API."));

    let out = claude(
        &app,
        "gpt-5.4",
        "Write 'hello from tollgate' to greeting.txt",
        &scratch,
        Credential::AuthToken,
        &["--allowedTools", "Write"],
    )
    .await;
    assert!(out.success(), "{out}");
    assert_file_written(&target, &out);
    assert!(out.stdout.contains("gpt-5.4 wrote greeting.txt through the Responses API."), "{out}");

    let calls = copilot_calls(&gh);
    let expected = [("/responses", "gpt-5.4"), ("/responses", "gpt-5.4")]
        .map(|(p, m)| (p.to_owned(), m.to_owned()));
    assert_eq!(calls, expected, "a tool call and its result, never /chat/completions: {out}");
    let bodies = copilot_bodies(&gh);
    let first = &bodies[0];
    assert_eq!(first["stream"], true, "Claude Code streams");
    assert!(first["instructions"].as_str().is_some_and(|s| !s.is_empty()), "the system prompt");
    assert!(first["input"].to_string().contains("greeting.txt"), "the prompt went upstream");
    let tools = first["tools"].as_array().expect("Claude Code's tools");
    let write = tools.iter().find(|t| t["name"] == "Write").expect("the Write tool");
    assert_eq!(write["type"], "function", "a Responses function tool: {write}");
    assert!(write["parameters"]["properties"]["file_path"].is_object(), "{write}");

    // The second request carries the call and its result in the Responses API's items.
    let second = &bodies[1];
    let call = items_of(second, "function_call");
    assert_eq!(call.len(), 1, "{second}");
    assert_eq!(call[0]["call_id"], "toolu_e2e_write");
    assert_eq!(call[0]["name"], "Write");
    let args: Value = serde_json::from_str(call[0]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args["content"], FILE_CONTENT);
    let result = items_of(second, "function_call_output");
    assert_eq!(result.len(), 1, "{second}");
    assert_eq!(result[0]["call_id"], "toolu_e2e_write");
    assert!(result[0]["output"].to_string().contains("greeting.txt"), "{}", result[0]);

    let reqs: Vec<_> = gh.requests().into_iter().filter(|r| r.path == "/responses").collect();
    assert_eq!(reqs[0].header("x-initiator"), Some("user"));
    assert_eq!(reqs[1].header("x-initiator"), Some("agent"), "a tool result is the agent's turn");

    let logs = spend(&app, 2).await;
    for log in &logs {
        assert_eq!(log.api, "messages");
        assert_eq!(log.requested_model, "gpt-5.4");
        assert_eq!(log.served_model, "github_copilot/gpt-5.4");
        assert_eq!(log.outcome, "success");
        assert!(log.completion_tokens > 0, "usage came back through the translation: {log:?}");
    }
}

#[tokio::test]
#[ignore = "needs the Claude Code CLI and Chromium; scripts/test runs them"]
async fn a_session_goes_on_when_the_copilot_primary_runs_out_of_quota() {
    let gh = MockGitHub::start().await;
    let yaml = "model_list:
  - model_name: claude-opus-4.5
    litellm_params:
      model: github_copilot/claude-opus-4.5
    fallbacks: [gpt-4o]
  - model_name: gpt-4o
    litellm_params:
      model: github_copilot/gpt-4o
";
    let app = copilot_app(&gh, yaml).await;
    gh.add_account("ghu_e2e_team", true);
    app.link_copilot("default", "ghu_e2e_team").await.unwrap();
    gh.set_messages_text("the primary answered, which it should not have");
    let scratch = Scratch::new();
    let target = scratch.work_dir().join("greeting.txt");
    // Turn 1: Opus is out of quota, GPT-4o asks for the Write tool. Turn 2 (the tool
    // result): Opus is cooling down, GPT-4o finishes.
    gh.enqueue_error(
        402,
        json!({"error": {"message": "quota exceeded", "code": "quota_exceeded"}}),
    );
    gh.enqueue(write_call(&target));
    gh.enqueue(ReplySpec::text("The fallback model finished the job."));

    let out = claude(
        &app,
        "claude-opus-4.5",
        "Write 'hello from tollgate' to greeting.txt",
        &scratch,
        Credential::AuthToken,
        &["--allowedTools", "Write"],
    )
    .await;
    assert!(out.success(), "{out}");
    assert_file_written(&target, &out);
    assert!(out.stdout.contains("The fallback model finished the job."), "{out}");
    let calls = copilot_calls(&gh);
    let expected = [
        ("/v1/messages", "claude-opus-4.5"),
        ("/chat/completions", "gpt-4o"),
        ("/chat/completions", "gpt-4o"),
    ]
    .map(|(p, m)| (p.to_owned(), m.to_owned()));
    assert_eq!(calls, expected, "{out}");

    let logs = spend(&app, 2).await;
    assert_eq!(logs.len(), 2);
    for log in &logs {
        assert_eq!(log.requested_model, "claude-opus-4.5");
        assert_eq!(log.served_model, "github_copilot/gpt-4o", "the spend log names the server");
        assert_eq!(log.outcome, "success");
    }
    let outcomes: Vec<&str> = logs[0]
        .attempts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(outcomes, ["quota_exceeded", "answered"], "{:?}", logs[0].attempts);
}
