//! Process-wide settings: listen addresses, credentials, limits and logging.

use std::path::PathBuf;
use std::time::Duration;

use crate::Secret;

/// Default limit on a request body: large enough for prompts with several images.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 50 * 1024 * 1024;
/// Default `TOLLGATE_GITHUB_URL`: where the device flow runs.
pub const DEFAULT_GITHUB_URL: &str = "https://github.com";
/// Default `TOLLGATE_GITHUB_API_URL`: the Copilot token exchange and quota.
pub const DEFAULT_GITHUB_API_URL: &str = "https://api.github.com";
/// Default upstream timeout when neither the model nor the settings set one (LiteLLM's).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
/// Default for [`Settings::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default for [`Settings::body_read_timeout`].
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// Settings that come from the environment and `*_settings` sections.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listen address for both servers as configured (`TOLLGATE_HOST`, `--host`); unset, see
    /// [`Settings::listen_host`].
    pub host: Option<String>,
    /// Proxy port (4000).
    pub port: u16,
    /// Auth helper port (4001).
    pub auth_port: u16,
    /// The admin key.
    pub master_key: Option<Secret<String>>,
    /// A shared token accepted like a key.
    pub static_token: Option<Secret<String>>,
    /// Largest accepted request body in bytes.
    pub max_request_bytes: usize,
    /// Default upstream timeout.
    pub request_timeout: Duration,
    /// Longest a client may take to send a request's headers; the connection is closed after.
    pub header_read_timeout: Duration,
    /// Longest a client may take to send a request's body; 408 after.
    pub body_read_timeout: Duration,
    /// Default for `drop_params` on every model.
    pub drop_params: bool,
    /// Log format.
    pub log_format: LogFormat,
    /// `DATABASE_URL`, when set.
    pub database_url: Option<Secret<String>>,
    /// Where local state lives.
    pub data_dir: PathBuf,
    /// Keep (redacted) request and response bodies in spend records.
    pub store_prompts: bool,
    /// Raw spend records older than this are deleted (rollups are kept).
    pub spend_log_retention: Option<Duration>,
    /// `CLAUDE_OAUTH_TOKENS`: Claude OAuth tokens used in turn for Anthropic deployments
    /// without a key of their own.
    pub claude_oauth_tokens: Vec<Secret<String>>,
    /// `CLAUDE_TOKEN_MODE=passthrough`: use the client's own Claude token when it sends one.
    pub claude_passthrough: bool,
    /// `CLAUDE_TOKEN_COOLDOWN`: how long a pooled token rests after a 429 (default 60 s).
    pub claude_token_cooldown: Duration,
    /// `TOLLGATE_SECRET_KEY`: encrypts provider credentials at rest.
    pub secret_key: Option<Secret<String>>,
    /// GitHub itself, for the device flow (`TOLLGATE_GITHUB_URL`), without a trailing `/`.
    pub github_url: String,
    /// GitHub's API, for the Copilot token exchange and quota (`TOLLGATE_GITHUB_API_URL`),
    /// without a trailing `/`.
    pub github_api_url: String,
    /// `UI_USERNAME`: the admin UI's sign-in name (default `admin`).
    pub ui_username: Option<String>,
    /// `UI_PASSWORD`: the admin UI's password for [`Settings::ui_username`].
    pub ui_password: Option<Secret<String>>,
    /// `SERVER_ROOT_PATH`: a path prefix every route is served under (`/tollgate`), or empty.
    pub server_root_path: String,
    /// Redis for counters shared by replicas (`REDIS_URL`, or `REDIS_HOST`/`REDIS_PORT`/
    /// `REDIS_PASSWORD`; `router_settings.redis_*`), as a `redis://` URL. `None`: every
    /// process counts its own limits.
    pub redis_url: Option<Secret<String>>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            host: None,
            port: 4000,
            auth_port: 4001,
            master_key: None,
            static_token: None,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            drop_params: false,
            log_format: LogFormat::Human,
            database_url: None,
            data_dir: PathBuf::from("./tollgate-data"),
            store_prompts: false,
            spend_log_retention: None,
            claude_oauth_tokens: Vec::new(),
            claude_passthrough: false,
            claude_token_cooldown: Duration::from_secs(60),
            secret_key: None,
            github_url: DEFAULT_GITHUB_URL.to_owned(),
            github_api_url: DEFAULT_GITHUB_API_URL.to_owned(),
            redis_url: None,
            ui_username: None,
            ui_password: None,
            server_root_path: String::new(),
        }
    }
}

impl Settings {
    /// Whether neither a master key nor a static token is configured. Every caller on this
    /// machine is then the admin, and nobody else is served.
    pub fn is_open(&self) -> bool {
        self.master_key.is_none() && self.static_token.is_none()
    }

    /// The address both servers listen on: the configured [`Settings::host`]; else loopback
    /// while [`Settings::is_open`], since only this machine is served then anyway; else all
    /// interfaces.
    pub fn listen_host(&self) -> &str {
        match &self.host {
            Some(host) => host,
            None if self.is_open() => "127.0.0.1",
            None => "0.0.0.0",
        }
    }
}
