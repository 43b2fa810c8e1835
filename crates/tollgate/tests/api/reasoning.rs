//! Reasoning that Codex and the OpenAI SDK send back on later turns: `reasoning` input items
//! with the upstream's `encrypted_content`. A Responses upstream gets them as they were sent;
//! a translation to chat or Anthropic drops them and says so in a debug log line.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tollgate_testkit::openai_mock::encrypted_reasoning;
use tollgate_testkit::{MockAnthropic, MockOpenAi, ReplySpec, TestApp};

use crate::helpers::*;

/// What the first turn's model thought, as the mock's reasoning summary.
const THOUGHT: &str = "the user wants a greeting";

/// A first turn that asks for encrypted reasoning back, as Codex does (`store: false`).
fn first_turn(model: &str) -> Value {
    json!({"model": model, "input": "hi", "store": false,
           "include": ["reasoning.encrypted_content"], "reasoning": {"effort": "medium"}})
}

/// The second turn: the first turn's input and output items, then a new user message.
fn second_turn(model: &str, output: &[Value]) -> Value {
    let mut input = vec![json!({"role": "user", "content": "hi"})];
    input.extend(output.iter().cloned());
    input.push(json!({"role": "user", "content": "and again"}));
    json!({"model": model, "input": input, "store": false,
           "include": ["reasoning.encrypted_content"]})
}

/// A reasoning item such as a client sends back, with encrypted content.
fn reasoning_item() -> Value {
    json!({"type": "reasoning", "id": "rs_earlier_1",
           "summary": [{"type": "summary_text", "text": THOUGHT}],
           "encrypted_content": encrypted_reasoning(THOUGHT)})
}

/// Runs one turn and its follow-up on `model`, whose upstream answers through `enqueue`;
/// returns the second turn as the client sent it.
async fn two_turns(app: &TestApp, model: &str, enqueue: impl Fn(ReplySpec)) -> Value {
    enqueue(ReplySpec::text("hello").reasoning(THOUGHT));
    let resp = post(app, "/v1/responses", first_turn(model)).await;
    assert_eq!(resp.status(), 200);
    let first: Value = resp.json().await.unwrap();
    let output = first["output"].as_array().unwrap().clone();
    let reasoning = output.iter().find(|i| i["type"] == "reasoning").expect("a reasoning item");
    assert_eq!(reasoning["encrypted_content"], encrypted_reasoning(THOUGHT), "{first}");

    enqueue(ReplySpec::text("hello again"));
    let second = second_turn(model, &output);
    let resp = post(app, "/v1/responses", second.clone()).await;
    assert_eq!(resp.status(), 200);
    second
}

#[tokio::test]
async fn encrypted_reasoning_reaches_a_responses_upstream_unchanged() {
    let mock = MockOpenAi::start().await;
    let yaml = format!(
        "model_list:\n  - model_name: responses-model\n    litellm_params:\n      model: openai/gpt-5.4\n      api_base: {}\n      api_key: sk-upstream\n    model_info:\n      mode: responses\n",
        mock.base_url()
    );
    let app = TestApp::spawn_with_env(&yaml, &[("TOLLGATE_MASTER_KEY", MASTER)]).await.unwrap();
    let sent = two_turns(&app, "responses-model", |r| mock.enqueue(r)).await;
    let got = mock.last_request().unwrap();
    assert_eq!(got.path, "/v1/responses");
    assert_eq!(got.body["input"], sent["input"], "every item as the client sent it");
    assert_eq!(got.body["include"], sent["include"]);
}

#[tokio::test]
async fn encrypted_reasoning_reaches_a_copilot_model_served_on_responses_unchanged() {
    let (gh, app, _) = crate::copilot::linked().await;
    let sent = two_turns(&app, "gpt-5.4", |r| gh.enqueue(r)).await;
    let got = gh.last_request().unwrap();
    assert_eq!(got.path, "/responses");
    assert_eq!(got.body["input"], sent["input"], "every item as the client sent it");
    let items = got.body["input"].as_array().unwrap();
    let reasoning = items.iter().find(|i| i["type"] == "reasoning").unwrap();
    assert_eq!(reasoning["encrypted_content"], encrypted_reasoning(THOUGHT));
}

