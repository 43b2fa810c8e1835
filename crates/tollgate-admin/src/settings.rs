//! Settings: the configuration in force with secrets masked, what `config check` warns
//! about, the version, the store and the spend writer's backlog.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use tollgate_proxy::AppState;

use crate::page::{self, Base, Frame};
use crate::session::Signed;

#[derive(Template)]
#[template(path = "admin/settings.html")]
struct SettingsPage {
    frame: Frame,
    rows: Vec<(&'static str, String)>,
    warnings: Vec<String>,
}

fn set(b: bool) -> String {
    if b { "set".to_owned() } else { "not set".to_owned() }
}

pub(crate) async fn page(State(state): State<AppState>, parts: Parts, signed: Signed) -> Response {
    let base = Base::of(&parts, &state);
    if !signed.role.sees_all() {
        return page::refused(&base, "Settings are for admins.");
    }
    let file = state.models().file();
    let s = state.settings();
    let r = &file.router;
    let w = state.sink().writer.stats();
    let router = state.router();
    let rows = vec![
        ("version", env!("CARGO_PKG_VERSION").to_owned()),
        (
            "config file",
            file.source
                .as_ref()
                .map_or_else(|| "none (defaults)".to_owned(), |p| p.display().to_string()),
        ),
        (
            "models",
            format!(
                "{} deployments in {} groups ({} stored)",
                router.catalog().deployments().count(),
                router.catalog().group_names().count(),
                state.models().stored().len()
            ),
        ),
        ("store", format!("{:?}", state.store().backend())),
        ("database URL", set(s.database_url.is_some())),
        ("master key", set(s.master_key.is_some())),
        ("static token", set(s.static_token.is_some())),
        ("UI password", set(s.ui_password.is_some())),
        (
            "secret key",
            if s.secret_key.is_some() {
                "TOLLGATE_SECRET_KEY".to_owned()
            } else {
                "secret.key in the data directory".to_owned()
            },
        ),
        ("listen", format!("{}:{} (auth helper {})", s.listen_host(), s.port, s.auth_port)),
        (
            "path prefix",
            if s.server_root_path.is_empty() {
                "none".to_owned()
            } else {
                s.server_root_path.clone()
            },
        ),
        ("data directory", s.data_dir.display().to_string()),
        ("request body limit", format!("{} bytes", s.max_request_bytes)),
        ("request timeout", format!("{} s", s.request_timeout.as_secs_f64())),
        (
            "prompt storage",
            if s.store_prompts { "on (redacted)".to_owned() } else { "off".to_owned() },
        ),
        (
            "routing",
            format!(
                "{:?}, {} retries, {} allowed fails, cooldown {} s, max fallbacks {}",
                r.strategy,
                r.num_retries,
                r.allowed_fails,
                r.cooldown_time.as_secs_f64(),
                r.max_fallbacks
            ),
        ),
        (
            "spend writer",
            format!(
                "{} queued, {} pending, {} spooled, {} written; database {}",
                w.queued,
                w.in_memory_pending,
                w.spool_pending,
                w.written,
                if w.database_ok { "ok" } else { "unavailable" }
            ),
        ),
    ];
    let warnings = file.diagnostics.iter().map(ToString::to_string).collect();
    let frame = Frame::new(&base, &signed, "Settings", "settings");
    let nonce = frame.nonce.clone();
    page::html(StatusCode::OK, &nonce, &SettingsPage { frame, rows, warnings })
}
