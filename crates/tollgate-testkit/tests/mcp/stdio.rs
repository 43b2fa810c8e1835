//! The stdio transport, through `tollgate-mock --mcp-stdio` as a child process.

use std::{process::Stdio, time::Duration};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines},
    process::{Child, ChildStdin, ChildStdout, Command},
};
use tollgate_testkit::mcp_mock::{CRASH_EXIT_CODE, MOCK_BIN_ENV, mock_binary};

use crate::support::{call_tool, initialize_params, notification, request, text};

const BIN: &str = env!("CARGO_BIN_EXE_tollgate-mock");

struct StdioServer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    /// The first line the server wrote to stderr.
    banner: String,
}

async fn spawn(args: &[&str], env: &[(&str, &str)]) -> StdioServer {
    let mut command = Command::new(BIN);
    command
        .arg("--mcp-stdio")
        .args(args)
        .env_remove("MOCK_MCP_SECRET")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().unwrap();
    let stdin = child.stdin.take();
    let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let banner = within(stderr.next_line()).await.unwrap().unwrap();
    StdioServer { child, stdin, stdout, banner }
}

async fn within<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), future).await.expect("within 10 s")
}

impl StdioServer {
    async fn send(&mut self, message: &Value) {
        self.send_raw(&message.to_string()).await;
    }

    async fn send_raw(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).await.unwrap();
        stdin.flush().await.unwrap();
    }

    async fn receive(&mut self) -> Value {
        let line = within(self.stdout.next_line()).await.unwrap().expect("a line on stdout");
        serde_json::from_str(&line).unwrap()
    }

    async fn rpc(&mut self, message: &Value) -> Value {
        self.send(message).await;
        self.receive().await
    }

    /// Closes stdin and returns the exit code and anything else printed to stdout.
    async fn finish(mut self) -> (Option<i32>, Vec<String>) {
        drop(self.stdin.take());
        let status = within(self.child.wait()).await.unwrap();
        let mut rest = Vec::new();
        while let Some(line) = self.stdout.next_line().await.unwrap() {
            rest.push(line);
        }
        (status.code(), rest)
    }
}

#[tokio::test]
async fn speaks_mcp_over_stdin_and_stdout() {
    let mut server = spawn(&["--name", "files"], &[]).await;
    assert!(server.banner.starts_with("mock-mcp ready"), "{}", server.banner);

    let init = server.rpc(&request(1, "initialize", initialize_params("2025-03-26"))).await;
    assert_eq!(init["id"], 1);
    assert_eq!(init["result"]["protocolVersion"], "2025-03-26");
    assert_eq!(init["result"]["serverInfo"]["name"], "files");
    server.send(&notification("notifications/initialized", json!({}))).await;

    let list = server.rpc(&request("two", "tools/list", json!({}))).await;
    assert_eq!(list["id"], "two");
    assert_eq!(list["result"]["tools"].as_array().unwrap().len(), 6);
    let echo = server.rpc(&call_tool(3, "echo", json!({"text": "line one"}))).await;
    assert_eq!(text(&echo["result"]), "line one");
    let read = server.rpc(&request(4, "resources/read", json!({"uri": "mock://greeting"}))).await;
    assert_eq!(read["result"]["contents"][0]["text"], "hello from files");

    server.send_raw("this is not json").await;
    let error = server.receive().await;
    assert_eq!(error["error"]["code"], -32700);
    assert_eq!(error["id"], Value::Null);

    let (code, rest) = server.finish().await;
    assert_eq!(code, Some(0), "exits cleanly when stdin closes");
    assert!(rest.is_empty(), "{rest:?}");
}

#[tokio::test]
async fn crash_exits_without_an_answer() {
    let mut server = spawn(&[], &[]).await;
    server.rpc(&request(1, "ping", json!({}))).await;
    server.send(&call_tool(2, "crash", json!({}))).await;
    let status = within(server.child.wait()).await.unwrap();
    assert_eq!(status.code(), Some(CRASH_EXIT_CODE));
    assert_eq!(server.stdout.next_line().await.unwrap(), None, "nothing after the crash");
}

