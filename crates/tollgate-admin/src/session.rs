//! Who is signed in: a random cookie whose SHA-256 names a session kept in the store, so
//! that sign-out and expiry hold on every replica. Sessions end after [`IDLE`] without a
//! request, and [`LONGEST`] after sign-in regardless. Each carries the CSRF token every form
//! of that session must post back.

use axum::http::header;
use axum::http::request::Parts;

use chrono::{Duration, Utc};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use tollgate_proxy::AppState;
use tollgate_proxy::ops::Actor;
use tollgate_store::{NewSession, SessionRecord, StoreError};

/// The cookie's name.
pub const COOKIE: &str = "tollgate_ui";

/// A session ends after this long without a request.
pub const IDLE: Duration = Duration::minutes(30);

/// A session ends this long after sign-in, however busy.
pub const LONGEST: Duration = Duration::hours(12);

/// How stale `last_seen_at` may get before a request writes it again.
const TOUCH_EVERY: Duration = Duration::seconds(60);

/// What a signed-in person may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `proxy_admin`: sees and changes everything.
    Admin,
    /// `proxy_admin_viewer`: sees everything, changes nothing.
    Viewer,
    /// `internal_user`: their own keys and spend only.
    User,
    /// `internal_user_viewer`, or a role this console does not know: their own keys and spend,
    /// changing nothing.
    UserViewer,
}

impl Role {
    /// The role as stored and as LiteLLM names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "proxy_admin",
            Self::Viewer => "proxy_admin_viewer",
            Self::User => "internal_user",
            Self::UserViewer => "internal_user_viewer",
        }
    }

    /// A stored role; anything unknown is the least one, which changes nothing.
    pub fn parse(s: &str) -> Self {
        match s {
            "proxy_admin" => Self::Admin,
            "proxy_admin_viewer" => Self::Viewer,
            "internal_user" => Self::User,
            _ => Self::UserViewer,
        }
    }

    /// Whether every key, user, team, model and log is visible.
    pub fn sees_all(self) -> bool {
        matches!(self, Self::Admin | Self::Viewer)
    }

    /// Whether the gateway's configuration may be changed.
    pub fn manages(self) -> bool {
        self == Self::Admin
    }

    /// Whether anything may be changed: everything (the admin) or one's own keys and accounts.
    pub fn changes(self) -> bool {
        matches!(self, Self::Admin | Self::User)
    }
}

/// The person behind a request, from their session.
#[derive(Debug, Clone)]
pub struct Signed {
    /// `ui_admin`, `master_key` or `user:<id>`.
    pub subject: String,
    /// Their user id, when they signed in as a user.
    pub user_id: Option<String>,
    /// What they may do.
    pub role: Role,
    /// The token their forms carry.
    pub csrf: String,
    /// The stored session's id (the SHA-256 of its cookie): what binds state kept in memory,
    /// such as a device flow, to this sign-in.
    pub session: String,
}

impl Signed {
    /// How the audit log names them.
    pub fn actor(&self) -> Actor {
        Actor(format!("ui:{}", self.user_id.as_deref().unwrap_or(&self.subject)))
    }

    /// The name shown in the page header.
    pub fn name(&self) -> &str {
        self.user_id.as_deref().unwrap_or(match self.subject.as_str() {
            "master_key" => "admin (master key)",
            _ => "admin",
        })
    }

    /// Whether `given` is this session's CSRF token.
    pub fn csrf_matches(&self, given: &str) -> bool {
        self.csrf.as_bytes().ct_eq(given.as_bytes()).into()
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

fn hash(cookie: &str) -> String {
    hex::encode(Sha256::digest(cookie.as_bytes()))
}

/// Opens a session; answers the cookie value (shown to nobody but the browser).
pub async fn open(
    state: &AppState,
    subject: String,
    user_id: Option<String>,
    role: Role,
) -> Result<String, StoreError> {
    let cookie = random_hex(32);
    let new = NewSession {
        session_hash: hash(&cookie),
        subject,
        user_id,
        role: role.as_str().to_owned(),
        csrf_token: random_hex(16),
        expires_at: Utc::now() + IDLE,
    };
    state.store().create_session(new).await?;
    Ok(cookie)
}

/// Ends the session `cookie` names.
pub async fn close(state: &AppState, cookie: &str) -> Result<(), StoreError> {
    state.store().delete_session(&hash(cookie)).await.map(|_| ())
}

/// The `Set-Cookie` value for `value` (empty: remove it), scoped to the UI's path, HttpOnly,
/// SameSite=Strict, and Secure when the browser reached us over https.
pub fn set_cookie(ui_path: &str, https: bool, value: &str) -> String {
    let secure = if https { "; Secure" } else { "" };
    let age = if value.is_empty() { "; Max-Age=0".to_owned() } else { String::new() };
    format!("{COOKIE}={value}; Path={ui_path}; HttpOnly; SameSite=Strict{secure}{age}")
}

/// The session cookie of a request.
pub fn cookie_of(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Reads, checks and (now and then) extends the session of `cookie`.
pub(crate) async fn resume(state: &AppState, cookie: &str) -> Result<Option<Signed>, StoreError> {
    let session_hash = hash(cookie);
    let Some(s) = state.store().get_session(&session_hash).await? else { return Ok(None) };
    let now = Utc::now();
    if s.expires_at <= now {
        let _ = state.store().delete_session(&session_hash).await;
        return Ok(None);
    }
    if now - s.last_seen_at >= TOUCH_EVERY {
        let expires = (now + IDLE).min(s.created_at + LONGEST);
        state.store().touch_session(&session_hash, now, expires).await?;
    }
    Ok(Some(signed(s)))
}

fn signed(s: SessionRecord) -> Signed {
    Signed {
        role: Role::parse(&s.role),
        subject: s.subject,
        user_id: s.user_id,
        csrf: s.csrf_token,
        session: s.session_hash,
    }
}
