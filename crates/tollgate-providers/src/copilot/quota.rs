//! An account's Copilot plan and allowances, from `GET {github_api_url}/copilot_internal/user`.

use std::{collections::HashMap, time::Duration};

use serde::{Deserialize, Serialize};
use tollgate_config::Secret;

use super::{CopilotError, fetch, github_api_headers};

const FETCH_TIMEOUT: Duration = Duration::from_secs(20);

/// What an account may still use this period.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Quota {
    /// The plan, e.g. `individual`, `business`.
    pub plan: Option<String>,
    /// When the allowances reset (GitHub's date string, e.g. `2025-09-01`).
    pub reset_date: Option<String>,
    /// Premium requests (`premium_interactions`).
    pub premium: Option<QuotaBucket>,
    /// Chat messages.
    pub chat: Option<QuotaBucket>,
    /// Code completions.
    pub completions: Option<QuotaBucket>,
}

/// One allowance.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QuotaBucket {
    /// The period's allowance.
    pub entitlement: f64,
    /// What is left of it.
    pub remaining: f64,
    /// `remaining` as a percentage of `entitlement` (100 when unlimited).
    pub percent_remaining: f64,
    /// No limit applies; the numbers above are then meaningless.
    pub unlimited: bool,
    /// Whether use beyond the allowance is allowed (and billed).
    pub overage_permitted: bool,
}

/// Reads the account's quota with its OAuth token. 401 means the authorization was revoked.
pub async fn fetch_quota(
    http: &reqwest::Client,
    github_api_url: &str,
    oauth_token: &Secret<String>,
) -> Result<Quota, CopilotError> {
    let url = format!("{}/copilot_internal/user", github_api_url.trim_end_matches('/'));
    let request = http.get(url).headers(github_api_headers(oauth_token)).timeout(FETCH_TIMEOUT);
    let (status, _, body) = fetch(request).await?;
    match status {
        200..=299 => parse_quota(&body),
        401 => Err(CopilotError::OauthRevoked),
        _ => Err(CopilotError::upstream(status, &body)),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawUser {
    copilot_plan: Option<String>,
    quota_reset_date: Option<String>,
    quota_snapshots: Option<RawSnapshots>,
    // The free plan reports counts instead of snapshots.
    limited_user_quotas: Option<HashMap<String, f64>>,
    monthly_quotas: Option<HashMap<String, f64>>,
    limited_user_reset_date: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawSnapshots {
    premium_interactions: Option<RawBucket>,
    chat: Option<RawBucket>,
    completions: Option<RawBucket>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawBucket {
    entitlement: Option<f64>,
    remaining: Option<f64>,
    quota_remaining: Option<f64>,
    percent_remaining: Option<f64>,
    unlimited: Option<bool>,
    overage_permitted: Option<bool>,
}

impl RawBucket {
    fn bucket(self) -> QuotaBucket {
        let entitlement = self.entitlement.unwrap_or(0.0);
        let remaining = self.remaining.or(self.quota_remaining).unwrap_or(0.0);
        let unlimited = self.unlimited.unwrap_or(false);
        QuotaBucket {
            entitlement,
            remaining,
            percent_remaining: self
                .percent_remaining
                .unwrap_or_else(|| percent(remaining, entitlement, unlimited)),
            unlimited,
            overage_permitted: self.overage_permitted.unwrap_or(false),
        }
    }
}

fn percent(remaining: f64, entitlement: f64, unlimited: bool) -> f64 {
    if unlimited || entitlement <= 0.0 { 100.0 } else { remaining / entitlement * 100.0 }
}

fn parse_quota(body: &str) -> Result<Quota, CopilotError> {
    let raw: RawUser = serde_json::from_str(body)
        .map_err(|e| CopilotError::InvalidResponse(format!("copilot user: {e}")))?;
    let mut quota = Quota {
        plan: raw.copilot_plan,
        reset_date: raw.quota_reset_date.or(raw.limited_user_reset_date),
        ..Quota::default()
    };
    if let Some(snapshots) = raw.quota_snapshots {
        quota.premium = snapshots.premium_interactions.map(RawBucket::bucket);
        quota.chat = snapshots.chat.map(RawBucket::bucket);
        quota.completions = snapshots.completions.map(RawBucket::bucket);
    } else if let (Some(left), Some(monthly)) = (raw.limited_user_quotas, raw.monthly_quotas) {
        let bucket = |name: &str| {
            let entitlement = *monthly.get(name)?;
            let remaining = left.get(name).copied().unwrap_or(0.0);
            Some(QuotaBucket {
                entitlement,
                remaining,
                percent_remaining: percent(remaining, entitlement, false),
                unlimited: false,
                overage_permitted: false,
            })
        };
        quota.chat = bucket("chat");
        quota.completions = bucket("completions");
    }
    Ok(quota)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_quota_snapshots() {
        let body = r#"{"copilot_plan":"individual","quota_reset_date":"2025-09-01","chat_enabled":true,
          "quota_snapshots":{
            "premium_interactions":{"entitlement":300,"remaining":250,"percent_remaining":83.3,
              "unlimited":false,"overage_permitted":true,"overage_count":0,"quota_id":"premium_interactions"},
            "chat":{"entitlement":0,"remaining":0,"unlimited":true},
            "completions":{"entitlement":0,"quota_remaining":0,"unlimited":true}}}"#;
        let quota = parse_quota(body).unwrap();
        assert_eq!(quota.plan.as_deref(), Some("individual"));
        assert_eq!(quota.reset_date.as_deref(), Some("2025-09-01"));
        let premium = quota.premium.unwrap();
        assert_eq!((premium.entitlement, premium.remaining), (300.0, 250.0));
        assert!((premium.percent_remaining - 83.3).abs() < 1e-9);
        assert!(premium.overage_permitted && !premium.unlimited);
        let chat = quota.chat.unwrap();
        assert!(chat.unlimited);
        assert_eq!(chat.percent_remaining, 100.0);
        assert!(quota.completions.is_some());
    }

    #[test]
    fn reads_the_free_plan_counts() {
        let body = r#"{"copilot_plan":"free","limited_user_reset_date":"2025-10-01",
          "limited_user_quotas":{"chat":40,"completions":1500},
          "monthly_quotas":{"chat":50,"completions":2000}}"#;
        let quota = parse_quota(body).unwrap();
        assert_eq!(quota.reset_date.as_deref(), Some("2025-10-01"));
        assert_eq!(quota.premium, None);
        let chat = quota.chat.unwrap();
        assert_eq!((chat.entitlement, chat.remaining, chat.percent_remaining), (50.0, 40.0, 80.0));
    }

    #[test]
    fn missing_percent_is_computed() {
        let body =
            r#"{"quota_snapshots":{"premium_interactions":{"entitlement":300,"remaining":75}}}"#;
        assert_eq!(parse_quota(body).unwrap().premium.unwrap().percent_remaining, 25.0);
        assert!(matches!(parse_quota("nope"), Err(CopilotError::InvalidResponse(_))));
    }
}
