//! Who may link which account.
//!
//! - The shared account (owner `default`) needs the admin: the master key, given once as
//!   `?key=` (a browser visit, which then gets a session cookie), as `Authorization: Bearer`,
//!   or that session cookie. With no master key configured (local mode), any client on the
//!   loopback interface is the admin, and nobody else is.
//! - A virtual key's holder links the key's own account (owner `key:<sha256 of the key>`) the
//!   same ways, with the virtual key instead of the master key. Blocked and expired keys, and
//!   keys of blocked teams, are refused.
//!
//! Sessions live in memory: a random id maps to the admin or to a key's hash, never to a key
//! itself. A key's session is re-checked against the store on every use, so blocking the key
//! ends it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tollgate_config::Secret;
use tollgate_store::{DEFAULT_CREDENTIAL_OWNER, KeyRecord, Store, key_credential_owner};

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "tollgate_auth_session";
/// How long a session lasts.
const SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);
/// Sessions kept at most; beyond it expired ones are dropped, then the oldest.
const MAX_SESSIONS: usize = 10_000;

/// What a request presents.
#[derive(Debug, Default)]
pub(crate) struct Presented<'a> {
    /// `?key=`.
    pub(crate) query_key: Option<&'a str>,
    /// `Authorization: Bearer`.
    pub(crate) bearer: Option<&'a str>,
    /// The session cookie's value.
    pub(crate) session: Option<&'a str>,
    /// The client's address.
    pub(crate) peer: Option<IpAddr>,
}

/// Someone allowed to link an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Caller {
    /// The credential owner they link: `default` or `key:<hash>`.
    pub(crate) owner: String,
    /// How pages and logs name that account; never secret.
    pub(crate) owner_label: String,
    /// Who they are in the audit log: `master_key` (also for a session the master key
    /// opened), `local` (a client on this machine while no master key is set), or
    /// `key:<alias or display name>`.
    pub(crate) actor: String,
    /// A new session to hand to the browser, when the key came in the query.
    pub(crate) new_session: Option<String>,
}

/// Why a request may not link anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Denied {
    /// No credential, and the shared account needs the admin.
    NeedsCredential,
    /// The key is neither the master key nor a virtual key.
    InvalidKey,
    /// A virtual key that may not be used now (blocked, expired, team blocked).
    KeyRefused(String),
    /// Local mode, and the client is not on this machine.
    NotLocal,
    /// The store could not be asked.
    Unavailable,
}

/// The principal a session stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Principal {
    Admin,
    Key { token_hash: String },
}

#[derive(Debug)]
struct Session {
    principal: Principal,
    expires: Instant,
}

/// Browser sessions, by random id.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    fn create(&self, principal: Principal) -> String {
        let id = random_hex(32);
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| s.expires > now);
        }
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(id.clone(), Session { principal, expires: now + SESSION_TTL });
        id
    }

    fn get(&self, id: &str) -> Option<Principal> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get(id) {
            Some(s) if s.expires > Instant::now() => Some(s.principal.clone()),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }
}

/// The access rules of the auth helper.
#[derive(Debug)]
pub(crate) struct Access {
    master_key: Option<Secret<String>>,
    store: Store,
    sessions: Sessions,
}

impl Access {
    pub(crate) fn new(master_key: Option<Secret<String>>, store: Store) -> Self {
        Self { master_key, store, sessions: Sessions::default() }
    }

    /// Whether no master key is set (local mode): every client on the loopback interface is
    /// the admin then.
    pub(crate) fn is_open(&self) -> bool {
        self.master_key.is_none()
    }

    /// Decides who the request comes from and which account it may link.
    pub(crate) async fn authorize(&self, p: &Presented<'_>) -> Result<Caller, Denied> {
        let explicit = p.query_key.or(p.bearer).map(str::trim).filter(|k| !k.is_empty());
        if let Some(key) = explicit {
            let principal = self.identify(key);
            let caller = self.caller(&principal).await?;
            // A browser visit with `?key=` gets a session, so the key need not be sent again.
            let new_session = p.query_key.is_some().then(|| self.sessions.create(principal));
            return Ok(Caller { new_session, ..caller });
        }
        if let Some(principal) = p.session.and_then(|id| self.sessions.get(id)) {
            return self.caller(&principal).await;
        }
        match (&self.master_key, p.peer) {
            (Some(_), _) => Err(Denied::NeedsCredential),
            (None, Some(ip)) if tollgate_guard::is_loopback(ip) => {
                self.caller(&Principal::Admin).await
            }
            (None, _) => Err(Denied::NotLocal),
        }
    }

    /// The master key, or else a virtual key (checked against the store by [`Self::caller`]).
    fn identify(&self, key: &str) -> Principal {
        if self.master_key.as_ref().is_some_and(|m| m.matches(key)) {
            return Principal::Admin;
        }
        Principal::Key { token_hash: key_hash(key) }
    }

