//! `tollgate models`: what the linked GitHub Copilot account offers.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use tollgate_config::Config;
use tollgate_providers::copilot::{CopilotService, DEFAULT_OWNER};
use tollgate_store::Store;

pub async fn run(config: &Config, store: &Store, json: bool) -> anyhow::Result<ExitCode> {
    let secret_box = super::secret_box(config)?;
    let http = tollgate_providers::build_http_client()?;
    let service = CopilotService::new(http, config.settings.github_api_url.clone(), String::new());
    let record = store
        .get_credential("github_copilot", DEFAULT_OWNER)
        .await?
        .context("no GitHub Copilot account is linked yet: run `tollgate serve` and open the /github page on the auth port")?;
    service.set_account(DEFAULT_OWNER, secret_box.open_credential(&record)?.into());
    let models = service.models_for(None).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = String::new();
    if json {
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&*models)?);
    } else {
        let _ = writeln!(
            out,
            "{:<32} {:<16} {:<36} {:>9} {:>10}",
            "id", "vendor", "endpoints", "context", "premium×"
        );
        for m in models.iter() {
            let _ = writeln!(
                out,
                "{:<32} {:<16} {:<36} {:>9} {:>10}",
                m.id,
                m.vendor.as_deref().unwrap_or("-"),
                if m.supported_endpoints.is_empty() {
                    "-".to_owned()
                } else {
                    m.supported_endpoints.join(",")
                },
                m.context_window().map_or_else(|| "-".to_owned(), |c| c.to_string()),
                m.premium_multiplier().map_or_else(|| "-".to_owned(), |x| format!("{x}")),
            );
        }
        let _ = writeln!(out, "{} model(s)", models.len());
    }
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
