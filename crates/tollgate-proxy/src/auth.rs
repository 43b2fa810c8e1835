//! Who is calling: credentials from every header clients use, checked against the master key
//! and the static token. Virtual keys plug in here.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use tollgate_config::{Secret, Settings};

use crate::access::{Directory, KeyEntry, keys};
use crate::error::{ApiError, Protocol};
use crate::state::AppState;

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
    ) -> Result<Principal, ApiError> {
        if self.is_open() {
            // A virtual key still counts (its budget and limits apply); anything else from
            // this machine is accepted as is.
            if let Some(key) = credential.and_then(|c| virtual_key(c, directory).transpose()) {
                return key.map(Principal::VirtualKey);
            }
            return match peer {
                Some(ip) if is_local(ip) => Ok(Principal::Local),
                _ => Err(ApiError::unauthorized(
                    "This gateway has no master key configured, so it only accepts requests from \
                     its own machine. Set TOLLGATE_MASTER_KEY to accept remote clients.",
                )),
            };
        }
        let Some(credential) = credential else {
            return Err(ApiError::unauthorized(
                "Missing API key. Send it as `Authorization: Bearer <key>` or in the `x-api-key` header.",
            ));
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
            .with_retry_after(1));
        }
        match virtual_key(credential, directory)? {
            Some(k) => Ok(Principal::VirtualKey(k)),
            None => Err(ApiError::unauthorized("Invalid API key.")),
        }
    }
}

/// The virtual key a credential names, refused if blocked or expired, or its team blocked.
fn virtual_key(credential: &str, directory: &Directory) -> Result<Option<Arc<KeyEntry>>, ApiError> {
    let Some(key) = directory.key(&keys::hash(credential)) else { return Ok(None) };
    let r = &key.record;
    if r.blocked {
        return Err(ApiError::unauthorized(format!("The key {} is blocked.", r.key_name))
            .with_code("key_blocked"));
    }
    if let Some(exp) = r.expires
        && exp <= chrono::Utc::now()
    {
        return Err(ApiError::unauthorized(format!(
            "The key {} expired at {}.",
            r.key_name,
            exp.to_rfc3339()
        ))
        .with_code("key_expired"));
    }
    if let Some(team) = r.team_id.as_deref().and_then(|t| directory.team(t))
        && team.record.blocked
    {
        return Err(ApiError::unauthorized(format!(
            "The team {} of key {} is blocked.",
            team.record.team_alias.as_deref().unwrap_or(&team.record.team_id),
            r.key_name
        ))
        .with_code("team_blocked"));
    }
    Ok(Some(key))
}

fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// The credential a request carries, from the first of `Authorization: Bearer`, `x-api-key`,
/// `x-litellm-api-key` (with or without `Bearer `) and `api-key`.
pub fn credential(headers: &HeaderMap) -> Option<&str> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    // A client passing its own Claude token through (Authorization: Bearer sk-ant-…) names its
    // tollgate key in one of the other headers.
    if claude_token(headers).is_some() {
        for name in ["x-api-key", "x-litellm-api-key", "api-key"] {
            if let Some(v) = get(name) {
                let token = v.strip_prefix("Bearer ").unwrap_or(v).trim();
                if !token.is_empty() {
                    return Some(token);
                }
            }
        }
    }
    if let Some(v) = get("authorization") {
        let token =
            v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")).unwrap_or(v).trim();
        if !token.is_empty() {
            return Some(token);
        }
    }
    for name in ["x-api-key", "x-litellm-api-key", "api-key"] {
        if let Some(v) = get(name) {
            let token = v.strip_prefix("Bearer ").unwrap_or(v).trim();
            if !token.is_empty() {
                return Some(token);
            }
        }
    }
    None
}

/// The client's own Claude token, when it sends one as `Authorization: Bearer sk-ant-…`.
pub fn claude_token(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get("authorization")?.to_str().ok()?.trim();
    let token = v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer "))?.trim();
    token.starts_with("sk-ant-").then_some(token)
}

/// Extractor: the authenticated caller, or a 401 in the route's protocol.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        state
            .auth()
            .authenticate(credential(&parts.headers), peer, state.directory())
            .map(Caller)
            .map_err(|e| e.in_protocol(Protocol::for_path(parts.uri.path())))
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
        let e = a.authenticate(None, REMOTE, &d).unwrap_err();
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
        assert_eq!(a.authenticate(Some("sk-maste"), LOCAL, &d).unwrap_err().status(), 503);
        assert!(a.authenticate(None, LOCAL, &d).unwrap_err().message().contains("Missing API key"));
    }

    #[test]
    fn reads_every_credential_header() {
        for (name, value) in [
            ("authorization", "Bearer k1"),
            ("x-api-key", "k1"),
            ("x-litellm-api-key", "Bearer k1"),
            ("x-litellm-api-key", "k1"),
            ("api-key", "k1"),
        ] {
            let mut h = HeaderMap::new();
            h.insert(name, value.parse().unwrap());
            assert_eq!(credential(&h), Some("k1"), "{name}: {value}");
        }
        assert_eq!(credential(&HeaderMap::new()), None);
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer sk-ant-oat01-own".parse().unwrap());
        h.insert("x-litellm-api-key", "sk-tollgate".parse().unwrap());
        assert_eq!(credential(&h), Some("sk-tollgate"));
        assert_eq!(claude_token(&h), Some("sk-ant-oat01-own"));
    }
}
