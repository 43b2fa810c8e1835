//! Signing in and out. The admin signs in with `UI_USERNAME`/`UI_PASSWORD`, or as `admin`
//! (or `UI_USERNAME`) with the master key; a user created with a password signs in as
//! themselves, with their role. Failed attempts are throttled per name and per address.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::{Argon2, PasswordHash, PasswordVerifier as _};
use askama::Template;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tollgate_proxy::AppState;

use crate::Console;
use crate::page::{self, Base, Frame, Posted};
use crate::session::{self, Role};

/// Failures within [`WINDOW`] after which a name or an address must wait.
const FREE_FAILURES: usize = 5;
/// How far back failures count.
const WINDOW: Duration = Duration::from_secs(15 * 60);

/// Failed sign-ins by name and by address.
#[derive(Debug, Default)]
pub struct Throttle {
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl Throttle {
    /// Counts an attempt for `keys` (as a failure until [`Throttle::clear`] says otherwise)
    /// unless one of them must still wait; answers how long, then.
    fn attempt(&self, keys: &[String], now: Instant) -> Option<Duration> {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let wait = Self::wait(&mut map, keys, now);
        if wait.is_none() {
            if map.len() > 100_000 {
                map.retain(|_, l| l.last().is_some_and(|t| now.duration_since(*t) < WINDOW));
            }
            for k in keys {
                map.entry(k.clone()).or_default().push(now);
            }
        }
        wait
    }

    /// How long `keys` must still wait, if any of them failed too often.
    fn wait(
        map: &mut HashMap<String, Vec<Instant>>,
        keys: &[String],
        now: Instant,
    ) -> Option<Duration> {
        keys.iter()
            .filter_map(|k| {
                let list = map.get_mut(k)?;
                list.retain(|t| now.duration_since(*t) < WINDOW);
                (list.len() >= FREE_FAILURES).then(|| {
                    // Each failure past the free ones doubles the wait, from 2 s to 15 min.
                    let extra = (list.len() - FREE_FAILURES).min(9) as u32;
                    let wait = Duration::from_secs(2u64 << extra).min(WINDOW);
                    let since = now.duration_since(*list.last().unwrap_or(&now));
                    wait.saturating_sub(since)
                })
            })
            .filter(|w| !w.is_zero())
            .max()
    }

    fn clear(&self, keys: &[String]) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        for k in keys {
            map.remove(k);
        }
    }
}

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage {
    frame: Frame,
    username: String,
    next: String,
    error: Option<String>,
    enabled: bool,
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    #[serde(default)]
    next: Option<String>,
}

/// Where to go after signing in: a path inside the UI only.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/".to_owned(),
    }
}

fn login_page(
    base: &Base,
    status: StatusCode,
    username: &str,
    next: &str,
    error: Option<String>,
    enabled: bool,
) -> Response {
    let frame = Frame::anonymous(base, "Sign in");
    let nonce = frame.nonce.clone();
    let page =
        LoginPage { frame, username: username.to_owned(), next: next.to_owned(), error, enabled };
    page::html(status, &nonce, &page)
}

/// Whether anyone can sign in at all: an admin password or a master key is set.
fn enabled(state: &AppState) -> bool {
    let s = state.settings();
    s.ui_password.is_some() || s.master_key.is_some()
}

pub(crate) async fn form(
    State(state): State<AppState>,
    parts: Parts,
    Query(q): Query<LoginQuery>,
) -> Response {
    let base = Base::of(&parts, &state);
    login_page(&base, StatusCode::OK, "", &safe_next(q.next.as_deref()), None, enabled(&state))
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: Option<String>,
}

/// Who `username`/`password` are, if anyone.
async fn check(
    state: &AppState,
    username: &str,
    password: &str,
) -> Result<Option<(String, Option<String>, Role)>, tollgate_store::StoreError> {
    let s = state.settings();
    let admin_name = s.ui_username.as_deref().unwrap_or("admin");
    if username == admin_name && s.ui_password.as_ref().is_some_and(|p| p.matches(password)) {
        return Ok(Some(("ui_admin".to_owned(), None, Role::Admin)));
    }
    // LiteLLM's habit: `admin` (or UI_USERNAME) with the master key.
    if (username == admin_name || username == "admin")
        && s.master_key.as_ref().is_some_and(|k| k.matches(password))
    {
        return Ok(Some(("master_key".to_owned(), None, Role::Admin)));
    }
    let Some(stored) = state.store().password_hash(username).await? else { return Ok(None) };
    let Some(user) = state.store().get_user(username).await? else { return Ok(None) };
    let verified = tokio::task::spawn_blocking({
        let (stored, password) = (stored, password.to_owned());
        move || {
            PasswordHash::new(&stored)
                .is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
        }
    })
    .await
    .unwrap_or(false);
    Ok(verified.then(|| {
        let role = Role::parse(user.user_role.as_deref().unwrap_or("internal_user"));
        (format!("user:{}", user.user_id), Some(user.user_id), role)
    }))
}

