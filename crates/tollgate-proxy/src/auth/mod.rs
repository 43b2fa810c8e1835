//! Who is calling: credentials from every header clients use ([`credential`]), checked
//! against the master key, the static token and the virtual keys in the directory. The
//! extractors that run this for handlers live in [`crate::extract`].

mod credential;

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::StatusCode;
use tollgate_config::{Secret, Settings};

pub use credential::{claude_token, credential};

use crate::access::{Directory, KeyEntry, keys};
use crate::error::ApiError;

/// A refused credential, and the key it named when that key exists (blocked, expired, or of a
/// blocked team): refusals of existing keys are recorded for the admin to see.
#[derive(Debug)]
pub struct Denied {
    /// The answer.
    pub error: ApiError,
    /// The key, when the credential named one.
    pub key: Option<Arc<KeyEntry>>,
}

impl From<ApiError> for Denied {
    fn from(error: ApiError) -> Self {
        Self { error, key: None }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub enum Principal {
    /// Holder of the master key: may do anything.
    Master,
    /// Holder of `PROXY_STATIC_TOKEN`: may call the model APIs.
    StaticToken,
    /// A request from this machine while no key is configured.
    Local,
    /// Holder of a virtual key.
    VirtualKey(Arc<KeyEntry>),
}

impl Principal {
    /// Whether the caller may use the management API: the master key, local callers of a
    /// gateway without one, and keys with `permissions.admin` or owned by a `proxy_admin`.
    pub fn is_admin(&self, directory: &Directory) -> bool {
        match self {
            Self::Master | Self::Local => true,
            Self::StaticToken => false,
            Self::VirtualKey(k) => {
                k.record.permissions.get("admin").and_then(serde_json::Value::as_bool) == Some(true)
                    || k.record
                        .user_id
                        .as_deref()
                        .and_then(|u| directory.user(u))
                        .is_some_and(|u| u.record.user_role.as_deref() == Some("proxy_admin"))
            }
        }
    }

    /// The owner of the caller's own linked Copilot account, when it used a virtual key.
    pub fn copilot_owner(&self) -> Option<String> {
        self.key().map(|k| tollgate_store::key_credential_owner(&k.record.token_hash))
    }

    /// The virtual key, if the caller used one.
    pub fn key(&self) -> Option<&Arc<KeyEntry>> {
        match self {
            Self::VirtualKey(k) => Some(k),
            _ => None,
        }
    }
}

/// Checks credentials.
#[derive(Debug, Clone)]
pub struct Authenticator {
    master_key: Option<Secret<String>>,
    static_token: Option<Secret<String>>,
}

impl Authenticator {
    /// From the configured master key and static token.
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            master_key: settings.master_key.clone(),
            static_token: settings.static_token.clone(),
        }
    }

    /// Whether no credential is configured, so only local requests are accepted.
    pub fn is_open(&self) -> bool {
        self.master_key.is_none() && self.static_token.is_none()
    }

    /// Decides who a request comes from.
    pub fn authenticate(
        &self,
        credential: Option<&str>,
        peer: Option<IpAddr>,
        directory: &Directory,
    ) -> Result<Principal, Denied> {
        if self.is_open() {
            // A virtual key still counts (its budget and limits apply); anything else from
            // this machine is accepted as is.
            if let Some(key) = credential.and_then(|c| virtual_key(c, directory).transpose()) {
                return key.map(Principal::VirtualKey);
            }
            return match peer {
                Some(ip) if tollgate_guard::is_loopback(ip) => Ok(Principal::Local),
                _ => Err(ApiError::unauthorized(
                    "This gateway has no master key configured, so it only accepts requests from \
                     its own machine. Set TOLLGATE_MASTER_KEY to accept remote clients.",
                )
                .into()),
            };
        }
        let Some(credential) = credential else {
            return Err(ApiError::unauthorized(
                "Missing API key. Send it as `Authorization: Bearer <key>` or in the `x-api-key` header.",
            )
            .into());
        };
        if self.master_key.as_ref().is_some_and(|k| k.matches(credential)) {
            return Ok(Principal::Master);
        }
        if self.static_token.as_ref().is_some_and(|t| t.matches(credential)) {
            return Ok(Principal::StaticToken);
        }
        if !directory.is_loaded() {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Virtual keys are still being loaded from the database; try again shortly.",
            )
            .with_code("keys_loading")
            .with_retry_after(1)
            .into());
        }
        match virtual_key(credential, directory)? {
            Some(k) => Ok(Principal::VirtualKey(k)),
            None => Err(ApiError::unauthorized("Invalid API key.").into()),
        }
    }
}

