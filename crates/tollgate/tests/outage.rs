//! The real `tollgate` binary through a database outage: `kill -9` while PostgreSQL is
//! unreachable, a restart while it still is, and the books once it returns.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate_testkit::{FlakyRelay, McpOptions, MockMcp, MockOpenAi, ReplySpec, TestDatabase};

const BIN: &str = env!("CARGO_BIN_EXE_tollgate");
const MASTER: &str = "sk-outage-master";
/// Each "hi" → "one two" request costs 4 × 0.001 + 2 × 0.002.
const COST: f64 = 0.008;
/// The spend writer's flush interval in the binary.
const FLUSH_INTERVAL: Duration = Duration::from_millis(250);
/// Between a response reaching the client and its record reaching the writer, and between
/// the writer's decision to spool and the fsync returning, on a busy machine.
const SLACK: Duration = Duration::from_millis(250);
/// Requests per second while the database is down.
const RATE: u32 = 50;

/// A running `tollgate serve`.
struct Served {
    child: Child,
    lines: mpsc::Receiver<String>,
    addr: String,
}

impl Served {
    fn start(config: &Path, data_dir: &Path, database_url: &str) -> Self {
        let mut child = Command::new(BIN)
            .args(["serve", "--host", "127.0.0.1", "--port", "0", "--auth-port", "0"])
            .args(["--log-format", "json", "--config"])
            .arg(config)
            .env_remove("LITELLM_MASTER_KEY")
            .env("TOLLGATE_MASTER_KEY", MASTER)
            .env("DATABASE_URL", database_url)
            .env("TOLLGATE_DATA_DIR", data_dir)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut served = Self { child, lines, addr: String::new() };
        let listening = served.wait_for("proxy listening", Duration::from_secs(10));
        served.addr = listening["addr"].as_str().unwrap().to_owned();
        served.wait_for("auth helper listening", Duration::from_secs(5));
        served
    }