#[tokio::test]
async fn slow_reports_progress_and_stops_when_cancelled() {
    let mut server = spawn(&[], &[]).await;
    let mut call = call_tool(1, "slow", json!({"seconds": 0.2}));
    call["params"]["_meta"] = json!({"progressToken": 77});
    server.send(&call).await;
    for step in 1..=2 {
        let progress = server.receive().await;
        assert_eq!(progress["method"], "notifications/progress");
        assert_eq!(
            progress["params"],
            json!({
                "progressToken": 77, "progress": step, "total": 2, "message": format!("step {step} of 2"),
            })
        );
    }
    assert_eq!(text(&server.receive().await["result"]), "waited 0.2 s");

    let mut long = call_tool("long", "slow", json!({"seconds": 30}));
    long["params"]["_meta"] = json!({"progressToken": "t"});
    server.send(&long).await;
    assert_eq!(server.receive().await["params"]["progressToken"], "t");
    server.send(&notification("notifications/cancelled", json!({"requestId": "long"}))).await;
    server.send(&request(2, "ping", json!({}))).await;
    loop {
        let message = server.receive().await;
        if message["method"] == "notifications/progress" {
            continue;
        }
        assert_eq!(message["id"], 2, "the cancelled call is never answered: {message}");
        break;
    }
    // A running call would report every 100 ms; at most a step already under way may follow.
    let mut late = Vec::new();
    let quiet_until = tokio::time::Instant::now() + Duration::from_millis(400);
    while let Ok(line) = tokio::time::timeout_at(quiet_until, server.stdout.next_line()).await {
        late.push(line.unwrap().unwrap());
    }
    assert!(late.len() <= 1, "progress goes on after the cancellation: {late:?}");
    let (code, rest) = server.finish().await;
    assert_eq!(code, Some(0));
    assert!(rest.iter().all(|line| !line.contains("\"id\":\"long\"")), "{rest:?}");
}

#[tokio::test]
async fn whoami_reports_the_secret_from_the_environment() {
    let mut server = spawn(&[], &[("MOCK_MCP_SECRET", "from-env")]).await;
    let whoami = server.rpc(&call_tool(1, "whoami", json!({}))).await;
    assert_eq!(whoami["result"]["isError"], false);
    assert_eq!(text(&whoami["result"]), "from-env");

    let mut bare = spawn(&[], &[]).await;
    let whoami = bare.rpc(&call_tool(1, "whoami", json!({}))).await;
    assert_eq!(whoami["result"]["isError"], true);
    assert_eq!(text(&whoami["result"]), "MOCK_MCP_SECRET is not set");
}

#[tokio::test]
async fn only_limits_the_tools() {
    let mut server = spawn(&["--only", "echo,add"], &[]).await;
    assert!(server.banner.contains("tools=echo,add"), "{}", server.banner);
    let list = server.rpc(&request(1, "tools/list", json!({}))).await;
    let names: Vec<_> =
        list["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].clone()).collect();
    assert_eq!(names, [json!("echo"), json!("add")]);
    let crash = server.rpc(&call_tool(2, "crash", json!({}))).await;
    assert_eq!(crash["error"]["code"], -32602, "a hidden crash tool cannot crash the server");
    let (code, _) = server.finish().await;
    assert_eq!(code, Some(0));

    let output = Command::new(BIN).args(["--mcp-stdio", "--only", "nope"]).output().await.unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid value 'nope'"), "{stderr}");
    assert!(!stderr.contains("ready"), "{stderr}");
}

#[test]
fn mock_binary_finds_the_built_binary() {
    let found = mock_binary().unwrap();
    if std::env::var_os(MOCK_BIN_ENV).is_none() {
        assert_eq!(
            found.canonicalize().unwrap(),
            std::path::Path::new(BIN).canonicalize().unwrap()
        );
    }
}
