//! `tollgate serve`, `tollgate proxy`, `tollgate auth-helper`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tollgate_config::Config;
use tollgate_proxy::{Gateway, GatewayOptions};

/// Which servers to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parts {
    Both,
    Proxy,
    AuthHelper,
}

pub async fn run(config: Config, parts: Parts) -> anyhow::Result<ExitCode> {
    let _logs = crate::logging::init(config.settings.log_format);
    announce(&config);
    let settings = &config.settings;
    let limits = tollgate_proxy::ServeLimits::from_settings(settings);

    let mut servers = tokio::task::JoinSet::new();
    let http = tollgate_providers::build_http_client().context("building the HTTP client")?;
    // Both servers listen at once, database or not: the proxy serves keys from its snapshot
    // and keeps spend on disk until the store, migrated in the background, answers.
    let store = super::open_store_lazily(&config).await?;
    let secret_box = super::secret_box(&config)?;
    let mut gateway = None;
    if parts != Parts::AuthHelper {
        tollgate_proxy::metrics::install();
        let started = Gateway::start(
            &config,
            http.clone(),
            store.clone(),
            secret_box.clone(),
            GatewayOptions::default(),
        )
        .await
        .context("starting the gateway")?;
        let app =
            tollgate_proxy::router_with_ui(started.state.clone(), Some(tollgate_admin::router()));
        reload_on_hangup(started.state.clone());
        gateway = Some(started);
        let addr = format!("{}:{}", settings.listen_host(), settings.port);
        let listener = TcpListener::bind(&addr).await.with_context(|| format!("binding {addr}"))?;
        tracing::info!(addr = %listener.local_addr()?, "proxy listening");
        servers.spawn(tollgate_proxy::serve(listener, app, shutdown_signal(), limits));
    }
    if parts == Parts::AuthHelper {
        let store = store.clone();
        tokio::spawn(async move { tollgate_proxy::migrate_until_done(&store).await });
    }
    if parts != Parts::Proxy {
        let auth = tollgate_auth::AuthState::new(
            settings,
            store,
            http,
            secret_box,
            settings.github_url.clone(),
            settings.github_api_url.clone(),
        );
        let addr = format!("{}:{}", settings.listen_host(), settings.auth_port);
        let listener = TcpListener::bind(&addr).await.with_context(|| format!("binding {addr}"))?;
        tracing::info!(addr = %listener.local_addr()?, "auth helper listening");
        servers.spawn(tollgate_proxy::serve(
            listener,
            tollgate_auth::router(auth),
            shutdown_signal(),
            limits,
        ));
    }
    while let Some(done) = servers.join_next().await {
        done.context("server task")?.context("server")?;
    }
    if let Some(g) = gateway {
        let report = g.shutdown(Duration::from_secs(10)).await;
        tracing::info!(written = report.written, spooled = report.spooled, "spend writer drained");
    }
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Start-up messages: config warnings, deployments this build cannot serve, where the servers
/// listen and why, and a loud notice when no credential protects the proxy.
fn announce(config: &Config) {
    match &config.source {
        Some(p) => {
            tracing::info!(config = %p.display(), models = config.models.len(), "config loaded")
        }
        None => tracing::info!("no config file: every model name is served by GitHub Copilot"),
    }
    for d in &config.diagnostics {
        tracing::warn!("config: {d}");
    }
    let settings = &config.settings;
    let host = settings.listen_host();
    match (&settings.host, settings.is_open()) {
        (Some(_), _) => {
            tracing::info!(host, "listening on {host}, as set by TOLLGATE_HOST or --host")
        }
        (None, true) => tracing::info!(
            host,
            "listening on {host} only: no master key is set, so only this machine may use \
             the gateway. Set TOLLGATE_MASTER_KEY, and TOLLGATE_HOST=0.0.0.0, to serve others"
        ),
        (None, false) => tracing::info!(
            host,
            "listening on all interfaces ({host}): a key protects the gateway. Set \
             TOLLGATE_HOST to listen on one address only"
        ),
    }
    if settings.is_open() {
        tracing::warn!(
            "NO MASTER KEY IS SET: the proxy accepts requests only from this machine, without \
             authentication, addressed to localhost or a loopback address, and from browsers \
             only on its own pages. Set TOLLGATE_MASTER_KEY (or general_settings.master_key) \
             to serve other machines."
        );
    }
}

/// SIGHUP re-reads config.yaml, as `tollgate reload` and `POST /config/reload` do.
fn reload_on_hangup(state: tollgate_proxy::state::AppState) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("SIGHUP cannot be watched; reload with POST /config/reload");
            return;
        };
        let actor = tollgate_proxy::ops::Actor("signal:SIGHUP".to_owned());
        while hup.recv().await.is_some() {
            // The outcome, either way, is logged by the reload itself.
            let _ = tollgate_proxy::ops::reload_config(&state, &actor).await;
        }
    });
    #[cfg(not(unix))]
    let _ = state;
}

/// Resolves on Ctrl-C or SIGTERM, so in-flight requests finish before exit.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
