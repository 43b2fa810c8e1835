//! `tollgate config check`: validates the config and shows what it resolves to.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use tollgate_config::{Config, ModelEntry};
use tollgate_router::{Origin, Router};

use crate::cli::GlobalArgs;

/// The stored models, built as the proxy builds them; `None` when there is no database to
/// read (no `DATABASE_URL` and no SQLite file yet).
async fn stored_models(config: &Config, warnings: &mut Vec<String>) -> Option<Vec<ModelEntry>> {
    let s = &config.settings;
    let url = s.database_url.as_ref().map(|u| u.expose().clone());
    if url.is_none() && !s.data_dir.join(tollgate_store::SQLITE_FILE_NAME).is_file() {
        return None;
    }
    let read = async {
        let store = tollgate_store::connect(url.as_deref(), &s.data_dir).await?;
        let sb = super::secret_box(config)
            .map_err(|e| tollgate_store::StoreError::Crypto(e.to_string()))?;
        let credentials = tollgate_proxy::models::load_credentials(&store, &sb).await?;
        let mut out = Vec::new();
        for r in store.list_models().await? {
            let built = tollgate_proxy::models::open_record(&sb, &r)
                .map_err(|e| e.to_string())
                .and_then(|params| {
                    tollgate_proxy::models::build_entry(
                        &r.model_id,
                        &r.model_name,
                        &params,
                        &r.model_info,
                        &credentials,
                        config,
                    )
                    .map_err(|e| e.to_string())
                });
            match built {
                Ok(b) => {
                    warnings.extend(
                        b.warnings.iter().map(|w| format!("stored model `{}`: {w}", r.model_id)),
                    );
                    out.push(b.entry);
                }
                Err(e) => {
                    warnings.push(format!("stored model `{}` is not served: {e}", r.model_id))
                }
            }
        }
        Ok::<_, tollgate_store::StoreError>(out)
    };
    match tokio::time::timeout(std::time::Duration::from_secs(10), read).await {
        Ok(Ok(models)) => Some(models),
        Ok(Err(e)) => {
            warnings.push(format!("stored models not read: {e}"));
            None
        }
        Err(_) => {
            warnings
                .push("stored models not read: the database did not answer within 10 s".to_owned());
            None
        }
    }
}

/// The semantic filter's embedding model must be one the proxy serves; models stored in the
/// database count, so this is a warning (a model may be added there later), not an error.
fn semantic_filter_warnings(config: &Config, catalog: &tollgate_router::Catalog) -> Vec<String> {
    let Some(filter) = &config.mcp.semantic_filter else {
        return Vec::new();
    };
    let model = &filter.embedding_model;
    match catalog.resolve(model) {
        None => vec![format!(
            "`mcp_semantic_tool_filter.embedding_model` `{model}` resolves to no model; tool lists \
             will be served unfiltered"
        )],
        Some(route) => {
            let declared: Vec<&str> = route
                .group
                .deployments
                .iter()
                .filter_map(|d| d.entry.described.mode.as_deref())
                .collect();
            if declared.len() == route.group.deployments.len()
                && !declared.is_empty()
                && declared.iter().all(|m| *m != "embedding")
            {
                vec![format!(
                    "`mcp_semantic_tool_filter.embedding_model` `{model}` is declared as mode \
                     `{}`, not `embedding`",
                    declared[0]
                )]
            } else {
                Vec::new()
            }
        }
    }
}

