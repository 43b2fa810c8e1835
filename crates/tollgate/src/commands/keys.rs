//! `tollgate keys create|list|revoke`: key management straight against the store. Running
//! proxies see the change within seconds through the store's change feed.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use tollgate_proxy::access::keys;
use tollgate_store::{KeyFilter, Limits, NewKey, ObjectPermission, Store};

use tollgate_proxy::ops::objects::Audited as _;
use tollgate_proxy::ops::{Actor, Subject, audit_in};

use crate::cli::{KeyCreateArgs, KeysCommand};

/// Who changes keys from the command line, as the audit log names them.
fn cli() -> Actor {
    Actor("cli".to_owned())
}

pub async fn run(store: &Store, cmd: KeysCommand) -> anyhow::Result<ExitCode> {
    let mut out = String::new();
    match cmd {
        KeysCommand::Create(args) => create(store, *args, &mut out).await?,
        KeysCommand::List { user, team, json } => list(store, user, team, json, &mut out).await?,
        KeysCommand::Revoke { keys: given } => {
            let hashes: Vec<String> = given.iter().map(|k| keys::to_hash(k)).collect();
            let mut existing = Vec::new();
            for h in &hashes {
                existing.extend(store.get_key(h).await?);
            }
            let deleted = store.delete_keys(&hashes).await?;
            for k in &existing {
                let subject = Subject { object_type: "key", object_id: &k.token_hash };
                audit_in(store.as_ref(), &cli(), "delete", subject, Some(&k.shown()), None).await;
            }
            let _ = writeln!(out, "revoked {deleted} of {} key(s)", hashes.len());
            if deleted < hashes.len() as u64 {
                std::io::stdout().write_all(out.as_bytes())?;
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

async fn create(store: &Store, a: KeyCreateArgs, out: &mut String) -> anyhow::Result<()> {
    if let Some(d) = &a.budget_duration {
        tollgate_config::parse_period(d)
            .with_context(|| format!("--budget-duration {d:?}: expected e.g. 30d"))?;
    }
    let expires = match &a.duration {
        Some(d) => {
            let p = tollgate_config::parse_period(d)
                .with_context(|| format!("--duration {d:?}: expected e.g. 30d"))?;
            Some(chrono::Utc::now() + chrono::Duration::from_std(p)?)
        }
        None => None,
    };
    let key = keys::generate();
    let record = store
        .create_key(NewKey {
            token_hash: keys::hash(&key),
            key_name: keys::display_name(&key),
            key_alias: a.alias,
            user_id: a.user,
            team_id: a.team,
            models: a.models,
            limits: Limits {
                max_budget: a.max_budget,
                budget_duration: a.budget_duration,
                rpm_limit: a.rpm,
                tpm_limit: a.tpm,
                max_parallel_requests: a.max_parallel,
                max_premium_requests: a.max_premium_requests,
                premium_budget_duration: a.premium_budget_duration,
            },
            expires,
            blocked: false,
            metadata: serde_json::Value::Null,
            permissions: if a.admin {
                serde_json::json!({"admin": true})
            } else {
                serde_json::Value::Null
            },
            object_permission: ObjectPermission {
                // `--mcp-servers ""` is the empty list: no server.
                mcp_servers: a.mcp_servers.map(|names| {
                    names
                        .iter()
                        .map(|n| n.trim())
                        .filter(|n| !n.is_empty())
                        .map(Into::into)
                        .collect()
                }),
                ..ObjectPermission::default()
            },
        })
        .await?;
    let subject = Subject { object_type: "key", object_id: &record.token_hash };
    audit_in(store.as_ref(), &cli(), "create", subject, None, Some(&record.shown())).await;
    let _ = writeln!(out, "{key}");
    let _ = writeln!(
        out,
        "# hash {} (the key is not stored and cannot be shown again)",
        record.token_hash
    );
    Ok(())
}

async fn list(
    store: &Store,
    user_id: Option<String>,
    team_id: Option<String>,
    json: bool,
    out: &mut String,
) -> anyhow::Result<()> {
    let mut all: Vec<tollgate_store::KeyRecord> = Vec::new();
    // Page by keyset: a key created meanwhile cannot shift a page and repeat or hide one.
    let order = tollgate_store::ListOrder::Newest;
    loop {
        let batch = store
            .list_keys(KeyFilter {
                user_id: user_id.clone(),
                team_id: team_id.clone(),
                size: 1000,
                order: Some(order),
                after: all.last().map(|k| k.cursor(order)),
                ..KeyFilter::default()
            })
            .await?;
        let done = batch.len() < 1000;
        all.extend(batch);
        if done {
            break;
        }
    }
    if json {
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    let _ = writeln!(
        out,
        "{:<14} {:<12} {:<20} {:<14} {:<14} {:>22} {:<8} expires",
        "hash", "key", "alias", "user", "team", "spend/budget", "blocked"
    );
    for k in &all {
        let budget = k.limits.max_budget.map_or_else(|| "-".to_owned(), |b| format!("{b:.4}"));
        let _ = writeln!(
            out,
            "{:<14} {:<12} {:<20} {:<14} {:<14} {:>22} {:<8} {}",
            &k.token_hash[..12.min(k.token_hash.len())],
            k.key_name,
            k.key_alias.as_deref().unwrap_or("-"),
            k.user_id.as_deref().unwrap_or("-"),
            k.team_id.as_deref().unwrap_or("-"),
            format!("{:.4}/{budget}", k.spend),
            k.blocked,
            k.expires.map_or_else(|| "never".to_owned(), |e| e.to_rfc3339()),
        );
    }
    let _ = writeln!(out, "{} key(s)", all.len());
    Ok(())
}
