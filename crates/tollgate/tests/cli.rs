//! The `tollgate` binary itself: `serve` with JSON logs, and `config check`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use tollgate_testkit::{MockOpenAi, ReplySpec};

const BIN: &str = env!("CARGO_BIN_EXE_tollgate");

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name).display().to_string()
}

/// A running `tollgate serve`, its stderr lines collected on a thread.
struct Served {
    child: Child,
    data_dir: tempfile::TempDir,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Served {
    fn start(config: &Path, env: &[(&str, &str)]) -> Self {
        Self::start_with(&["--host", "127.0.0.1"], config, env)
    }

    /// `serve` on ports 0 with `args` added (and no listen address unless `args` has one).
    fn start_with(args: &[&str], config: &Path, env: &[(&str, &str)]) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(BIN)
            .args(["serve", "--port", "0", "--auth-port", "0"])
            .args(args)
            .args(["--log-format", "json", "--config"])
            .arg(config)
            .env_remove("TOLLGATE_MASTER_KEY")
            .env_remove("LITELLM_MASTER_KEY")
            .env_remove("PROXY_STATIC_TOKEN")
            .env_remove("TOLLGATE_HOST")
            .env_remove("DATABASE_URL")
            .env("TOLLGATE_DATA_DIR", data_dir.path())
            .envs(env.iter().copied())
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
        Self { child, data_dir, lines, seen: Vec::new() }
    }

