//! Subcommands.

mod claude_code;
mod codex;
mod config_check;
mod keys;
mod models;
mod reload;
mod serve;

use std::io::Write;
use std::process::ExitCode;

use tollgate_config::{Config, LogFormat, ProcessEnv};

use anyhow::Context as _;

use crate::cli::{AuthHelperCommand, Cli, Command, ConfigCommand, GlobalArgs, LogFormatArg};

/// Opens the configured store (PostgreSQL from `DATABASE_URL`, else the SQLite file in the
/// data directory) and brings its schema up to date, waiting up to `wait` for the database.
async fn open_store(
    config: &Config,
    wait: std::time::Duration,
) -> anyhow::Result<tollgate_store::Store> {
    let url = config.settings.database_url.as_ref().map(|u| u.expose().clone());
    let shown = url.as_deref().map_or_else(
        || config.settings.data_dir.join(tollgate_store::SQLITE_FILE_NAME).display().to_string(),
        tollgate_store::redact_url,
    );
    let deadline = tokio::time::Instant::now() + wait;
    let store = loop {
        match tollgate_store::connect(url.as_deref(), &config.settings.data_dir).await {
            Ok(s) => break s,
            Err(e @ tollgate_store::StoreError::Invalid(_)) => return Err(e.into()),
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(database = %shown, error = %e, "database not reachable yet; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Err(e) => return Err(anyhow::anyhow!("cannot open the database {shown}: {e}")),
        }
    };
    let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
    tollgate_proxy::migrate_with_retry(&store, remaining)
        .await
        .map_err(|e| anyhow::anyhow!("migrating {shown}: {e}"))?;
    tracing::info!(database = %shown, backend = ?store.backend(), "store ready");
    Ok(store)
}

/// Opens the configured store without waiting for a database server or migrating: for
/// `serve`, which listens at once and migrates in the background.
async fn open_store_lazily(config: &Config) -> anyhow::Result<tollgate_store::Store> {
    let url = config.settings.database_url.as_ref().map(|u| u.expose().clone());
    let shown = url.as_deref().map_or_else(
        || config.settings.data_dir.join(tollgate_store::SQLITE_FILE_NAME).display().to_string(),
        tollgate_store::redact_url,
    );
    let store = tollgate_store::open(url.as_deref(), &config.settings.data_dir)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the database {shown}: {e}"))?;
    tracing::info!(database = %shown, backend = ?store.backend(), "store opened; migrating in the background");
    Ok(store)
}

/// Runs the chosen command.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve::run(load(&cli.global)?, serve::Parts::Both).await,
        Command::Proxy => serve::run(load(&cli.global)?, serve::Parts::Proxy).await,
        Command::AuthHelper { action: None } => {
            serve::run(load(&cli.global)?, serve::Parts::AuthHelper).await
        }
        Command::AuthHelper { action: Some(AuthHelperCommand::Import { owner }) } => {
            let config = load(&cli.global)?;
            let (path, token) = tollgate_auth::import::find_litellm_token(&ProcessEnv)
                .context("no LiteLLM GitHub Copilot token file found (looked at GITHUB_COPILOT_TOKEN_DIR/GITHUB_COPILOT_ACCESS_TOKEN_FILE, default ~/.config/litellm/github_copilot/access-token)")?;
            let store = open_store(&config, std::time::Duration::from_secs(10)).await?;
            let secret_box = secret_box(&config)?;
            tollgate_auth::import::import_token(store.as_ref(), &secret_box, &owner, &token, "cli")
                .await?;
            let _ = writeln!(
                std::io::stdout(),
                "imported {} as the `{owner}` Copilot account",
                path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Check { strict }) => {
            config_check::run(&cli.global, strict).await
        }
        Command::Reload { url } => reload::run(&load(&cli.global)?, url.as_deref()).await,
        Command::Migrate => {
            let config = load(&cli.global)?;
            let _logs = crate::logging::init(config.settings.log_format);
            open_store(&config, std::time::Duration::from_secs(30)).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::ClaudeCode(args) => claude_code::run(&load(&cli.global)?, &args),
        Command::Codex(args) => codex::run(&load(&cli.global)?, &args),
        Command::Models { json } => {
            let config = load(&cli.global)?;
            let store = open_store(&config, std::time::Duration::from_secs(10)).await?;
            models::run(&config, &store, json).await
        }
        Command::Keys(cmd) => {
            let config = load(&cli.global)?;
            let store = open_store(&config, std::time::Duration::from_secs(10)).await?;
            keys::run(&store, cmd).await
        }
    }
}

/// Loads the config and applies command-line overrides.
fn load(args: &GlobalArgs) -> anyhow::Result<Config> {
    let env = ProcessEnv;
    let path = tollgate_config::discover(args.config.as_deref(), &env);
    let mut config = tollgate_config::load(path.as_deref(), &env)?;
    let s = &mut config.settings;
    if let Some(h) = &args.host {
        s.host = Some(h.clone());
    }
    if let Some(p) = args.port {
        s.port = p;
    }
    if let Some(p) = args.auth_port {
        s.auth_port = p;
    }
    match args.log_format {
        Some(LogFormatArg::Json) => s.log_format = LogFormat::Json,
        Some(LogFormatArg::Human) => s.log_format = LogFormat::Human,
        None => {}
    }
    Ok(config)
}

/// The key that encrypts provider credentials: `TOLLGATE_SECRET_KEY`, else one kept in the
/// data directory.
fn secret_box(config: &Config) -> anyhow::Result<std::sync::Arc<tollgate_store::SecretBox>> {
    let key = config.settings.secret_key.as_ref().map(|k| k.expose().as_str());
    Ok(std::sync::Arc::new(tollgate_store::SecretBox::load_or_create(
        key,
        &config.settings.data_dir,
    )?))
}

/// Prints an error for a person on stderr.
pub fn report_error(e: &anyhow::Error) {
    let _ = writeln!(std::io::stderr(), "error: {e:#}");
}
