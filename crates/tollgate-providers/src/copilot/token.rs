//! The Copilot token exchange: a GitHub OAuth token buys a Copilot token that lives about
//! 30 minutes. Tokens are cached per account and read without a lock; one due for refresh is
//! still served while a single background exchange replaces it, and only callers that find no
//! valid token wait, together, on one exchange.
//!
//! For the console, [`TokenManager::status`] tells, per account, until when this process's
//! token is valid and what the last failed exchange said; exchanges record that, requests
//! that find a cached token do nothing more than before.

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use serde::Deserialize;
use tollgate_config::Secret;

use super::cache::{Slot, SlotMap};
use super::{CopilotAccount, CopilotError, fetch, github_api_headers};

/// The API base used when the exchange names none (individual plans' endpoint).
pub const DEFAULT_API_BASE: &str = "https://api.githubcopilot.com";
/// Refresh at least this long before `expires_at`, so a request that starts just before the
/// refresh cannot carry a token that expires on the way.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(5 * 60);
/// The exchange is one small GET; slower than this means GitHub is having trouble.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(20);
/// After a failed refresh with a still-valid token, serve that token and try again after
/// this long, rather than asking a struggling GitHub on every request.
const RETRY_FAILED_REFRESH: Duration = Duration::from_secs(15);

/// A Copilot API token and where to use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopilotToken {
    /// The bearer token for the Copilot API.
    pub token: Secret<String>,
    /// When GitHub says it expires.
    pub expires_at: SystemTime,
    /// When GitHub suggests refreshing it, counted from the exchange.
    pub refresh_in: Duration,
    /// The Copilot API base URL for this account (`endpoints.api`), without a trailing slash.
    pub api_base: String,
}

/// How long after an exchange to refresh: at `refresh_in`, or [`EXPIRY_MARGIN`] before the
/// token's `lifetime` ends, whichever comes first. The margin is capped at half the lifetime
/// so that a short-lived token is still used for a while instead of never being cached.
pub fn refresh_delay(refresh_in: Duration, lifetime: Duration) -> Duration {
    let margin = EXPIRY_MARGIN.min(lifetime / 2);
    refresh_in.min(lifetime.saturating_sub(margin))
}

/// What this process knows of an account's Copilot token: a cheap read for pages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenStatus {
    /// Until when the token this process holds is valid, as this process counts it (in the
    /// past once it has expired unused). `None`: no token held, because none was exchanged
    /// yet or the last one was refused.
    pub valid_until: Option<SystemTime>,
    /// The last exchange or refresh that failed, until one succeeds.
    pub last_error: Option<ExchangeFailure>,
}

/// A failed token exchange, as [`TokenStatus`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeFailure {
    /// What went wrong; never carries a token.
    pub error: CopilotError,
    /// When.
    pub at: SystemTime,
}

/// Exchanges and caches Copilot tokens for any number of accounts. Cheap to share behind an
/// `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct TokenManager {
    exchange: Arc<Exchange>,
    slots: SlotMap<Cached>,
}

/// Where and how tokens are bought; shared with background refreshes.
#[derive(Debug)]
struct Exchange {
    http: reqwest::Client,
    github_api_url: String,
    /// The last failure per account; cleared by the next exchange that succeeds.
    failures: SlotMap<ExchangeFailure>,
}

#[derive(Debug, Clone)]
struct Cached {
    token: Arc<CopilotToken>,
    /// The OAuth token it was bought with: a re-linked account must not get the old token.
    oauth: Secret<String>,
    refresh_at: Instant,
    expires: Instant,
}

impl TokenManager {
    /// A manager exchanging at `{github_api_url}/copilot_internal/v2/token`.
    pub fn new(http: reqwest::Client, github_api_url: String) -> Self {
        let github_api_url = github_api_url.trim_end_matches('/').to_owned();
        let exchange = Exchange { http, github_api_url, failures: SlotMap::default() };
        Self { exchange: Arc::new(exchange), slots: SlotMap::default() }
    }

