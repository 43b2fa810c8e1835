//! GitHub Copilot accounts on the proxy side: linked accounts follow the store (an account
//! linked on the auth helper, in this process or another, serves requests within seconds,
//! no restart), and premium-request quota is read periodically for health and metrics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use metrics::gauge;
use serde_json::{Value, json};
use tollgate_providers::copilot::{CopilotService, Quota, fetch_quota};
use tollgate_store::{SecretBox, Store};

/// The provider name linked accounts are stored under.
pub const PROVIDER: &str = "github_copilot";

/// Keeps the Copilot service's accounts equal to the credentials in the store.
#[derive(Debug)]
pub struct AccountSync {
    service: Arc<CopilotService>,
    secret_box: Arc<SecretBox>,
    seen: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl AccountSync {
    /// Syncs `service` from the store with `secret_box`'s key.
    pub fn new(service: Arc<CopilotService>, secret_box: Arc<SecretBox>) -> Self {
        Self { service, secret_box, seen: Mutex::default() }
    }

    /// Reads the stored accounts once: new and changed ones are decrypted and linked,
    /// removed ones unlinked. Returns how many changed.
    pub async fn sync(&self, store: &Store) -> Result<usize, tollgate_store::StoreError> {
        let records = store.list_credentials(PROVIDER).await?;
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let mut changed = 0;
        for r in &records {
            if seen.get(&r.owner) == Some(&r.updated_at) {
                continue;
            }
            match self.secret_box.open_credential(r) {
                Ok(token) => {
                    self.service.set_account(&r.owner, token.into());
                    seen.insert(r.owner.clone(), r.updated_at);
                    changed += 1;
                    tracing::info!(owner = %r.owner, login = r.label.as_deref().unwrap_or("?"), "Copilot account linked");
                }
                Err(e) => {
                    tracing::error!(owner = %r.owner, error = %e, "cannot read a linked Copilot account")
                }
            }
        }
        let gone: Vec<String> =
            seen.keys().filter(|o| !records.iter().any(|r| &r.owner == *o)).cloned().collect();
        for owner in gone {
            self.service.remove_account(&owner);
            seen.remove(&owner);
            changed += 1;
            tracing::info!(%owner, "Copilot account unlinked");
        }
        Ok(changed)
    }

    /// Syncs every `every` until the process ends.
    pub async fn run(self: Arc<Self>, store: Store, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.sync(&store).await {
                tracing::debug!(error = %e, "Copilot accounts not synced: store unavailable");
            }
        }
    }
}

/// Premium-request quota per linked account, cached briefly; and what routing knows of each
/// account's premium requests between reads.
#[derive(Debug, Default)]
pub struct QuotaBoard {
    cache: Mutex<HashMap<String, (Instant, Quota)>>,
    premium: Mutex<HashMap<String, PremiumLeft>>,
}

/// An account's premium requests as routing sees them: what the last read of its quota said
/// was left, less what requests served since used; none once Copilot refused one for quota,
/// until a read says otherwise. `unlimited` also stands for a quota that could not be read,
/// which routing does not go by.
#[derive(Debug, Clone, Copy)]
struct PremiumLeft {
    remaining: f64,
    unlimited: bool,
}

const QUOTA_FRESH: Duration = Duration::from_secs(60);
/// How long a request waits for an account's first quota read before going ahead without it.
const FIRST_READ_WAIT: Duration = Duration::from_secs(2);

impl QuotaBoard {
    /// The quota of `owner`'s account, fetched when the cached figure is older than a minute.
    pub async fn quota(&self, service: &CopilotService, owner: &str) -> Result<Quota, String> {
        if let Some((at, q)) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(owner)
            && at.elapsed() < QUOTA_FRESH
        {
            return Ok(q.clone());
        }
        let account =
            service.account_for(Some(owner)).filter(|a| a.id == owner).ok_or("not linked")?;
        let q = fetch_quota(service.http(), service.github_api_url(), &account.oauth_token)
            .await
            .map_err(|e| e.to_string())?;
        record_gauges(owner, &q);
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(owner.to_owned(), (Instant::now(), q.clone()));
        // An account whose quota shows no premium allowance is not routed by it.
        let left =
            q.premium.as_ref().map_or(PremiumLeft { remaining: 0.0, unlimited: true }, |p| {
                PremiumLeft { remaining: p.remaining, unlimited: p.unlimited }
            });
        self.premium.lock().unwrap_or_else(|e| e.into_inner()).insert(owner.to_owned(), left);
        Ok(q)
    }