/// Log lines written while it is alive, on this thread (a `#[tokio::test]` runs the app's
/// tasks on it too).
struct Captured {
    lines: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

#[derive(Clone)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn debug() -> Self {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Sink(Arc::clone(&lines));
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("tollgate_proxy=debug")
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        Self { lines, _guard: tracing::subscriber::set_default(subscriber) }
    }

    /// The lines that mention `needle`.
    fn mentioning(&self, needle: &str) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.lines.lock().unwrap()).into_owned();
        text.lines().filter(|l| l.contains(needle)).map(str::to_owned).collect()
    }
}

/// Sends a Responses request carrying a reasoning item to `model`; returns the debug lines
/// of that request saying what was dropped.
async fn dropped_lines(app: &TestApp, log: &Captured, model: &str) -> Vec<String> {
    let body = json!({"model": model, "input": [
        {"role": "user", "content": "hi"},
        reasoning_item(),
        {"type": "message", "role": "assistant", "content": [
            {"type": "output_text", "text": "hello"}]},
        {"role": "user", "content": "and again"},
    ]});
    let resp = post(app, "/v1/responses", body).await;
    assert_eq!(resp.status(), 200);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    log.mentioning(&id).into_iter().filter(|l| l.contains("were dropped")).collect()
}

#[tokio::test]
async fn reasoning_dropped_for_chat_and_anthropic_upstreams_is_logged_at_debug() {
    let (openai, anthropic) = (MockOpenAi::start().await, MockAnthropic::start().await);
    openai.set_default(ReplySpec::text("from chat"));
    anthropic.set_default(ReplySpec::text("from claude"));
    let yaml = format!(
        "model_list:
  - model_name: chat-model
    litellm_params:
      model: openai/gpt-4o
      api_base: {}
      api_key: sk-upstream
  - model_name: claude
    litellm_params:
      model: anthropic/claude-sonnet-4-5
      api_base: {}
      api_key: sk-ant-api-upstream
",
        openai.base_url(),
        anthropic.base_url()
    );
    let app = TestApp::spawn_with_env(&yaml, &[("TOLLGATE_MASTER_KEY", MASTER)]).await.unwrap();
    let log = Captured::debug();
    let secret = encrypted_reasoning(THOUGHT);

    let lines = dropped_lines(&app, &log, "chat-model").await;
    assert_eq!(lines.len(), 1, "one line for the request: {lines:?}");
    assert!(lines[0].contains("DEBUG"), "{}", lines[0]);
    assert!(lines[0].contains("\"input.reasoning\""), "it names what went: {}", lines[0]);
    assert!(lines[0].contains("upstream=Chat"), "{}", lines[0]);
    assert!(!lines[0].contains(&secret), "the encrypted content itself is not logged");
    let sent = openai.last_request().unwrap().body.to_string();
    assert!(!sent.contains(&secret) && !sent.contains(THOUGHT), "{sent}");
    assert!(sent.contains("and again"), "the rest of the turn went: {sent}");

    let lines = dropped_lines(&app, &log, "claude").await;
    assert_eq!(lines.len(), 1, "one line for the request: {lines:?}");
    assert!(lines[0].contains("\"input.reasoning\""), "it names what went: {}", lines[0]);
    assert!(lines[0].contains("upstream=Messages"), "{}", lines[0]);
    let sent = anthropic.last_request().unwrap().body.to_string();
    assert!(!sent.contains(&secret) && !sent.contains(THOUGHT), "{sent}");
    assert!(sent.contains("and again"), "the rest of the turn went: {sent}");
}
