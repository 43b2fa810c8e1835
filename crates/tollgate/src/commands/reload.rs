//! `tollgate reload`: asks the running proxy to re-read config.yaml.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use tollgate_config::Config;

pub async fn run(config: &Config, url: Option<&str>) -> anyhow::Result<ExitCode> {
    let s = &config.settings;
    let host = match s.listen_host() {
        "0.0.0.0" | "::" | "[::]" | "" => "127.0.0.1",
        h => h,
    };
    let base = url.map_or_else(
        || format!("http://{host}:{}", s.port),
        |u| u.trim_end_matches('/').to_owned(),
    );
    let mut request = tollgate_providers::build_http_client()
        .context("building the HTTP client")?
        .post(format!("{base}/config/reload"))
        .header("content-type", "application/json")
        .body("{}");
    if let Some(key) = &s.master_key {
        request = request.bearer_auth(key.expose());
    }
    let response = request.send().await.with_context(|| format!("reaching the proxy at {base}"))?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let mut out = std::io::stdout();
    if status.is_success() {
        let _ = writeln!(
            out,
            "reloaded {} ({} models)",
            body["config"].as_str().unwrap_or("config.yaml"),
            body["models"]
        );
        for w in body["warnings"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "warning: {}", w.as_str().unwrap_or_default());
        }
        for r in body["restart_needed_for"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "changed, applies at the next start: {}",
                r.as_str().unwrap_or_default()
            );
        }
        Ok(ExitCode::SUCCESS)
    } else {
        let message = body["error"]["message"]
            .as_str()
            .map_or_else(|| format!("HTTP {status}"), str::to_owned);
        let _ = writeln!(std::io::stderr(), "error: {message}");
        Ok(ExitCode::FAILURE)
    }
}