    /// Takes `units` premium requests of `owner`'s account for a request about to be sent, if
    /// it has more than `keep` left after them (in one step, so concurrent requests cannot
    /// both take the last ones); else answers what is left. An account whose quota is
    /// unlimited or unknown always gives. The first call for an account reads its quota
    /// (waiting at most two seconds); later ones answer from memory, kept current by the
    /// periodic reads, [`QuotaBoard::give_back`] and [`QuotaBoard::exhausted`].
    pub async fn take(
        &self,
        service: &CopilotService,
        owner: &str,
        units: f64,
        keep: f64,
    ) -> Result<(), f64> {
        let known = self.premium.lock().unwrap_or_else(|e| e.into_inner()).contains_key(owner);
        if !known {
            let read = tokio::time::timeout(FIRST_READ_WAIT, self.quota(service, owner));
            if let Err(e) = read.await.unwrap_or_else(|_| Err("no answer in time".into())) {
                // Not asked again by every request: the periodic read tries again.
                tracing::debug!(%owner, error = %e, "Copilot quota unknown; not routing by it");
                let unknown = PremiumLeft { remaining: 0.0, unlimited: true };
                let mut premium = self.premium.lock().unwrap_or_else(|e| e.into_inner());
                premium.entry(owner.to_owned()).or_insert(unknown);
            }
        }
        let mut premium = self.premium.lock().unwrap_or_else(|e| e.into_inner());
        let Some(left) = premium.get_mut(owner).filter(|l| !l.unlimited) else { return Ok(()) };
        if left.remaining < units + keep {
            return Err(left.remaining.max(0.0));
        }
        left.remaining -= units;
        Ok(())
    }

    /// Gives back `units` [`QuotaBoard::take`] took for a request that was not answered.
    pub fn give_back(&self, owner: &str, units: f64) {
        if let Some(left) = self.premium.lock().unwrap_or_else(|e| e.into_inner()).get_mut(owner) {
            left.remaining += units;
        }
    }

    /// Copilot refused a request on `owner`'s account for quota: none are left until a read
    /// of the quota says otherwise. Answers whether that is news.
    pub fn exhausted(&self, owner: &str) -> bool {
        let used_up = PremiumLeft { remaining: 0.0, unlimited: false };
        let mut premium = self.premium.lock().unwrap_or_else(|e| e.into_inner());
        let before = premium.insert(owner.to_owned(), used_up);
        let news = before.is_none_or(|b| b.unlimited || b.remaining > 0.0);
        if news {
            tracing::info!(%owner, "Copilot premium requests used up; premium models go to fallbacks");
        }
        news
    }

    /// Every linked account's quota, as the `/copilot/quota` answer, with `usage` (see
    /// [`premium_use`]) beside each account it has.
    pub async fn report(
        &self,
        service: &CopilotService,
        owners: &[String],
        usage: Option<&HashMap<String, Value>>,
    ) -> Value {
        let mut accounts = Vec::new();
        for owner in owners {
            let mut entry = match self.quota(service, owner).await {
                Ok(q) => json!({
                    "owner": owner,
                    "plan": q.plan,
                    "reset_date": q.reset_date,
                    "premium_interactions": q.premium.as_ref().map(bucket),
                    "chat": q.chat.as_ref().map(bucket),
                    "completions": q.completions.as_ref().map(bucket),
                }),
                Err(e) => json!({"owner": owner, "error": e}),
            };
            if let Some(usage) = usage {
                entry["premium_use"] = usage.get(owner).cloned().unwrap_or_else(|| no_use(now()));
            }
            accounts.push(entry);
        }
        json!({ "accounts": accounts })
    }

