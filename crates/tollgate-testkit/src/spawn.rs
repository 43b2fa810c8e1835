//! Running tollgate in-process on port 0, for black-box tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tollgate_config::{Config, MapEnv, Secret};
use tollgate_proxy::{AppState, Gateway, GatewayOptions};
use tollgate_store::{ShutdownReport, Store};

/// A tollgate proxy running in the test's process on an ephemeral port, with its own
/// store: a fresh SQLite file by default, or a database URL given in the config.
#[derive(Debug)]
pub struct TestApp {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The validated config it runs on.
    pub config: Config,
    /// Shared state, for looking inside (store, directory, writer).
    pub state: AppState,
    /// Where the auth helper (the `/github` linking page) listens.
    pub auth_addr: SocketAddr,
    secret_box: Arc<tollgate_store::SecretBox>,
    gateway: Option<Gateway>,
    shutdown: Option<oneshot::Sender<()>>,
    /// Keeps the SQLite file and spool directory alive as long as the app.
    _data_dir: tempfile::TempDir,
}

/// Background intervals short enough for tests to observe budget resets and cache updates.
pub fn fast_options() -> GatewayOptions {
    GatewayOptions {
        directory_poll: Duration::from_millis(100),
        reconcile: Duration::from_secs(5),
        budget_reset_every: Duration::from_millis(200),
        upkeep_every: Duration::from_secs(3600),
        flush_interval: Duration::from_millis(50),
        account_sync: Duration::from_millis(100),
        spend_windows_every: Duration::from_secs(60),
    }
}

impl TestApp {
    /// Starts the proxy on `yaml` with no environment variables.
    pub async fn spawn(yaml: &str) -> anyhow::Result<Self> {
        Self::spawn_with_env(yaml, &[]).await
    }

    /// Starts the proxy on `yaml`, with `env` as the only environment variables it sees.
    pub async fn spawn_with_env(yaml: &str, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let env = MapEnv::from_pairs(env.iter().copied());
        let config = tollgate_config::from_yaml_str(yaml, None, &env)?;
        Self::spawn_config(config).await
    }

    /// Starts the proxy on `yaml` with `env`, storing in the database at `database_url`.
    pub async fn spawn_with_database(
        yaml: &str,
        env: &[(&str, &str)],
        database_url: &str,
    ) -> anyhow::Result<Self> {
        Self::spawn_with_database_and_options(yaml, env, database_url, fast_options()).await
    }

    /// [`TestApp::spawn_with_database`] with the background intervals given, e.g. the
    /// production defaults, for a test that measures what they allow.
    pub async fn spawn_with_database_and_options(
        yaml: &str,
        env: &[(&str, &str)],
        database_url: &str,
        options: GatewayOptions,
    ) -> anyhow::Result<Self> {
        let env = MapEnv::from_pairs(env.iter().copied());
        let mut config = tollgate_config::from_yaml_str(yaml, None, &env)?;
        config.settings.database_url = Some(Secret::new(database_url.to_owned()));
        Self::spawn_config_with_options(config, options).await
    }

    /// Starts the proxy on a config built by the caller.
    pub async fn spawn_config(config: Config) -> anyhow::Result<Self> {
        Self::spawn_config_with_options(config, fast_options()).await
    }

    /// Starts the proxy on a config built by the caller, with these background intervals.
    pub async fn spawn_config_with_options(
        mut config: Config,
        options: GatewayOptions,
    ) -> anyhow::Result<Self> {
        let data_dir = tempfile::Builder::new().prefix("tollgate-test-").tempdir()?;
        config.settings.data_dir = data_dir.path().to_path_buf();
        tollgate_proxy::metrics::install();
        let http = tollgate_providers::build_http_client()?;
        let url = config.settings.database_url.as_ref().map(|u| u.expose().clone());
        let store = tollgate_store::connect(url.as_deref(), &config.settings.data_dir).await?;
        store.migrate().await?;
        let secret_box = Arc::new(tollgate_store::SecretBox::load_or_create(
            config.settings.secret_key.as_ref().map(|k| k.expose().as_str()),
            &config.settings.data_dir,
        )?);
        let gateway = Gateway::start(&config, http, store, secret_box.clone(), options).await?;
        let state = gateway.state.clone();
        let app = tollgate_proxy::router_with_ui(state.clone(), Some(tollgate_admin::router()));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let (auth_tx, auth_rx) = oneshot::channel::<()>();
        let limits = tollgate_proxy::ServeLimits::from_settings(&config.settings);
        tokio::spawn(tollgate_proxy::serve(
            listener,
            app,
            async move {
                let _ = rx.await;
                let _ = auth_tx.send(());
            },
            limits,
        ));
        let auth = tollgate_auth::AuthState::new(
            &config.settings,
            state.store().clone(),
            tollgate_providers::build_http_client()?,
            secret_box.clone(),
            config.settings.github_url.clone(),
            config.settings.github_api_url.clone(),
        );
        let auth_listener = TcpListener::bind("127.0.0.1:0").await?;
        let auth_addr = auth_listener.local_addr()?;
        tokio::spawn(tollgate_proxy::serve(
            auth_listener,
            tollgate_auth::router(auth),
            async {
                let _ = auth_rx.await;
            },
            limits,
        ));
        let app = Self {
            addr,
            config,
            state,
            auth_addr,
            secret_box,
            gateway: Some(gateway),
            shutdown: Some(tx),
            _data_dir: data_dir,
        };
        app.wait_until_keys_loaded().await;
        Ok(app)
    }

    /// Waits (up to 10 s) until the key directory has loaded.
    pub async fn wait_until_keys_loaded(&self) {
        for _ in 0..1000 {
            if self.state.directory().is_loaded() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        self.state.store()
    }

    /// Waits until the spend writer has written at least `n` records in total, up to
    /// `timeout`; returns how many it had written.
    pub async fn wait_for_spend_written(&self, n: u64, timeout: Duration) -> u64 {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let written = self.state.sink().writer.stats().written;
            if written >= n || tokio::time::Instant::now() >= deadline {
                return written;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The URL of `path` on the auth helper.
    pub fn auth_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.auth_addr)
    }

    /// Links a GitHub account for `owner` (`default`, or `key:<hash>`) straight in the store,
    /// as the auth helper does, and waits until the proxy serves with it.
    pub async fn link_copilot(&self, owner: &str, oauth_token: &str) -> anyhow::Result<()> {
        let sealed = self.secret_box.seal_credential("github_copilot", owner, None, oauth_token)?;
        self.store().put_credential(sealed).await?;
        for _ in 0..300 {
            let linked = self.state.providers().copilot().account_for(Some(owner));
            if linked.is_some_and(|a| a.id == owner && a.oauth_token.expose() == oauth_token) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        anyhow::bail!("the proxy never picked up the linked account")
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The URL of `path` on this proxy.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops serving and drains the spend writer.
    pub async fn shutdown(mut self, timeout: Duration) -> Option<ShutdownReport> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.gateway.take() {
            Some(g) => Some(g.shutdown(timeout).await),
            None => None,
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