    /// `account_id`'s token as this process holds it, and the last failed exchange. Reads
    /// two atomic pointers; takes no lock and asks nobody.
    pub fn status(&self, account_id: &str) -> TokenStatus {
        let valid_until = self.slots.get(account_id).and_then(|slot| slot.load()).map(|cached| {
            let (now, wall) = (Instant::now(), SystemTime::now());
            let shifted = match cached.expires.checked_duration_since(now) {
                Some(left) => wall.checked_add(left),
                None => wall.checked_sub(now.duration_since(cached.expires)),
            };
            shifted.unwrap_or(wall)
        });
        let last_error = self
            .exchange
            .failures
            .get(account_id)
            .and_then(|slot| slot.load())
            .map(|failure| ExchangeFailure::clone(&failure));
        TokenStatus { valid_until, last_error }
    }

    /// A Copilot token for `account`. A cached one is returned at once while it is valid;
    /// once it is due for refresh, one background exchange replaces it. Without a valid
    /// token, concurrent callers for one account wait on a single exchange.
    pub async fn token(&self, account: &CopilotAccount) -> Result<Arc<CopilotToken>, CopilotError> {
        let slot = self.slots.get_or_add(&account.id);
        let now = Instant::now();
        if let Some(cached) = slot.load().filter(|c| c.matches(account) && c.valid(now)) {
            if !cached.fresh(now) {
                self.refresh_in_background(&slot, account);
            }
            return Ok(Arc::clone(&cached.token));
        }

        let _turn = slot.turn().await;
        // Whoever had the turn before us may have bought the token we need.
        if let Some(cached) = slot.load().filter(|c| c.matches(account) && c.valid(Instant::now()))
        {
            return Ok(Arc::clone(&cached.token));
        }
        match self.exchange.buy(account).await {
            Ok(cached) => {
                let token = Arc::clone(&cached.token);
                slot.store(cached);
                Ok(token)
            }
            Err(error) => {
                if !error.is_transient() {
                    // No seat or a revoked authorization: no old token may keep serving.
                    slot.clear();
                }
                Err(error)
            }
        }
    }

    /// Replaces `account`'s due token in a task of its own, unless a refresh already runs.
    fn refresh_in_background(&self, slot: &Arc<Slot<Cached>>, account: &CopilotAccount) {
        let Some(claim) = slot.claim_refresh() else {
            return;
        };
        let exchange = Arc::clone(&self.exchange);
        let account = account.clone();
        tokio::spawn(async move {
            let slot = claim.slot();
            let _turn = slot.turn().await;
            let now = Instant::now();
            // Renew only the token we were asked to: not one replaced, invalidated or
            // re-linked meanwhile.
            let Some(current) = slot.load().filter(|c| c.matches(&account) && !c.fresh(now)) else {
                return;
            };
            match exchange.buy(&account).await {
                Ok(renewed) => {
                    slot.replace(&current, Some(renewed));
                }
                Err(error) if error.is_transient() => {
                    tracing::warn!(account = %account.id, %error,
                        "copilot token refresh failed; using the current token until it expires");
                    let mut retry = Cached::clone(&current);
                    retry.refresh_at = (Instant::now() + RETRY_FAILED_REFRESH).min(current.expires);
                    slot.replace(&current, Some(retry));
                }
                Err(error) => {
                    tracing::warn!(account = %account.id, %error,
                        "copilot token refresh refused; dropping the current token");
                    slot.replace(&current, None);
                }
            }
        });
    }

    /// Forgets `account_id`'s cached token, and its last failure (it was the old link's), so
    /// that the next [`TokenManager::token`] exchanges.
    pub fn invalidate(&self, account_id: &str) {
        if let Some(slot) = self.slots.get(account_id) {
            slot.clear();
        }
        self.exchange.forget_failure(account_id);
    }

    /// Forgets the cached token only if it is still `rejected`. The 401-retry path should use
    /// this: when many requests fail with the same token at once, the first refresh serves
    /// them all instead of each one discarding the token the previous one just bought.
    /// Returns whether the token was forgotten.
    pub fn invalidate_token(&self, account_id: &str, rejected: &CopilotToken) -> bool {
        let Some(slot) = self.slots.get(account_id) else {
            return false;
        };
        match slot.load() {
            Some(current) if current.token.token == rejected.token => slot.replace(&current, None),
            _ => false,
        }
    }
}

