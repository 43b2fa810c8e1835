//! Finding the external tools and running them with a deadline.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tollgate_testkit::{MockGitHub, TestApp};

/// The master key every e2e app is started with.
pub const MASTER: &str = "sk-e2e-master";

/// How long one Claude Code run may take before the test fails.
pub const CLAUDE_TIMEOUT: Duration = Duration::from_secs(120);

/// The repository root.
pub fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// An executable named by `env`, else at `fallback` (relative to the repository root); fails
/// the test with `install` when neither exists.
fn tool(env: &str, fallback: &str, what: &str, install: &str) -> PathBuf {
    let path = match std::env::var_os(env) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => {
            let p = Path::new(fallback);
            if p.is_absolute() { p.to_path_buf() } else { repo_root().join(p) }
        }
    };
    assert!(
        path.exists(),
        "{what} not found at {} (set {env} or install it: {install})",
        path.display()
    );
    path
}

/// The Claude Code CLI: `$TOLLGATE_CLAUDE_BIN`, else `.tools/node_modules/.bin/claude`.
pub fn claude_bin() -> PathBuf {
    tool(
        "TOLLGATE_CLAUDE_BIN",
        ".tools/node_modules/.bin/claude",
        "the Claude Code CLI",
        &format!(
            "`npm install --prefix .tools @anthropic-ai/claude-code@{}` at the repository root, or run scripts/test",
            pinned("@anthropic-ai/claude-code")
        ),
    )
}

/// The Codex CLI: `$TOLLGATE_CODEX_BIN`, else `.tools/node_modules/.bin/codex`.
pub fn codex_bin() -> PathBuf {
    tool(
        "TOLLGATE_CODEX_BIN",
        ".tools/node_modules/.bin/codex",
        "the Codex CLI",
        &format!(
            "`npm install --prefix .tools @openai/codex@{}` at the repository root, or run scripts/test",
            pinned("@openai/codex")
        ),
    )
}

/// Chromium: `$TOLLGATE_CHROMIUM`, else `/usr/bin/chromium`.
pub fn chromium_bin() -> PathBuf {
    tool(
        "TOLLGATE_CHROMIUM",
        "/usr/bin/chromium",
        "Chromium",
        "`apt-get install chromium` (Debian), or run .ci/run",
    )
}

/// The `node_modules` holding `playwright-core`: `$TOLLGATE_NODE_MODULES`, else
/// `.tools/node_modules`.
pub fn node_modules() -> PathBuf {
    let dir = match std::env::var_os("TOLLGATE_NODE_MODULES") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => repo_root().join(".tools/node_modules"),
    };
    assert!(
        dir.join("playwright-core/package.json").exists(),
        "playwright-core is not installed in {} (set TOLLGATE_NODE_MODULES or install it: \
         `npm install --prefix .tools playwright-core@{}` at the repository root, or run scripts/test)",
        dir.display(),
        pinned("playwright-core")
    );
    dir
}

/// Node.js, which runs the browser script.
pub fn node_bin() -> PathBuf {
    let ok = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "`node` is not on PATH (install it: `apt-get install nodejs npm`)");
    PathBuf::from("node")
}

/// The version `scripts/test` pins for an npm package (read from the script itself, so the
/// install hint and the installer never disagree).
fn pinned(package: &str) -> String {
    let script = std::fs::read_to_string(repo_root().join("scripts/test")).unwrap_or_default();
    let needle = format!("{package}@");
    script
        .split(|c: char| c.is_whitespace() || "()=\"'".contains(c))
        .find_map(|w| w.strip_prefix(&needle).map(str::to_owned))
        .unwrap_or_else(|| "<version pinned in scripts/test>".to_owned())
}

/// What a finished process left behind.
pub struct Output {
    /// The exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
    /// Whether the deadline killed it.
    pub timed_out: bool,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exit code {:?}{} after {:.1}s\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code,
            if self.timed_out { " (timed out)" } else { "" },
            self.took.as_secs_f64(),
            self.stdout,
            self.stderr
        )
    }
}

/// Runs `cmd` to completion (stdin closed) under coreutils' `timeout`, off the async runtime
/// so the in-process tollgate keeps serving it.
pub async fn run(cmd: Command, deadline: Duration) -> Output {
    let program = cmd.get_program().to_owned();
    let mut wrapped = Command::new("timeout");
    wrapped.arg("--kill-after=5").arg(format!("{}", deadline.as_secs())).arg(&program);
    wrapped.args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        wrapped.current_dir(dir);
    }
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => wrapped.env(k, v),
            None => wrapped.env_remove(k),
        };
    }
    wrapped.stdin(Stdio::null());
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || wrapped.output())
        .await
        .expect("the waiting thread")
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.to_string_lossy()));
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: started.elapsed(),
        timed_out: matches!(out.status.code(), Some(124 | 137)),
    }
}