    /// Refreshes every account's quota every `every`, for the metrics.
    pub async fn run(self: Arc<Self>, service: Arc<CopilotService>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            for owner in service.owners() {
                if let Err(e) = self.quota(&service, &owner).await {
                    tracing::debug!(%owner, error = %e, "Copilot quota not read");
                }
            }
        }
    }
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

/// The first day of `now`'s month (UTC): where the premium period being reported began.
fn period_start(now: DateTime<Utc>) -> chrono::NaiveDate {
    use chrono::Datelike;
    now.date_naive().with_day(1).unwrap_or(now.date_naive())
}

/// Entries by amount, largest first (ties by name).
fn ranked(m: &HashMap<String, f64>) -> Vec<(&String, f64)> {
    let mut v: Vec<(&String, f64)> = m.iter().map(|(k, n)| (k, *n)).collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    v
}

fn no_use(now: DateTime<Utc>) -> Value {
    json!({"since": period_start(now), "by_key": [], "by_user": []})
}

/// Premium requests used this calendar month (UTC, the period Copilot's allowance resets on)
/// per key and per user, under the account that served them: a key's own linked account
/// when it has one, else the shared one. Read from the daily rollups; keys are shown by
/// hash, alias and display name, never the key.
pub async fn premium_use(
    store: &Store,
    directory: &crate::access::directory::Directory,
    service: &CopilotService,
) -> Result<HashMap<String, Value>, tollgate_store::StoreError> {
    let since = period_start(now());
    let filter = tollgate_store::RollupFilter { start: Some(since), ..Default::default() };
    let rows = store.daily_spend(filter).await?;
    let shared = service.account_for(None).map(|a| a.id.clone());
    let mut keys: HashMap<String, HashMap<String, f64>> = HashMap::new();
    let mut users: HashMap<String, HashMap<String, f64>> = HashMap::new();
    for r in rows.iter().filter(|r| r.premium_units > 0.0) {
        let own = tollgate_store::key_credential_owner(&r.token_hash);
        let account = match service.account_for(Some(&own)) {
            Some(a) if a.id == own => own,
            _ => match &shared {
                Some(s) => s.clone(),
                None => continue,
            },
        };
        if !r.token_hash.is_empty() {
            *keys.entry(account.clone()).or_default().entry(r.token_hash.clone()).or_default() +=
                r.premium_units;
        }
        if !r.user_id.is_empty() {
            *users.entry(account).or_default().entry(r.user_id.clone()).or_default() +=
                r.premium_units;
        }
    }
    let mut out = HashMap::new();
    for account in keys.keys().chain(users.keys()) {
        if out.contains_key(account) {
            continue;
        }
        let by_key: Vec<Value> = keys
            .get(account)
            .map(ranked)
            .unwrap_or_default()
            .into_iter()
            .map(|(hash, n)| {
                let entry = directory.key(hash);
                let record = entry.as_ref().map(|k| &k.record);
                json!({
                    "token": hash,
                    "key_name": record.map(|r| r.key_name.clone()),
                    "key_alias": record.and_then(|r| r.key_alias.clone()),
                    "user_id": record.and_then(|r| r.user_id.clone()),
                    "premium_requests": n,
                })
            })
            .collect();
        let by_user: Vec<Value> = users
            .get(account)
            .map(ranked)
            .unwrap_or_default()
            .into_iter()
            .map(|(user, n)| json!({"user_id": user, "premium_requests": n}))
            .collect();
        out.insert(account.clone(), json!({"since": since, "by_key": by_key, "by_user": by_user}));
    }
    Ok(out)
}

fn bucket(b: &tollgate_providers::copilot::QuotaBucket) -> Value {
    json!({
        "entitlement": b.entitlement,
        "remaining": b.remaining,
        "percent_remaining": b.percent_remaining,
        "unlimited": b.unlimited,
        "overage_permitted": b.overage_permitted,
    })
}

fn record_gauges(owner: &str, q: &Quota) {
    if let Some(p) = &q.premium {
        gauge!(crate::metrics::COPILOT_PREMIUM_REMAINING, "account" => owner.to_owned())
            .set(p.remaining);
        gauge!(crate::metrics::COPILOT_PREMIUM_ENTITLEMENT, "account" => owner.to_owned())
            .set(p.entitlement);
    }
}