impl Exchange {
    /// Buys a token, and remembers how that went for [`TokenManager::status`].
    async fn buy(&self, account: &CopilotAccount) -> Result<Cached, CopilotError> {
        let bought = self.try_buy(account).await;
        match &bought {
            Ok(_) => self.forget_failure(&account.id),
            Err(error) => self
                .failures
                .get_or_add(&account.id)
                .store(ExchangeFailure { error: error.clone(), at: SystemTime::now() }),
        }
        bought
    }

    fn forget_failure(&self, account_id: &str) {
        if let Some(slot) = self.failures.get(account_id) {
            slot.clear();
        }
    }

    async fn try_buy(&self, account: &CopilotAccount) -> Result<Cached, CopilotError> {
        let request = self
            .http
            .get(format!("{}/copilot_internal/v2/token", self.github_api_url))
            .headers(github_api_headers(&account.oauth_token))
            .timeout(EXCHANGE_TIMEOUT);
        let (status, headers, body) = fetch(request).await?;
        if !(200..300).contains(&status) {
            let error = exchange_failure(status, &headers, &body);
            tracing::warn!(account = %account.id, status, %error, "copilot token exchange failed");
            return Err(error);
        }
        let received = Instant::now();
        let (token, lifetime) = parse_exchange(&body, SystemTime::now())?;
        let refresh_at = received + refresh_delay(token.refresh_in, lifetime);
        tracing::debug!(account = %account.id, lifetime_s = lifetime.as_secs(),
            refresh_in_s = token.refresh_in.as_secs(), "copilot token exchanged");
        Ok(Cached {
            token: Arc::new(token),
            oauth: account.oauth_token.clone(),
            refresh_at,
            expires: received + lifetime,
        })
    }
}

impl Cached {
    fn matches(&self, account: &CopilotAccount) -> bool {
        self.oauth == account.oauth_token
    }

    fn fresh(&self, now: Instant) -> bool {
        now < self.refresh_at
    }

    fn valid(&self, now: Instant) -> bool {
        now < self.expires
    }
}

/// Maps an error status of the exchange. GitHub answers 403 both for "no Copilot seat" and
/// for its rate limits; only the latter carries rate-limit headers.
fn exchange_failure(status: u16, headers: &http::HeaderMap, body: &str) -> CopilotError {
    let rate_limited = headers.contains_key(http::header::RETRY_AFTER)
        || headers.get("x-ratelimit-remaining").is_some_and(|v| v.as_bytes() == b"0");
    match status {
        401 => CopilotError::OauthRevoked,
        403 | 404 if !rate_limited => CopilotError::NoSeat,
        _ => CopilotError::upstream(status, body),
    }
}

#[derive(Deserialize)]
struct RawExchange {
    token: Option<String>,
    expires_at: Option<u64>,
    refresh_in: Option<u64>,
    endpoints: Option<RawEndpoints>,
}

#[derive(Deserialize)]
struct RawEndpoints {
    api: Option<String>,
}