    /// Waits for a log line whose message is `message`, returning it parsed.
    fn wait_for(&mut self, message: &str) -> Value {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no `{message}` line; saw:\n{}", self.seen.join("\n")));
            self.seen.push(line.clone());
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
            if v["message"] == message {
                return v;
            }
        }
    }

    fn drain(&mut self) {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(300)) {
            self.seen.push(line);
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_logs_one_json_line_per_request_without_credentials() {
    let mock = MockOpenAi::start().await;
    mock.enqueue(ReplySpec::text("hello there"));
    let dir = std::env::temp_dir().join(format!("tollgate-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/m\n      api_base: {}\n      api_key: os.environ/UPSTREAM_KEY\n",
            mock.base_url()
        ),
    )
    .unwrap();
    let mut served = Served::start(
        &config,
        &[("TOLLGATE_MASTER_KEY", "sk-cli-master-123"), ("UPSTREAM_KEY", "sk-upstream-456")],
    );
    let proxy = served.wait_for("proxy listening");
    let addr = proxy["addr"].as_str().unwrap().to_owned();
    served.wait_for("auth helper listening");
    // The ports listen before the keys are loaded; until then an unknown key is "try again".
    if !served.seen.iter().any(|l| l.contains("key directory loaded")) {
        served.wait_for("key directory loaded");
    }

    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("http://{addr}/v1/chat/completions"))
        .bearer_auth("sk-cli-master-123")
        .header("x-request-id", "cli-req-1")
        .json(&serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        mock.last_request().unwrap().header("authorization"),
        Some("Bearer sk-upstream-456")
    );
    let refused = client
        .get(format!("http://{addr}/v1/models"))
        .bearer_auth("sk-wrong-789")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    let line = served.wait_for("request");
    assert_eq!(line["client_request_id"], "cli-req-1");
    let own = line["request_id"].as_str().unwrap();
    assert!(own.len() == 36 && own != "cli-req-1", "tollgate's own id: {own}");
    assert_eq!(line["model"], "m");
    assert_eq!(line["served_model"], "openai/m");
    assert_eq!(line["status"], 200);
    assert!(line["latency_ms"].as_f64().unwrap() > 0.0);
    let refusal = served.wait_for("request");
    assert_eq!(refusal["status"], 401);
    assert_eq!(refusal["route"], "/v1/models");
    served.drain();
    let all = served.seen.join("\n");
    for secret in ["sk-cli-master-123", "sk-upstream-456", "sk-wrong-789"] {
        assert!(!all.contains(secret), "{secret} leaked into the logs:\n{all}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn config_yaml_reloads_on_sighup_and_on_request_and_a_bad_edit_changes_nothing() {
    const MASTER: &str = "sk-reload-master-1234";
    const FILE_SECRET: &str = "sk-file-secret-5678abcd";
    const STORED_SECRET: &str = "sk-stored-secret-9012efgh";
    let mock = MockOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    let entry = |name: &str, extra: &str| {
        format!(
            "  - model_name: {name}\n    litellm_params:\n      model: openai/{name}\n      api_base: {}\n      api_key: {FILE_SECRET}\n{extra}",
            mock.base_url()
        )
    };
    let write = |entries: &[String]| {
        std::fs::write(&config, format!("model_list:\n{}", entries.concat())).unwrap()
    };
    write(&[entry("one", "")]);
    let env =
        [("TOLLGATE_MASTER_KEY", MASTER), ("TOLLGATE_SECRET_KEY", "reload-test-secret-key-0000")];
    let mut served = Served::start(&config, &env);
    let addr = served.wait_for("proxy listening")["addr"].as_str().unwrap().to_owned();
    if !served.seen.iter().any(|l| l.contains("key directory loaded")) {
        served.wait_for("key directory loaded");
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let ask = |model: &str| {
        client
            .post(format!("http://{addr}/v1/chat/completions"))
            .bearer_auth(MASTER)
            .json(&serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };
    let stored = client
        .post(format!("http://{addr}/model/new"))
        .bearer_auth(MASTER)
        .json(&serde_json::json!({
            "model_name": "stored",
            "litellm_params": {"model": "openai/stored", "api_base": mock.base_url(), "api_key": STORED_SECRET},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status(), 200);
    assert_eq!(ask("two").await.unwrap().status(), 404);

    // A valid edit applies on SIGHUP; the stored model stays.
    write(&[entry("one", ""), entry("two", "")]);
    let hup = || {
        let pid = served.child.id().to_string();
        assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    };
    hup();
    served.wait_for("config.yaml reloaded");
    assert_eq!(ask("two").await.unwrap().status(), 200);
    assert_eq!(ask("stored").await.unwrap().status(), 200);

    // An invalid edit is refused with start-up's message; the old config keeps serving.
    write(&[entry("one", ""), entry("two", "      timeout: -3\n")]);
    let pid = served.child.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    let refused = served.wait_for("config.yaml not reloaded; the running config stays");
    let why = refused["error"].as_str().unwrap();
    assert!(
        why.contains("config.yaml") && why.contains("model_list[1].litellm_params.timeout"),
        "{why}"
    );
    assert_eq!(ask("two").await.unwrap().status(), 200);
    let resp = client
        .post(format!("http://{addr}/config/reload"))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let text = resp.text().await.unwrap();
    assert!(text.contains("model_list[1].litellm_params.timeout"), "{text}");

    // `tollgate reload` asks the running proxy, and says what happened.
    let reload = || {
        Command::new(BIN)
            .args(["reload", "--url", &format!("http://{addr}"), "--config"])
            .arg(&config)
            .env("TOLLGATE_MASTER_KEY", MASTER)
            .output()
            .unwrap()
    };
    let out = reload();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("litellm_params.timeout"));
    write(&[entry("one", ""), entry("two", ""), entry("three", "")]);
    let out = reload();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("reloaded"));
    assert_eq!(ask("three").await.unwrap().status(), 200);

    // `config check`, given the database, lists both kinds and says which is which.
    let out = Command::new(BIN)
        .args(["config", "check", "--config"])
        .arg(&config)
        .env("TOLLGATE_DATA_DIR", served.data_dir.path())
        .env_remove("DATABASE_URL")
        .envs(env)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("stored models: 1"), "{stdout}");
    assert!(
        stdout.contains("openai/stored via openai") && stdout.contains("[stored, id "),
        "{stdout}"
    );
    assert!(
        stdout.contains("openai/three via openai") && stdout.contains("[config, id "),
        "{stdout}"
    );
    assert!(!stdout.contains(STORED_SECRET) && !stdout.contains(FILE_SECRET), "{stdout}");

    served.drain();
    let all = served.seen.join("\n");
    for secret in [MASTER, FILE_SECRET, STORED_SECRET] {
        assert!(!all.contains(secret), "{secret} leaked into the logs:\n{all}");
    }
}

#[test]
fn serve_without_a_key_warns_loudly() {
    let mut served = Served::start(Path::new(&example("copilot-claude-code.yaml")), &[]);
    let warning = served.wait_for_level_containing("NO MASTER KEY");
    assert_eq!(warning["level"], "WARN");
}

#[test]
fn without_a_key_serve_listens_on_loopback_and_says_why() {
    let config = Path::new(&example("copilot-claude-code.yaml")).to_path_buf();
    let mut open = Served::start_with(&[], &config, &[]);
    for server in ["proxy listening", "auth helper listening"] {
        let line = open.wait_for(server);
        let addr = line["addr"].as_str().unwrap();
        assert!(addr.starts_with("127.0.0.1:"), "{server} on {addr}");
    }
    let why = open.seen_containing("listening on 127.0.0.1 only");
    assert!(why["message"].as_str().unwrap().contains("Set TOLLGATE_MASTER_KEY"), "{why}");
    // A key protects the gateway: all interfaces, as before.
    let mut keyed = Served::start_with(&[], &config, &[("TOLLGATE_MASTER_KEY", "sk-cli-master")]);
    let addr = keyed.wait_for("proxy listening")["addr"].as_str().unwrap().to_owned();
    assert!(addr.starts_with("0.0.0.0:"), "{addr}");
    keyed.seen_containing("listening on all interfaces (0.0.0.0)");
    // A listen address given explicitly is used as given, without a key too.
    let mut chosen = Served::start_with(&[], &config, &[("TOLLGATE_HOST", "127.0.0.2")]);
    let addr = chosen.wait_for("proxy listening")["addr"].as_str().unwrap().to_owned();
    assert!(addr.starts_with("127.0.0.2:"), "{addr}");
    chosen.seen_containing("as set by TOLLGATE_HOST");
}

impl Served {
    /// A line already read that contains `text`, parsed.
    fn seen_containing(&self, text: &str) -> Value {
        let line = self.seen.iter().find(|l| l.contains(text));
        let line =
            line.unwrap_or_else(|| panic!("no `{text}` line; saw:\n{}", self.seen.join("\n")));
        serde_json::from_str(line).unwrap()
    }

    fn wait_for_level_containing(&mut self, text: &str) -> Value {
        loop {
            let line = self.lines.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| {
                panic!("no line containing `{text}`; saw:\n{}", self.seen.join("\n"))
            });
            self.seen.push(line.clone());
            if line.contains(text) {
                return serde_json::from_str(&line).unwrap();
            }
        }
    }
}

#[test]
fn config_check_accepts_the_examples() {
    for name in ["copilot-claude-code.yaml", "copilot-fallbacks.yaml", "multi-provider.yaml"] {
        let out = Command::new(BIN)
            .args(["config", "check", "--config", &example(name)])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.trim_end().ends_with("OK"), "{stdout}");
        assert!(stdout.contains("model groups:"), "{stdout}");
    }
    let out = Command::new(BIN)
        .args(["config", "check", "--config", &example("copilot-fallbacks.yaml")])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("fallbacks: github_copilot/claude-opus-4.6 -> github_copilot/gemini-3-pro-preview -> github_copilot/gpt-5-mini"),
        "{stdout}"
    );
    let out = Command::new(BIN)
        .args(["config", "check", "--strict", "--config", &example("multi-provider.yaml")])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn config_check_names_the_redis_replicas_share_without_its_password() {
    let out = Command::new(BIN)
        .args(["config", "check", "--config", &example("copilot-claude-code.yaml")])
        .env("REDIS_URL", "redis://:hunter2@cache.internal:6380/0")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("redis: redis://cache.internal:6380/0 (rate limits"), "{stdout}");
    assert!(!stdout.contains("hunter2"), "{stdout}");
    let out = Command::new(BIN)
        .args(["config", "check", "--config", &example("copilot-claude-code.yaml")])
        .env_remove("REDIS_URL")
        .env_remove("REDIS_HOST")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("redis: not configured"));
}