    fn wait_for(&mut self, message: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no `{message}` line; saw:\n{}", seen.join("\n")));
            let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if v["message"] == message {
                return v;
            }
            seen.push(line);
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `kill -9`: no signal handler runs, nothing is flushed.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(Duration::from_secs(15)).build().unwrap()
}

async fn readiness(served: &Served) -> (u16, Value) {
    let resp = client().get(served.url("/health/readiness")).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// Polls `check` every 100 ms for up to `timeout`.
async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// One chat request with `key`; its status and the id tollgate gave it.
async fn call(url: &str, key: &str) -> Option<(u16, String)> {
    let resp = client()
        .post(url)
        .bearer_auth(key)
        .json(&json!({"model": "priced", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .ok()?;
    let status = resp.status().as_u16();
    let id = resp.headers().get("x-request-id")?.to_str().ok()?.to_owned();
    resp.bytes().await.ok()?;
    Some((status, id))
}

/// Answered requests: when the client had the whole answer, and the record's id.
type Answers = Arc<Mutex<Vec<(Instant, String)>>>;

/// Sends `RATE` requests a second with `key` for `length`, each on its own task so a slow
/// answer does not slow the rate; collects every 200 in `answers`. Returns the tasks, which
/// end with the requests' statuses (`None`: no answer).
async fn drive(
    served: &Served,
    key: &str,
    length: Duration,
    answers: &Answers,
) -> Vec<tokio::task::JoinHandle<Option<u16>>> {
    let url = served.url("/v1/chat/completions");
    let mut tick = tokio::time::interval(Duration::from_secs(1) / RATE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let until = Instant::now() + length;
    let mut sent = Vec::new();
    while Instant::now() < until {
        tick.tick().await;
        let (url, key, answers) = (url.clone(), key.to_owned(), answers.clone());
        sent.push(tokio::spawn(async move {
            let (status, id) = call(&url, &key).await?;
            if status == 200 {
                answers.lock().unwrap().push((Instant::now(), id));
            }
            Some(status)
        }));
    }
    sent
}

/// The statuses of the requests `drive` sent, once all have ended.
async fn statuses(sent: Vec<tokio::task::JoinHandle<Option<u16>>>) -> Vec<Option<u16>> {
    let mut out = Vec::with_capacity(sent.len());
    for request in sent {
        out.push(request.await.unwrap());
    }
    out
}

async fn new_key(served: &Served) -> String {
    let resp = client()
        .post(served.url("/key/generate"))
        .bearer_auth(MASTER)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json::<Value>().await.unwrap()["key"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_and_a_restart_during_a_database_outage() {
    let started = Instant::now();
    let db = TestDatabase::create().await.unwrap();
    let relay = FlakyRelay::start(db.server_addr().unwrap()).await.unwrap();
    let via_relay = db.url_via(relay.addr());
    let mock = MockOpenAi::start().await;
    mock.set_default(ReplySpec::text("one two"));
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "model_list:\n  - model_name: priced\n    litellm_params:\n      model: openai/priced-model\n      api_base: {}\n      api_key: sk-upstream\n    model_info:\n      input_cost_per_token: 0.001\n      output_cost_per_token: 0.002\n",
            mock.base_url()
        ),
    )
    .unwrap();

    // First run, database up: two keys, some traffic, the snapshot on disk.
    let mut first = Served::start(&config, &data_dir, &via_relay);
    assert!(
        eventually(Duration::from_secs(10), || async {
            readiness(&first).await.1["status"] == "healthy"
        })
        .await,
        "never healthy: {}",
        readiness(&first).await.1
    );
    let (key, doomed) = (new_key(&first).await, new_key(&first).await);
    let (hash, doomed_hash) =
        (tollgate_proxy::access::keys::hash(&key), tollgate_proxy::access::keys::hash(&doomed));
    let answers: Answers = Arc::default();
    let warm_up = statuses(drive(&first, &key, Duration::from_millis(400), &answers).await).await;
    assert!(warm_up.iter().all(|s| *s == Some(200)), "{warm_up:?}");
    let snapshot = data_dir.join("directory.json");
    assert!(
        eventually(Duration::from_secs(5), || async {
            std::fs::read_to_string(&snapshot)
                .is_ok_and(|s| s.contains(&hash) && s.contains(&doomed_hash))
        })
        .await,
        "the snapshot never listed both keys"
    );

    // The database goes away; traffic goes on; the process is killed mid-stream.
    relay.cut();
    let in_outage = drive(&first, &key, Duration::from_secs(3), &answers).await;
    let killed_at = Instant::now();
    first.kill();
    let cut_short = statuses(in_outage).await;
    // Every request either was answered (200) or lost its connection to the kill.
    assert!(cut_short.iter().all(|s| matches!(s, Some(200) | None)), "{cut_short:?}");
    let answered_first: Vec<(Instant, String)> = answers.lock().unwrap().clone();

    // While it is down, a key is deleted (straight in the database, which is up for others).
    let direct = tollgate_store::connect(Some(&db.url), dir.path()).await.unwrap();
    assert_eq!(direct.delete_keys(std::slice::from_ref(&doomed_hash)).await.unwrap(), 1);

    // Second run, database still unreachable: it listens at once and serves the keys it
    // knew from the snapshot.
    let restart = Instant::now();
    let second = Served::start(&config, &data_dir, &via_relay);
    let listening_after = restart.elapsed();
    assert!(listening_after < Duration::from_secs(3), "listening after {listening_after:?}");
    let (status, ready) = readiness(&second).await;
    assert_eq!(
        (status, &ready["status"], &ready["keys_from"]),
        (200, &json!("degraded"), &json!("snapshot")),
        "{ready}"
    );
    assert!(ready["reasons"].as_array().is_some_and(|r| !r.is_empty()), "{ready}");
    let later: Answers = Arc::default();
    let after_restart = statuses(drive(&second, &key, Duration::from_secs(1), &later).await).await;
    assert!(after_restart.iter().all(|s| *s == Some(200)), "after the restart: {after_restart:?}");
    let answered_second = later.lock().unwrap().clone();
    let stale = call(&second.url("/v1/chat/completions"), &doomed).await.unwrap();
    assert_eq!(stale.0, 200, "the snapshot's view holds until the database answers");

    // The database returns: the snapshot is replaced at once, and the spool is replayed.
    relay.restore();
    assert!(
        eventually(Duration::from_secs(15), || async {
            call(&second.url("/v1/chat/completions"), &doomed).await.is_some_and(|(s, _)| s == 401)
        })
        .await,
        "a key deleted while the process was down still works"
    );
    assert!(
        eventually(Duration::from_secs(10), || async {
            readiness(&second).await.1["status"] == "healthy"
        })
        .await,
        "never healthy again: {}",
        readiness(&second).await.1
    );
    let spool = data_dir.join("spool");
    assert!(
        eventually(Duration::from_secs(15), || async {
            let (_, ready) = readiness(&second).await;
            tollgate_store::spool_files(&spool).is_ok_and(|f| f.is_empty())
                && ready["spend_writer"]["pending"] == 0
                && ready["spend_writer"]["queued"] == 0
        })
        .await,
        "the spool was never replayed"
    );

    let rows = direct
        .spend_logs(tollgate_store::SpendFilter {
            token_hash: Some(hash.clone()),
            limit: 10_000,
            ..Default::default()
        })
        .await
        .unwrap();
    let stored: HashSet<&str> = rows.iter().map(|r| r.request_id.as_str()).collect();
    assert_eq!(stored.len(), rows.len());
    let lost: Vec<&(Instant, String)> =
        answered_first.iter().filter(|(_, id)| !stored.contains(id.as_str())).collect();
    let window = FLUSH_INTERVAL + SLACK;
    let in_last_window =
        answered_first.iter().filter(|(at, _)| killed_at.duration_since(*at) <= window).count();
    let missing_second: Vec<&String> = answered_second
        .iter()
        .map(|(_, id)| id)
        .filter(|id| !stored.contains(id.as_str()))
        .collect();
    eprintln!(
        "answered before the kill: {}, after the restart: {}; rows: {}; lost: {} (answered in \
         the last {window:?} before the kill: {in_last_window}); listening {listening_after:?} \
         after the restart; {:?} in all",
        answered_first.len(),
        answered_second.len(),
        rows.len(),
        lost.len(),
        started.elapsed()
    );
    assert!(missing_second.is_empty(), "records of the second run lost: {missing_second:?}");
    for (at, id) in &lost {
        let before = killed_at.duration_since(*at);
        assert!(before <= window, "{id}, answered {before:?} before the kill, has no record");
    }
    assert!(lost.len() <= in_last_window);
    let expected = answered_first.len() + answered_second.len() - lost.len();
    // A request answered by tollgate whose answer the kill cut short may be stored as well.
    assert!(
        (expected..=expected + 10).contains(&rows.len()),
        "{} rows, {expected} expected",
        rows.len()
    );
    let spend = direct.get_key(&hash).await.unwrap().unwrap().spend;
    assert!(
        (spend - rows.len() as f64 * COST).abs() < 1e-6,
        "key spend {spend} for {} rows",
        rows.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stored_models_are_served_after_a_restart_during_a_database_outage() {
    const STORED_SECRET: &str = "sk-stored-in-outage-1234abcd";
    const CRED_SECRET: &str = "sk-credential-in-outage-5678efgh";
    let db = TestDatabase::create().await.unwrap();
    let relay = FlakyRelay::start(db.server_addr().unwrap()).await.unwrap();
    let via_relay = db.url_via(relay.addr());
    let mock = MockOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "model_list: []\n").unwrap();

    let mut first = Served::start(&config, &data_dir, &via_relay);
    assert!(
        eventually(Duration::from_secs(10), || async {
            readiness(&first).await.1["status"] == "healthy"
        })
        .await
    );
    let admin = |path: &'static str, body: Value| {
        let url = first.url(path);
        async move {
            let resp = client().post(url).bearer_auth(MASTER).json(&body).send().await.unwrap();
            assert_eq!(resp.status(), 200, "{path}");
        }
    };
    let base = mock.base_url();
    admin(
        "/credentials",
        json!({"credential_name": "c", "credential_values": {"api_key": CRED_SECRET}}),
    )
    .await;
    admin(
        "/model/new",
        json!({"model_name": "own-key", "litellm_params": {"model": "openai/a", "api_base": base, "api_key": STORED_SECRET}}),
    )
    .await;
    admin(
        "/model/new",
        json!({"model_name": "named-key", "litellm_params": {"model": "openai/b", "api_base": base, "litellm_credential_name": "c"}}),
    )
    .await;
    let snapshot = data_dir.join("models.json");
    assert!(
        eventually(Duration::from_secs(5), || async {
            std::fs::read_to_string(&snapshot)
                .is_ok_and(|s| s.contains("own-key") && s.contains("named-key"))
        })
        .await,
        "the stored-model snapshot was never written"
    );
    let kept = std::fs::read_to_string(&snapshot).unwrap();
    assert!(
        !kept.contains(STORED_SECRET) && !kept.contains(CRED_SECRET),
        "a credential in clear: {kept}"
    );

    // Killed; the database goes away; a new process still serves both stored models.
    first.kill();
    relay.cut();
    let second = Served::start(&config, &data_dir, &via_relay);
    for (model, secret) in [("own-key", STORED_SECRET), ("named-key", CRED_SECRET)] {
        let resp = client()
            .post(second.url("/v1/chat/completions"))
            .bearer_auth(MASTER)
            .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{model} during the outage");
        assert_eq!(
            mock.last_request().unwrap().header("authorization"),
            Some(format!("Bearer {secret}").as_str())
        );
    }
    relay.restore();
}

/// One JSON-RPC request to `/mcp` with the master key: its answer.
async fn mcp_rpc(served: &Served, method: &str, params: Value) -> Value {
    let resp = client()
        .post(served.url("/mcp"))
        .bearer_auth(MASTER)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{method}");
    resp.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stored_mcp_servers_are_served_after_a_restart_during_a_database_outage() {
    const TOKEN: &str = "mcp-token-stored-in-outage-9876zyxw";
    let db = TestDatabase::create().await.unwrap();
    let relay = FlakyRelay::start(db.server_addr().unwrap()).await.unwrap();
    let via_relay = db.url_via(relay.addr());
    let mcp = MockMcp::start_http_with(McpOptions {
        bearer_token: Some(TOKEN.to_owned()),
        ..McpOptions::named("docs").only(&["echo"])
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "model_list: []\n").unwrap();

    let mut first = Served::start(&config, &data_dir, &via_relay);
    assert!(
        eventually(Duration::from_secs(10), || async {
            readiness(&first).await.1["status"] == "healthy"
        })
        .await
    );
    let resp = client()
        .post(first.url("/v1/mcp/server"))
        .bearer_auth(MASTER)
        .json(&json!({"server_name": "docs", "url": mcp.url(), "auth_type": "bearer_token", "auth_value": TOKEN}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let snapshot = data_dir.join("mcp_servers.json");
    assert!(
        eventually(Duration::from_secs(5), || async {
            std::fs::read_to_string(&snapshot).is_ok_and(|s| s.contains("\"docs\""))
        })
        .await,
        "the stored-MCP-server snapshot was never written"
    );
    let kept = std::fs::read_to_string(&snapshot).unwrap();
    assert!(!kept.contains(TOKEN), "a credential in clear: {kept}");

    // Killed; the database goes away; a new process still lists and calls its tools.
    first.kill();
    relay.cut();
    mcp.clear_calls();
    let second = Served::start(&config, &data_dir, &via_relay);
    let listed = mcp_rpc(&second, "tools/list", json!({})).await;
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["docs-echo"], "{listed}");
    let called =
        mcp_rpc(&second, "tools/call", json!({"name": "docs-echo", "arguments": {"text": "down"}}))
            .await;
    assert_eq!(called["result"]["content"][0]["text"], "down", "{called}");
    let calls = mcp.calls_of("tools/call");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].header("authorization"), Some(format!("Bearer {TOKEN}").as_str()));
    relay.restore();
}