fn peer(parts: &Parts) -> Option<IpAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

pub(crate) async fn submit(
    State(state): State<AppState>,
    parts: Parts,
    Posted(body): Posted,
) -> Response {
    let base = Base::of(&parts, &state);
    let console = parts.extensions.get::<Arc<Console>>().cloned().unwrap_or_default();
    let f: LoginForm = serde_urlencoded::from_bytes(&body).unwrap_or(LoginForm {
        username: String::new(),
        password: String::new(),
        next: None,
    });
    let next = safe_next(f.next.as_deref());
    if !enabled(&state) {
        return login_page(&base, StatusCode::FORBIDDEN, "", &next, None, false);
    }
    let username = f.username.trim().to_owned();
    let keys = [
        format!("name:{username}"),
        format!("addr:{}", peer(&parts).map_or_else(|| "?".to_owned(), |ip| ip.to_string())),
    ];
    let now = Instant::now();
    // Checked and counted in one step, before the password is: guesses sent side by side
    // each count, and a success clears them.
    if let Some(wait) = console.throttle.attempt(&keys, now) {
        let secs = wait.as_secs().max(1);
        let mut r = login_page(
            &base,
            StatusCode::TOO_MANY_REQUESTS,
            &username,
            &next,
            Some(format!("Too many failed sign-ins. Try again in {secs} s.")),
            true,
        );
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let who = match check(&state, &username, &f.password).await {
        Ok(who) => who,
        Err(e) => {
            tracing::error!(error = %e, "admin UI sign-in: the store failed");
            return page::unavailable(&base);
        }
    };
    let Some((subject, user_id, role)) = who else {
        tracing::warn!(username = %username, "admin UI: a sign-in failed");
        return login_page(
            &base,
            StatusCode::UNAUTHORIZED,
            &username,
            &next,
            Some("Wrong name or password.".to_owned()),
            true,
        );
    };
    console.throttle.clear(&keys);
    match session::open(&state, subject, user_id, role).await {
        Ok(cookie) => {
            let mut r = Redirect::to(&base.to(&next)).into_response();
            if let Ok(v) =
                HeaderValue::from_str(&session::set_cookie(&base.ui, base.https, &cookie))
            {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "admin UI: cannot open a session");
            page::unavailable(&base)
        }
    }
}

pub(crate) async fn logout(
    State(state): State<AppState>,
    parts: Parts,
    signed: session::Signed,
    Posted(body): Posted,
) -> Response {
    let base = Base::of(&parts, &state);
    if let Err(r) =
        page::read_form::<std::collections::HashMap<String, String>>(&base, &signed, &body)
    {
        return r;
    }
    if let Some(c) = session::cookie_of(&parts)
        && let Err(e) = session::close(&state, &c).await
    {
        tracing::error!(error = %e, "admin UI: cannot end a session");
        return page::unavailable(&base);
    }
    let mut r = Redirect::to(&base.to("/login")).into_response();
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&base.ui, base.https, "")) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_count_before_the_password_is_checked() {
        let t = Throttle::default();
        let keys = ["name:boss".to_owned(), "addr:10.0.0.1".to_owned()];
        let now = Instant::now();
        // Five sent side by side all pass the check; the sixth waits although none has
        // been answered yet.
        for _ in 0..FREE_FAILURES {
            assert!(t.attempt(&keys, now).is_none());
        }
        assert!(t.attempt(&keys, now).is_some());
        // A success clears them.
        t.clear(&keys);
        assert!(t.attempt(&keys, now).is_none());
        // Another address for the same name still waits once the name is over.
        let other = ["name:boss".to_owned(), "addr:10.0.0.2".to_owned()];
        for _ in 0..FREE_FAILURES {
            let _ = t.attempt(&keys, now);
        }
        assert!(t.attempt(&other, now).is_some());
    }
}