/// A scratch home and working directory for one Claude Code run.
pub struct Scratch {
    pub home: tempfile::TempDir,
    pub work: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Self {
            home: tempfile::Builder::new().prefix("tollgate-e2e-home-").tempdir().unwrap(),
            work: tempfile::Builder::new().prefix("tollgate-e2e-work-").tempdir().unwrap(),
        }
    }

    /// The canonical working directory (what Claude Code sees as its cwd).
    pub fn work_dir(&self) -> PathBuf {
        self.work.path().canonicalize().unwrap()
    }
}

/// How Claude Code presents the master key.
#[derive(Clone, Copy)]
pub enum Credential {
    /// `ANTHROPIC_AUTH_TOKEN`: sent as `Authorization: Bearer`.
    AuthToken,
    /// `ANTHROPIC_API_KEY`: sent as `x-api-key`.
    ApiKey,
}

/// `claude -p PROMPT ARGS` in `scratch`, against `app`, asking for `model`, with nothing of
/// this process's environment but `PATH`, `LANG` and `TMPDIR`.
pub async fn claude(
    app: &TestApp,
    model: &str,
    prompt: &str,
    scratch: &Scratch,
    credential: Credential,
    args: &[&str],
) -> Output {
    claude_with_env(app, model, prompt, scratch, credential, args, &[]).await
}

/// [`claude`] with `env` set too.
pub async fn claude_with_env(
    app: &TestApp,
    model: &str,
    prompt: &str,
    scratch: &Scratch,
    credential: Credential,
    args: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let mut cmd = Command::new(claude_bin());
    cmd.arg("-p").arg(prompt).args(args);
    cmd.current_dir(scratch.work_dir());
    cmd.env_clear();
    for keep in ["PATH", "LANG", "TMPDIR"] {
        if let Some(v) = std::env::var_os(keep) {
            cmd.env(keep, v);
        }
    }
    cmd.env("HOME", scratch.home.path())
        .env("ANTHROPIC_BASE_URL", app.base_url())
        .env(
            match credential {
                Credential::AuthToken => "ANTHROPIC_AUTH_TOKEN",
                Credential::ApiKey => "ANTHROPIC_API_KEY",
            },
            MASTER,
        )
        .env("ANTHROPIC_MODEL", model)
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .env("DISABLE_TELEMETRY", "1")
        .env("DISABLE_ERROR_REPORTING", "1");
    cmd.envs(env.iter().copied());
    run(cmd, CLAUDE_TIMEOUT).await
}

/// tollgate pointed at the GitHub/Copilot stand-in.
pub async fn copilot_app(gh: &MockGitHub, yaml: &str) -> TestApp {
    let github = gh.github_url();
    let api = gh.api_url();
    TestApp::spawn_with_env(
        yaml,
        &[
            ("TOLLGATE_MASTER_KEY", MASTER),
            ("TOLLGATE_GITHUB_URL", github.as_str()),
            ("TOLLGATE_GITHUB_API_URL", api.as_str()),
        ],
    )
    .await
    .unwrap()
}

/// A process started by [`spawn_lines`]: its stdout arrives line by line while it runs.
pub struct Running {
    pub lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    finished: tokio::task::JoinHandle<Output>,
}

impl Running {
    /// The next stdout line starting with `prefix` (the rest of it), within `wait`; `None`
    /// when the process closed its stdout or the wait ran out first.
    pub async fn line_starting(&mut self, prefix: &str, wait: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.recv()).await.ok()??;
            if let Some(rest) = line.strip_prefix(prefix) {
                return Some(rest.to_owned());
            }
        }
    }

    /// Waits for the process to end (its own deadline bounds this).
    pub async fn finish(self) -> Output {
        self.finished.await.expect("the waiting thread")
    }
}

/// Starts `program args` (stdin closed) under coreutils' `timeout`, forwarding each stdout
/// line as it comes; [`Running::finish`] returns everything it printed.
pub fn spawn_lines(
    program: &Path,
    args: &[&str],
    envs: &[(&str, &Path)],
    deadline: Duration,
) -> Running {
    use std::io::{BufRead, Read};

    let mut cmd = Command::new("timeout");
    cmd.arg("--kill-after=5").arg(deadline.as_secs().to_string()).arg(program).args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
    let finished = tokio::task::spawn_blocking(move || {
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let mut out = String::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            out.push_str(&line);
            out.push('\n');
            let _ = tx.send(line);
        }
        let status = child.wait().expect("wait for the child");
        let code = status.code();
        Output {
            code,
            stdout: out,
            stderr: err_reader.join().unwrap_or_default(),
            took: started.elapsed(),
            timed_out: matches!(code, Some(124 | 137)),
        }
    });
    Running { lines, finished }
}