pub async fn run(args: &GlobalArgs, strict: bool) -> anyhow::Result<ExitCode> {
    let config = super::load(args)?;
    let mut store_warnings = Vec::new();
    let stored = stored_models(&config, &mut store_warnings).await;
    let router = Router::build(&config, stored.clone().unwrap_or_default(), None);
    let catalog = router.catalog();
    let mut chain_warnings = Vec::new();
    let mut out = String::new();
    let source = config
        .source
        .as_ref()
        .map_or_else(|| "none (defaults)".to_owned(), |p| p.display().to_string());
    let _ = writeln!(out, "config: {source}");
    if config.diagnostics.is_empty() {
        let _ = writeln!(out, "warnings: none");
    } else {
        let _ = writeln!(out, "warnings:");
        for d in &config.diagnostics {
            let _ = writeln!(out, "  - {d}");
        }
    }
    let _ = writeln!(out, "model groups:");
    for name in catalog.group_names() {
        let Some(group) = catalog.group(name) else {
            continue;
        };
        let kind = if name.contains('*') { " (pattern)" } else { "" };
        let _ = writeln!(out, "  {name}{kind}");
        for d in &group.deployments {
            let e = &d.entry;
            let base = e.api_base.as_deref().or(e.provider.default_api_base()).unwrap_or("-");
            let origin = match d.origin {
                Origin::Config => "config",
                Origin::Stored => "stored",
            };
            let _ = write!(
                out,
                "    -> {} via {} at {base} [{origin}, id {}]",
                e.model,
                e.provider.prefix(),
                d.id()
            );
            if e.weight != 1.0 {
                let _ = write!(out, ", weight {}", e.weight);
            }
            if let Some(t) = e.timeout {
                let _ = write!(out, ", timeout {}s", t.as_secs_f64());
            }
            let _ = writeln!(out);
        }
        if let Some(route) = catalog.resolve(name) {
            let cascade = router.cascade(name).unwrap_or_default();
            if cascade.len() > 1 {
                let names: Vec<&str> = cascade.iter().map(|r| r.name()).collect();
                let _ = writeln!(out, "    fallbacks: {}", names.join(" -> "));
            }
            let chain = router.chain_for(&route, name);
            for next in &chain {
                match catalog.resolve(next) {
                    None => chain_warnings.push(format!(
                        "fallback `{next}` of `{name}` resolves to no model; it will be skipped"
                    )),
                    Some(r) if r.group.name == name => chain_warnings.push(format!(
                        "`{name}` lists itself as a fallback; it is tried only once"
                    )),
                    Some(r) => {
                        let back = router.chain_for(&r, next);
                        if back.iter().any(|b| b == name) {
                            chain_warnings.push(format!(
                                "`{name}` and `{next}` fall back to each other; each request tries each once"
                            ));
                        }
                    }
                }
            }
        }
    }
    let mcp_warnings = semantic_filter_warnings(&config, catalog);
    match &stored {
        Some(m) => {
            let _ = writeln!(out, "stored models: {}", m.len());
        }
        None if store_warnings.is_empty() => {
            let _ = writeln!(out, "stored models: no database to read");
        }
        None => {}
    }
    let rs = &config.router;
    let _ = writeln!(
        out,
        "router: strategy {:?}, num_retries {}, allowed_fails {}, cooldown {}s, max_fallbacks {}",
        rs.strategy,
        rs.num_retries,
        rs.allowed_fails,
        rs.cooldown_time.as_secs_f64(),
        rs.max_fallbacks
    );
    if !store_warnings.is_empty() {
        let _ = writeln!(out, "stored model warnings:");
        for w in &store_warnings {
            let _ = writeln!(out, "  - {w}");
        }
    }
    if !chain_warnings.is_empty() {
        let _ = writeln!(out, "fallback warnings:");
        for w in &chain_warnings {
            let _ = writeln!(out, "  - {w}");
        }
    }
    if let Some(f) = &config.mcp.semantic_filter {
        let _ = writeln!(
            out,
            "mcp semantic tool filter: embedding model `{}`, top_k {}{}",
            f.embedding_model,
            f.top_k,
            f.similarity_threshold.map_or_else(String::new, |t| format!(", similarity >= {t}"))
        );
    }
    if !mcp_warnings.is_empty() {
        let _ = writeln!(out, "mcp warnings:");
        for w in &mcp_warnings {
            let _ = writeln!(out, "  - {w}");
        }
    }
    let s = &config.settings;
    let set = |b: bool| if b { "set" } else { "not set" };
    let _ = writeln!(
        out,
        "settings: master key {}, static token {}, listen {}:{} (auth helper {}), body limit {} bytes",
        set(s.master_key.is_some()),
        set(s.static_token.is_some()),
        s.listen_host(),
        s.port,
        s.auth_port,
        s.max_request_bytes
    );
    // The host and port only: the URL may carry a password.
    let redis = s.redis_url.as_ref().map_or_else(
        || "not configured (each process counts its own rate limits)".to_owned(),
        |u| {
            let rest = u.expose().split_once("://").map_or("", |(_, r)| r);
            let at = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            format!("redis://{} (rate limits and cooldowns shared by replicas)", at)
        },
    );
    let _ = writeln!(out, "redis: {redis}");
    let verdict = if strict
        && !(config.diagnostics.is_empty()
            && chain_warnings.is_empty()
            && store_warnings.is_empty()
            && mcp_warnings.is_empty())
    {
        "FAILED (--strict and there are warnings)"
    } else {
        "OK"
    };
    let _ = writeln!(out, "{verdict}");
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(if verdict == "OK" { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