#[test]
fn config_check_warns_about_fallbacks_that_go_nowhere_or_loop() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("loop.yaml");
    std::fs::write(
        &cfg,
        "model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/a\n      fallbacks: [b, ghost]\n  - model_name: b\n    litellm_params:\n      model: openai/b\n    fallbacks: [a]\n",
    )
    .unwrap();
    let out = Command::new(BIN).args(["config", "check", "--config"]).arg(&cfg).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("fallback `ghost` of `a` resolves to no model"), "{stdout}");
    assert!(stdout.contains("`a` and `b` fall back to each other"), "{stdout}");
    let out = Command::new(BIN)
        .args(["config", "check", "--strict", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn config_check_warns_when_the_semantic_filter_names_no_served_model() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("filter.yaml");
    let write = |model: &str| {
        std::fs::write(
            &cfg,
            format!(
                "model_list:\n  - model_name: embed\n    litellm_params:\n      model: openai/text-embedding-3-small\nlitellm_settings:\n  mcp_semantic_tool_filter:\n    enabled: true\n    embedding_model: {model}\n    top_k: 4\n"
            ),
        )
        .unwrap();
    };
    write("embed");
    let out = Command::new(BIN).args(["config", "check", "--config"]).arg(&cfg).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("embedding model `embed`, top_k 4"), "{stdout}");
    assert!(!stdout.contains("mcp warnings"), "{stdout}");
    write("ghost-embedder");
    let out = Command::new(BIN).args(["config", "check", "--config"]).arg(&cfg).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("`ghost-embedder` resolves to no model"), "{stdout}");
}