    /// The caller a principal is, checking a key's standing now.
    async fn caller(&self, principal: &Principal) -> Result<Caller, Denied> {
        match principal {
            // With a master key set only it (or its session) is the admin; without one, only
            // a client on this machine.
            Principal::Admin => Ok(Caller {
                owner: DEFAULT_CREDENTIAL_OWNER.to_owned(),
                owner_label: "the shared Copilot account".to_owned(),
                actor: if self.is_open() { "local" } else { "master_key" }.to_owned(),
                new_session: None,
            }),
            Principal::Key { token_hash } => {
                let key = self.usable_key(token_hash).await?;
                Ok(Caller {
                    owner: key_credential_owner(token_hash),
                    owner_label: format!("the Copilot account of key {}", key.key_name),
                    actor: format!("key:{}", key.key_alias.as_deref().unwrap_or(&key.key_name)),
                    new_session: None,
                })
            }
        }
    }

    async fn usable_key(&self, token_hash: &str) -> Result<KeyRecord, Denied> {
        let key = match self.store.get_key(token_hash).await {
            Ok(Some(key)) => key,
            Ok(None) => return Err(Denied::InvalidKey),
            Err(e) => {
                tracing::error!(error = %e, "auth helper: cannot look up a virtual key");
                return Err(Denied::Unavailable);
            }
        };
        if key.blocked {
            return Err(Denied::KeyRefused(format!("The key {} is blocked.", key.key_name)));
        }
        if key.expires.is_some_and(|t| t <= chrono::Utc::now()) {
            return Err(Denied::KeyRefused(format!("The key {} has expired.", key.key_name)));
        }
        if let Some(team_id) = &key.team_id {
            match self.store.get_team(team_id).await {
                Ok(Some(team)) if team.blocked => {
                    return Err(Denied::KeyRefused(format!(
                        "The team of key {} is blocked.",
                        key.key_name
                    )));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "auth helper: cannot look up a team");
                    return Err(Denied::Unavailable);
                }
            }
        }
        Ok(key)
    }
}

/// The hex SHA-256 of a key, as the store knows it.
pub(crate) fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The session cookie's value among a `Cookie` header's pairs.
pub(crate) fn session_from_cookies(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value for a session: HttpOnly, SameSite=Strict, `Secure` behind HTTPS.
pub(crate) fn session_cookie(id: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        SESSION_TTL.as_secs()
    )
}

/// `n` random bytes as hex.
pub(crate) fn random_hex(n: usize) -> String {
    use rand::RngCore;
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn access(master: Option<&str>) -> (Access, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = tollgate_store::connect(None, dir.path()).await.unwrap();
        store.migrate().await.unwrap();
        (Access::new(master.map(Secret::from), store), dir)
    }

    fn from(ip: &str) -> Presented<'static> {
        Presented { peer: Some(ip.parse().unwrap()), ..Presented::default() }
    }

    #[tokio::test]
    async fn local_mode_admits_only_loopback_clients_to_the_shared_account() {
        let (access, _dir) = access(None).await;
        for ip in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            let caller = access.authorize(&from(ip)).await.unwrap();
            assert_eq!(caller.owner, "default", "{ip}");
            assert_eq!(caller.actor, "local", "{ip}");
            assert_eq!(caller.new_session, None);
        }
        for ip in ["10.0.0.5", "192.168.1.2", "2001:db8::1"] {
            assert_eq!(access.authorize(&from(ip)).await, Err(Denied::NotLocal), "{ip}");
        }
        assert_eq!(access.authorize(&Presented::default()).await, Err(Denied::NotLocal));
    }

    #[tokio::test]
    async fn with_a_master_key_loopback_is_not_enough() {
        let (access, _dir) = access(Some("sk-master")).await;
        assert_eq!(access.authorize(&from("127.0.0.1")).await, Err(Denied::NeedsCredential));
        let bearer = Presented { bearer: Some("sk-master"), ..from("10.0.0.5") };
        let caller = access.authorize(&bearer).await.unwrap();
        assert_eq!(caller.actor, "master_key");
        assert_eq!((caller.owner.as_str(), caller.new_session), ("default", None));
        let wrong = Presented { query_key: Some("sk-mastex"), ..from("127.0.0.1") };
        assert_eq!(access.authorize(&wrong).await, Err(Denied::InvalidKey));
    }

    #[tokio::test]
    async fn a_query_key_opens_a_session_that_works_alone() {
        let (access, _dir) = access(Some("sk-master")).await;
        let visit = Presented { query_key: Some("sk-master"), ..from("10.0.0.5") };
        let session = access.authorize(&visit).await.unwrap().new_session.unwrap();
        assert_eq!(session.len(), 64);
        assert!(!session.contains("sk-master"));
        let again = Presented { session: Some(&session), ..from("10.0.0.5") };
        let caller = access.authorize(&again).await.unwrap();
        assert_eq!((caller.owner.as_str(), caller.actor.as_str()), ("default", "master_key"));
        let forged = Presented { session: Some("00ff"), ..from("10.0.0.5") };
        assert_eq!(access.authorize(&forged).await, Err(Denied::NeedsCredential));
    }

    #[test]
    fn cookies_are_parsed_and_set_strictly() {
        assert_eq!(session_from_cookies("a=1; tollgate_auth_session=abc; b=2"), Some("abc"));
        assert_eq!(session_from_cookies("tollgate_auth_session="), None);
        assert_eq!(session_from_cookies("other=abc"), None);
        let cookie = session_cookie("abc", false);
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        assert!(!cookie.contains("Secure"));
        assert!(session_cookie("abc", true).ends_with("; Secure"));
    }

    #[test]
    fn helpers() {
        assert_eq!(
            key_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(key_hash("").len(), 64);
    }
}