/// The virtual key a credential names, refused if blocked or expired, or its team blocked.
fn virtual_key(credential: &str, directory: &Directory) -> Result<Option<Arc<KeyEntry>>, Denied> {
    let Some(key) = directory.key(&keys::hash(credential)) else { return Ok(None) };
    let r = &key.record;
    let refused = if r.blocked {
        Some(
            ApiError::unauthorized(format!("The key {} is blocked.", r.key_name))
                .with_code("key_blocked"),
        )
    } else if let Some(exp) = r.expires.filter(|exp| *exp <= chrono::Utc::now()) {
        Some(
            ApiError::unauthorized(format!(
                "The key {} expired at {}.",
                r.key_name,
                exp.to_rfc3339()
            ))
            .with_code("key_expired"),
        )
    } else {
        r.team_id.as_deref().and_then(|t| directory.team(t)).filter(|t| t.record.blocked).map(
            |team| {
                ApiError::unauthorized(format!(
                    "The team {} of key {} is blocked.",
                    team.record.team_alias.as_deref().unwrap_or(&team.record.team_id),
                    r.key_name
                ))
                .with_code("team_blocked")
            },
        )
    };
    match refused {
        Some(error) => Err(Denied { error, key: Some(key) }),
        None => Ok(Some(key)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> Directory {
        Directory::new()
    }

    fn auth(master: Option<&str>, token: Option<&str>) -> Authenticator {
        Authenticator {
            master_key: master.map(Secret::from),
            static_token: token.map(Secret::from),
        }
    }

    const LOCAL: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    const REMOTE: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 1, 2, 3)));

    #[test]
    fn open_gateway_accepts_only_local_callers() {
        let a = auth(None, None);
        let d = dir();
        assert!(matches!(a.authenticate(None, LOCAL, &d).unwrap(), Principal::Local));
        assert!(matches!(a.authenticate(Some("anything"), LOCAL, &d).unwrap(), Principal::Local));
        let v6 = Some("::ffff:127.0.0.1".parse().unwrap());
        assert!(matches!(a.authenticate(None, v6, &d).unwrap(), Principal::Local));
        let e = a.authenticate(None, REMOTE, &d).unwrap_err().error;
        assert_eq!(e.status(), 401);
        assert!(e.message().contains("TOLLGATE_MASTER_KEY"));
        assert!(a.authenticate(None, None, &d).is_err());
    }

    #[test]
    fn keys_are_checked() {
        let a = auth(Some("sk-master"), Some("shared"));
        let d = dir();
        assert!(matches!(
            a.authenticate(Some("sk-master"), REMOTE, &d).unwrap(),
            Principal::Master
        ));
        assert!(matches!(
            a.authenticate(Some("shared"), REMOTE, &d).unwrap(),
            Principal::StaticToken
        ));
        // Before the directory has loaded, an unknown key is "try again", not "invalid".
        assert_eq!(a.authenticate(Some("sk-maste"), LOCAL, &d).unwrap_err().error.status(), 503);
        assert!(
            a.authenticate(None, LOCAL, &d)
                .unwrap_err()
                .error
                .message()
                .contains("Missing API key")
        );
    }
}