/// The token and its lifetime as seen from `now`.
fn parse_exchange(body: &str, now: SystemTime) -> Result<(CopilotToken, Duration), CopilotError> {
    let invalid = |what: &str| CopilotError::InvalidResponse(format!("token exchange: {what}"));
    let raw: RawExchange = serde_json::from_str(body).map_err(|_| invalid("not JSON"))?;
    let token = raw.token.filter(|t| !t.is_empty()).ok_or_else(|| invalid("no token"))?;
    // Checked once here so that building request headers later cannot fail.
    if http::HeaderValue::from_str(&token).is_err() {
        return Err(invalid("the token is not a valid header value"));
    }
    let expires_at_unix = raw.expires_at.ok_or_else(|| invalid("no expires_at"))?;
    let expires_at = SystemTime::UNIX_EPOCH + Duration::from_secs(expires_at_unix);
    let by_clock = expires_at.duration_since(now).unwrap_or(Duration::ZERO);
    let refresh_in = raw.refresh_in.map(Duration::from_secs);
    // A local clock running ahead of GitHub's would make every token look expired on
    // arrival; fall back to the relative `refresh_in` then.
    let lifetime = if by_clock.is_zero() { refresh_in.unwrap_or(Duration::ZERO) } else { by_clock };
    let api_base = raw
        .endpoints
        .and_then(|e| e.api)
        .map(|api| api.trim_end_matches('/').to_owned())
        .filter(|api| !api.is_empty())
        .unwrap_or_else(|| DEFAULT_API_BASE.to_owned());
    let token = CopilotToken {
        token: Secret::new(token),
        expires_at,
        refresh_in: refresh_in.unwrap_or(lifetime),
        api_base,
    };
    Ok((token, lifetime))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn refreshes_at_refresh_in_or_five_minutes_before_expiry() {
        // GitHub's usual: 30 minutes of life, refresh after 25.
        assert_eq!(refresh_delay(25 * MIN, 30 * MIN), 25 * MIN);
        // A late refresh_in loses to the expiry margin.
        assert_eq!(refresh_delay(29 * MIN, 30 * MIN), 25 * MIN);
        // Short-lived tokens keep half their life.
        assert_eq!(refresh_delay(MIN, 2 * MIN), MIN);
        assert_eq!(refresh_delay(10 * MIN, 4 * MIN), 2 * MIN);
        assert_eq!(refresh_delay(Duration::ZERO, 30 * MIN), Duration::ZERO);
    }

    #[test]
    fn parses_the_exchange() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let body = r#"{"token":"tid=1;exp=2800","expires_at":2800,"refresh_in":1500,
            "endpoints":{"api":"https://api.individual.githubcopilot.com/"},"sku":"x"}"#;
        let (token, lifetime) = parse_exchange(body, now).unwrap();
        assert_eq!(token.token.expose(), "tid=1;exp=2800");
        assert_eq!(token.api_base, "https://api.individual.githubcopilot.com");
        assert_eq!(token.refresh_in, 25 * MIN);
        assert_eq!(lifetime, 30 * MIN);
        assert!(!format!("{token:?}").contains("tid=1"));

        let (token, _) = parse_exchange(r#"{"token":"t","expires_at":2800}"#, now).unwrap();
        assert_eq!(token.api_base, DEFAULT_API_BASE);
        assert_eq!(token.refresh_in, 30 * MIN);
    }

    #[test]
    fn a_clock_ahead_of_github_falls_back_to_refresh_in() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000);
        let body = r#"{"token":"t","expires_at":2800,"refresh_in":1500}"#;
        assert_eq!(parse_exchange(body, now).unwrap().1, 25 * MIN);
    }

    #[test]
    fn rejects_bad_exchange_bodies() {
        let now = SystemTime::UNIX_EPOCH;
        for body in [
            "<html>",
            "{}",
            r#"{"token":"","expires_at":1}"#,
            r#"{"token":"a\nb","expires_at":1}"#,
            r#"{"token":"t"}"#,
        ] {
            assert!(
                matches!(parse_exchange(body, now), Err(CopilotError::InvalidResponse(_))),
                "{body}"
            );
        }
    }

    #[test]
    fn classifies_exchange_failures() {
        let none = http::HeaderMap::new();
        assert_eq!(exchange_failure(401, &none, ""), CopilotError::OauthRevoked);
        assert_eq!(exchange_failure(403, &none, ""), CopilotError::NoSeat);
        assert_eq!(exchange_failure(404, &none, ""), CopilotError::NoSeat);
        let mut limited = http::HeaderMap::new();
        limited.insert("x-ratelimit-remaining", http::HeaderValue::from_static("0"));
        assert!(matches!(
            exchange_failure(403, &limited, ""),
            CopilotError::Upstream { status: 403, .. }
        ));
        assert!(matches!(
            exchange_failure(502, &none, "oops"),
            CopilotError::Upstream { status: 502, .. }
        ));
    }
}