#[test]
fn config_check_names_file_key_and_reason() {
    let dir = std::env::temp_dir().join(format!("tollgate-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/a\n      timeout: -3\n").unwrap();
    let out = Command::new(BIN).args(["config", "check", "--config"]).arg(&bad).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.yaml") && stderr.contains("model_list[0].litellm_params.timeout"),
        "{stderr}"
    );
    assert!(stderr.contains("positive"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

fn run_cli(data_dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("TOLLGATE_DATA_DIR", data_dir)
        .env_remove("DATABASE_URL")
        .env_remove("TOLLGATE_CONFIG")
        .current_dir(data_dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn migrate_and_keys_commands_work_on_the_embedded_store() {
    let dir = std::env::temp_dir().join(format!("tollgate-cli-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ok, _, err) = run_cli(&dir, &["migrate"]);
    assert!(ok, "{err}");
    assert!(dir.join("tollgate.db").is_file());

    let (ok, out, err) = run_cli(
        &dir,
        &[
            "keys",
            "create",
            "--alias",
            "ci-bot",
            "--models",
            "gpt-4o,claude-*",
            "--max-budget",
            "5",
            "--budget-duration",
            "30d",
            "--rpm",
            "60",
            "--mcp-servers",
            "memory, filesystem",
        ],
    );
    assert!(ok, "{err}");
    let key = out.lines().next().unwrap().to_owned();
    assert!(key.starts_with("sk-") && key.len() == 43, "{out}");
    assert!(out.contains("cannot be shown again"));

    let (ok, out, _) = run_cli(&dir, &["keys", "list"]);
    assert!(ok);
    assert!(out.contains("ci-bot") && out.contains("1 key(s)"), "{out}");
    assert!(!out.contains(&key), "the key itself is never listed");
    let (ok, out, _) = run_cli(&dir, &["keys", "list", "--json"]);
    assert!(ok);
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed[0]["models"], serde_json::json!(["gpt-4o", "claude-*"]));
    assert_eq!(listed[0]["limits"]["rpm_limit"], 60);
    assert_eq!(listed[0]["limits"]["max_budget"], 5.0);
    assert_eq!(
        listed[0]["object_permission"],
        serde_json::json!({"mcp_servers": ["memory", "filesystem"]})
    );

    let (ok, out, _) = run_cli(&dir, &["keys", "revoke", &key]);
    assert!(ok && out.contains("revoked 1 of 1"), "{out}");
    let (ok, out, _) = run_cli(&dir, &["keys", "revoke", &key]);
    assert!(!ok && out.contains("revoked 0 of 1"), "{out}");
    let (ok, _, err) = run_cli(&dir, &["keys", "create", "--budget-duration", "monthly"]);
    assert!(!ok && err.contains("--budget-duration"), "{err}");
    // Both changes are in the audit log, made by `cli`, without the key.
    let records = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = tollgate_store::connect(None, &dir).await.unwrap();
        store.audit_logs(tollgate_store::AuditFilter::default()).await.unwrap()
    });
    let seen: Vec<(&str, &str, &str)> = records
        .iter()
        .map(|r| (r.action.as_str(), r.actor.as_str(), r.object_type.as_str()))
        .collect();
    assert_eq!(seen, [("delete", "cli", "key"), ("create", "cli", "key")]);
    assert!(!serde_json::to_string(&records).unwrap().contains(&key));
    std::fs::remove_dir_all(&dir).ok();
}

fn claude_code(dir: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args([
            "claude-code",
            "--model",
            "claude-opus-4.5",
            "--key",
            "sk-team-key",
            "--haiku-model",
            "gpt-5-mini",
        ])
        .args(extra)
        .env("TOLLGATE_DATA_DIR", dir)
        .env_remove("TOLLGATE_CONFIG")
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn claude_code_prints_the_environment_for_each_shell() {
    let dir = tempfile::tempdir().unwrap();
    let out = claude_code(dir.path(), &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for line in [
        "export ANTHROPIC_BASE_URL=http://localhost:4000",
        "export ANTHROPIC_AUTH_TOKEN=sk-team-key",
        "export ANTHROPIC_MODEL=claude-opus-4.5",
        "export ANTHROPIC_DEFAULT_OPUS_MODEL=claude-opus-4.5",
        "export ANTHROPIC_DEFAULT_SONNET_MODEL=claude-opus-4.5",
        "export ANTHROPIC_DEFAULT_HAIKU_MODEL=gpt-5-mini",
        "export CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }
    let out = claude_code(
        dir.path(),
        &["--shell", "powershell", "--base-url", "https://gw.example:4000/"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("$env:ANTHROPIC_BASE_URL = 'https://gw.example:4000'"), "{text}");
    assert!(text.contains("$env:ANTHROPIC_AUTH_TOKEN = 'sk-team-key'"), "{text}");
}

#[test]
fn claude_code_write_creates_merges_and_refuses_broken_files() {
    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("nested/.claude/settings.json");
    let out = claude_code(dir.path(), &["--write", settings.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&settings).unwrap()).unwrap();
    assert_eq!(v["env"]["ANTHROPIC_MODEL"], "claude-opus-4.5");

    std::fs::write(
        &settings,
        r#"{"model": "opus", "permissions": {"allow": ["Bash(ls)"]}, "env": {"KEEP_ME": "1", "ANTHROPIC_MODEL": "old"}}"#,
    )
    .unwrap();
    let out = claude_code(dir.path(), &["--write", settings.to_str().unwrap()]);
    assert!(out.status.success());
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&settings).unwrap()).unwrap();
    assert_eq!(v["model"], "opus");
    assert_eq!(v["permissions"]["allow"][0], "Bash(ls)");
    assert_eq!(v["env"]["KEEP_ME"], "1");
    assert_eq!(v["env"]["ANTHROPIC_MODEL"], "claude-opus-4.5");
    assert_eq!(v["env"]["ANTHROPIC_AUTH_TOKEN"], "sk-team-key");

    let broken = "{\n  \"model\": \"opus\",\n  \"env\": {\n}\n";
    std::fs::write(&settings, broken).unwrap();
    let out = claude_code(dir.path(), &["--write", settings.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not valid JSON") && err.contains("line 5"), "{err}");
    assert_eq!(std::fs::read_to_string(&settings).unwrap(), broken, "left untouched");

    let home = dir.path().join("home");
    let out = Command::new(BIN)
        .args(["claude-code", "--model", "m", "--key", "k", "--write"])
        .env("HOME", &home)
        .env("TOLLGATE_DATA_DIR", dir.path())
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(home.join(".claude/settings.json").is_file());
}

/// `tollgate codex --model gpt-5.4 ARGS` in `dir` with no config file, `CODEX_HOME` unset
/// unless `env` sets it.
fn codex(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(["codex", "--model", "gpt-5.4"])
        .args(args)
        .env("TOLLGATE_DATA_DIR", dir)
        .env_remove("TOLLGATE_CONFIG")
        .env_remove("CODEX_HOME")
        .current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Asserts that `doc` points Codex at tollgate at `base_url` for `gpt-5.4`.
fn assert_codex_provider(doc: &toml_edit::DocumentMut, base_url: &str) {
    assert_eq!(doc["model"].as_str(), Some("gpt-5.4"), "{doc}");
    assert_eq!(doc["model_provider"].as_str(), Some("tollgate"), "{doc}");
    let p = &doc["model_providers"]["tollgate"];
    assert_eq!(p["name"].as_str(), Some("tollgate"), "{doc}");
    assert_eq!(p["base_url"].as_str(), Some(base_url), "{doc}");
    assert_eq!(p["env_key"].as_str(), Some("TOLLGATE_API_KEY"), "{doc}");
    assert_eq!(p["wire_api"].as_str(), Some("responses"), "{doc}");
    assert_eq!(p["supports_websockets"].as_bool(), Some(false), "{doc}");
}

#[test]
fn codex_prints_a_provider_block_and_the_key_apart_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = codex(dir.path(), &["--key", "sk-team-key"], &[]);
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    let doc: toml_edit::DocumentMut = stdout.parse().expect("stdout is TOML");
    assert_codex_provider(&doc, "http://localhost:4000/v1");
    assert!(!stdout.contains("sk-team-key"), "the key is not part of config.toml: {stdout}");
    assert!(stderr.lines().any(|l| l == "export TOLLGATE_API_KEY=sk-team-key"), "{stderr}");

    // A base URL with or without /v1, a trailing slash, PowerShell; the master key by default.
    let out = Command::new(BIN)
        .args(["codex", "--model", "gpt-5.4", "--shell", "powershell"])
        .args(["--base-url", "https://gw.example:4000/v1/"])
        .env("TOLLGATE_DATA_DIR", dir.path())
        .env("TOLLGATE_MASTER_KEY", "sk-master-it's")
        .env_remove("TOLLGATE_CONFIG")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: toml_edit::DocumentMut = String::from_utf8_lossy(&out.stdout).parse().unwrap();
    assert_codex_provider(&doc, "https://gw.example:4000/v1");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("$env:TOLLGATE_API_KEY = 'sk-master-it''s'"), "{stderr}");

    let out = codex(dir.path(), &[], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("pass --key"));
}

#[test]
fn codex_write_creates_merges_and_refuses_broken_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nested/.codex/config.toml");
    let write = ["--key", "sk-team-key", "--base-url", "http://gw:4000", "--write"];
    let out = codex(dir.path(), &[&write[..], &[file.to_str().unwrap()]].concat(), &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Only the export line on stdout, for `eval`; the key never goes into the file.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "export TOLLGATE_API_KEY=sk-team-key\n");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("sk-team-key"), "{text}");
    assert_codex_provider(&text.parse().unwrap(), "http://gw:4000/v1");

    let mine = r#"# my Codex settings
model = "o3"   # was o3
approval_policy = "never"
profile = "work"

[model_providers.azure]
name = "Azure"   # keep me
base_url = "https://example.openai.azure.com/openai"
env_key = "AZURE_OPENAI_API_KEY"

[model_providers.tollgate]
name = "old"
request_max_retries = 0

# the sandbox
[sandbox_workspace_write]
network_access = false

[profiles.work]
model = "gpt-5.5"
"#;
    std::fs::write(&file, mine).unwrap();
    let out = codex(dir.path(), &[&write[..], &[file.to_str().unwrap()]].concat(), &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&file).unwrap();
    let doc: toml_edit::DocumentMut = text.parse().unwrap();
    assert_codex_provider(&doc, "http://gw:4000/v1");
    for kept in [
        "# my Codex settings\n",
        "model = \"gpt-5.4\"   # was o3\n",
        "approval_policy = \"never\"\n",
        "name = \"Azure\"   # keep me\n",
        "# the sandbox\n[sandbox_workspace_write]\nnetwork_access = false\n",
        "[profiles.work]\nmodel = \"gpt-5.5\"\n",
    ] {
        assert!(text.contains(kept), "lost {kept:?} in\n{text}");
    }
    assert_eq!(doc["model_providers"]["azure"]["env_key"].as_str(), Some("AZURE_OPENAI_API_KEY"));
    assert_eq!(doc["model_providers"]["tollgate"]["request_max_retries"].as_integer(), Some(0));
    assert_eq!(doc["profile"].as_str(), Some("work"));

    // Text that is not TOML, or a `model_providers` that is not a table: refused, untouched.
    for (broken, why) in [
        ("model = \"o3\"\n[model_providers.azure\nname = 1\n", "line 2, column"),
        ("model_providers = \"azure\"\n", "`model_providers` that is not a table"),
        ("[model_providers]\ntollgate = \"x\"\n", "`model_providers.tollgate` that is not a table"),
    ] {
        std::fs::write(&file, broken).unwrap();
        let out = codex(dir.path(), &[&write[..], &[file.to_str().unwrap()]].concat(), &[]);
        assert!(!out.status.success(), "{broken:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(file.to_str().unwrap()) && err.contains(why), "{err}");
        assert!(err.contains("left unchanged"), "{err}");
        assert_eq!(std::fs::read(&file).unwrap(), broken.as_bytes(), "left byte for byte");
    }
}

#[test]
fn codex_write_defaults_to_codex_home_else_the_home_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (home, codex_home) = (dir.path().join("home"), dir.path().join("codex-home"));
    let out = codex(dir.path(), &["--key", "k", "--write"], &[("HOME", &home)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(home.join(".codex/config.toml")).unwrap();
    assert_codex_provider(&text.parse().unwrap(), "http://localhost:4000/v1");

    let out = codex(
        dir.path(),
        &["--key", "k", "--write"],
        &[("HOME", &home), ("CODEX_HOME", &codex_home)],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let written = codex_home.join("config.toml");
    assert!(String::from_utf8_lossy(&out.stderr).contains(written.to_str().unwrap()));
    let text = std::fs::read_to_string(&written).unwrap();
    assert_codex_provider(&text.parse().unwrap(), "http://localhost:4000/v1");
}

#[tokio::test]
async fn auth_helper_import_reads_litellms_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("gh");
    std::fs::create_dir_all(&tokens).unwrap();
    std::fs::write(tokens.join("access-token"), "ghu_imported_token\n").unwrap();
    let out = Command::new(BIN)
        .args(["auth-helper", "import"])
        .env("TOLLGATE_DATA_DIR", dir.path())
        .env("GITHUB_COPILOT_TOKEN_DIR", &tokens)
        .env_remove("DATABASE_URL")
        .env_remove("TOLLGATE_CONFIG")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("as the `default` Copilot account"));
    let db = std::fs::read(dir.path().join("tollgate.db")).unwrap();
    assert!(!db.windows(18).any(|w| w == b"ghu_imported_token"), "stored encrypted");
    // The import is audited as the command line's link, without the token.
    let store = tollgate_store::connect(None, dir.path()).await.unwrap();
    let logs = store.audit_logs(tollgate_store::AuditFilter::default()).await.unwrap();
    let seen: Vec<(&str, &str, &str, &str)> = logs
        .iter()
        .map(|r| {
            (r.actor.as_str(), r.action.as_str(), r.object_type.as_str(), r.object_id.as_str())
        })
        .collect();
    assert_eq!(seen, [("cli", "link", "linked_account", "default")]);
    assert!(!serde_json::to_string(&logs).unwrap().contains("ghu_imported_token"));
}

/// Peak resident memory of a process, in bytes (Linux).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

#[tokio::test(flavor = "multi_thread")]
async fn counting_a_huge_prompt_costs_about_its_own_size() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    // Not an Anthropic-format upstream: the count is estimated here, never sent.
    std::fs::write(
        &config,
        "model_list:\n  - model_name: m\n    litellm_params: { model: openai/m, api_base: \"http://127.0.0.1:9/v1\" }\n",
    )
    .unwrap();
    let mut served = Served::start(&config, &[("TOLLGATE_MASTER_KEY", "sk-cli-master-123")]);
    let addr = served.wait_for("proxy listening")["addr"].as_str().unwrap().to_owned();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let count = |text: String| {
        client
            .post(format!("http://{addr}/v1/messages/count_tokens"))
            .bearer_auth("sk-cli-master-123")
            .json(
                &serde_json::json!({"model": "m", "messages": [{"role": "user", "content": text}]}),
            )
            .send()
    };
    // The tokenizer's tables are loaded once, on first use: not what this measures.
    assert_eq!(count("warm up".to_owned()).await.unwrap().status(), 200);
    let before = peak_rss(served.child.id());
    let text = "lorem ipsum dolor sit amet ".repeat(20_000_000 / 27);
    let size = text.len() as u64;
    let resp = count(text).await.unwrap();
    assert_eq!(resp.status(), 200);
    let grown = peak_rss(served.child.id()).saturating_sub(before);
    // The body itself, once; parsing it into values and tokenizing it whole took 14 times.
    assert!(grown < size * 3 / 2, "a {size}-byte prompt took {grown} more bytes at peak");
}
