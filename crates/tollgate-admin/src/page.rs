//! Answering with pages: every page is rendered with a fresh CSP nonce (the only inline style
//! and script allowed), never cached, never framed; forms are posted, checked against the
//! session's CSRF token, and answered with a redirect (or the form again with its errors).

use askama::Template;
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use serde::de::DeserializeOwned;
use tollgate_proxy::AppState;
use tollgate_proxy::body::LimitedBody;

use crate::session::{self, Signed};

/// Where the UI lives and how the browser reached it.
#[derive(Debug, Clone)]
pub struct Base {
    /// The UI's path: `SERVER_ROOT_PATH` + `/ui`.
    pub ui: String,
    /// Whether the browser came over https (directly or through a TLS-terminating proxy that
    /// says so in `X-Forwarded-Proto`): the cookie is then `Secure`.
    pub https: bool,
}

impl Base {
    /// The base of a request.
    pub fn of(parts: &Parts, state: &AppState) -> Self {
        let forwarded = parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').next().unwrap_or("").trim().eq_ignore_ascii_case("https"));
        let https = forwarded.unwrap_or(parts.uri.scheme_str() == Some("https"));
        Self { ui: format!("{}/ui", state.settings().server_root_path), https }
    }

    /// A path inside the UI.
    pub fn to(&self, path: &str) -> String {
        format!("{}{path}", self.ui)
    }
}

/// What every page's layout needs.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The CSP nonce of this response.
    pub nonce: String,
    /// The UI's path.
    pub ui: String,
    /// The page's title.
    pub title: String,
    /// Which navigation entry is current.
    pub section: &'static str,
    /// Who is signed in (empty on the sign-in page).
    pub who: String,
    /// Their role, as LiteLLM names it.
    pub role: &'static str,
    /// Whether they may change things (forms are shown only then).
    pub manages: bool,
    /// Whether they see every key, model and log.
    pub sees_all: bool,
    /// The token forms post back.
    pub csrf: String,
    /// A notice from the previous action (`?done=`).
    pub notice: Option<String>,
}

impl Frame {
    /// The frame of a page `signed` sees.
    pub fn new(base: &Base, signed: &Signed, title: &str, section: &'static str) -> Self {
        Self {
            nonce: nonce(),
            ui: base.ui.clone(),
            title: title.to_owned(),
            section,
            who: signed.name().to_owned(),
            role: signed.role.as_str(),
            manages: signed.role.manages(),
            sees_all: signed.role.sees_all(),
            csrf: signed.csrf.clone(),
            notice: None,
        }
    }

    /// The frame of a page seen before signing in.
    pub fn anonymous(base: &Base, title: &str) -> Self {
        Self {
            nonce: nonce(),
            ui: base.ui.clone(),
            title: title.to_owned(),
            section: "",
            who: String::new(),
            role: "",
            manages: false,
            sees_all: false,
            csrf: String::new(),
            notice: None,
        }
    }

    /// With a notice to show.
    pub fn with_notice(mut self, notice: Option<String>) -> Self {
        self.notice = notice.filter(|n| !n.is_empty()).map(|n| n.chars().take(200).collect());
        self
    }
}

/// A fresh CSP nonce.
pub fn nonce() -> String {
    let mut buf = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut buf);
    hex::encode(buf)
}

/// Renders `page` with its security headers.
pub fn html<T: Template>(status: StatusCode, nonce: &str, page: &T) -> Response {
    let body = match page.render() {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, "admin UI: cannot render a page");
            return (StatusCode::INTERNAL_SERVER_ERROR, "cannot render the page").into_response();
        }
    };
    let mut response = (status, body).into_response();
    let policy = tollgate_guard::PagePolicy { fetches: false, referrer: "same-origin" };
    tollgate_guard::page_headers(response.headers_mut(), nonce, policy);
    response
}

/// A page with a heading and a message: refusals, errors, how to enable the UI.
#[derive(Template)]
#[template(path = "admin/message.html")]
pub struct MessagePage {
    /// The frame.
    pub frame: Frame,
    /// What happened.
    pub heading: String,
    /// What to do.
    pub message: String,
}

fn message(base: &Base, status: StatusCode, heading: &str, text: &str) -> Response {
    let frame = Frame::anonymous(base, heading);
    let nonce = frame.nonce.clone();
    let page = MessagePage { frame, heading: heading.to_owned(), message: text.to_owned() };
    html(status, &nonce, &page)
}

/// 403 with why.
pub fn refused(base: &Base, why: &str) -> Response {
    message(base, StatusCode::FORBIDDEN, "Not allowed", why)
}

/// 404.
pub fn not_found(base: &Base, what: &str) -> Response {
    message(base, StatusCode::NOT_FOUND, "Not found", what)
}

/// 400: a query the page cannot read (a damaged link), with what to do.
pub fn invalid(base: &Base, why: &str) -> Response {
    message(base, StatusCode::BAD_REQUEST, "Invalid link", why)
}

/// 503: the database does not answer.
pub fn unavailable(base: &Base) -> Response {
    message(
        base,
        StatusCode::SERVICE_UNAVAILABLE,
        "Database unavailable",
        "The database is not answering right now; the gateway keeps serving requests. Try again in a moment.",
    )
}

/// After a change: back to `path` with a notice (POST, then redirect, then GET).
pub fn done(base: &Base, path: &str, notice: &str) -> Response {
    let sep = if path.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{}{path}{sep}done={}", base.ui, url_encode(notice))).into_response()
}

/// Percent-encodes a query value.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `?done=`: the notice a page shows after a change.
#[derive(Debug, serde::Deserialize)]
pub struct DoneQuery {
    /// The notice.
    #[serde(default)]
    pub done: Option<String>,
}

#[derive(serde::Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

/// Reads a form body posted by `signed`, refusing it without their CSRF token.
pub fn read_form<T: DeserializeOwned>(
    base: &Base,
    signed: &Signed,
    body: &[u8],
) -> Result<T, Response> {
    let token: CsrfField =
        serde_urlencoded::from_bytes(body).unwrap_or(CsrfField { csrf: String::new() });
    if token.csrf.is_empty() || !signed.csrf_matches(&token.csrf) {
        return Err(refused(
            base,
            "This form has expired or did not come from this console; reload the page and try again.",
        ));
    }
    serde_urlencoded::from_bytes(body)
        .map_err(|e| message(base, StatusCode::BAD_REQUEST, "Invalid form", &e.to_string()))
}

/// A form posted by someone signed in, read and checked against their CSRF token (a
/// refusal is the page to answer); the last extractor of a form handler.
pub struct Submitted<T> {
    /// Where the UI lives.
    pub base: Base,
    /// Who posted it.
    pub signed: Signed,
    /// What the form holds.
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for Submitted<T> {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let base = Base::of(&parts, state);
        let signed = Signed::from_request_parts(&mut parts, state).await?;
        let req = axum::extract::Request::from_parts(parts, body);
        let Posted(body) = Posted::from_request(req, state).await?;
        let form = read_form(&base, &signed, &body)?;
        Ok(Self { base, signed, form })
    }
}

/// A form's raw body, bounded like every management body.
pub struct Posted(pub Vec<u8>);

impl FromRequest<AppState> for Posted {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &AppState) -> Result<Self, Response> {
        LimitedBody::from_request(req, state)
            .await
            .map(|LimitedBody(b)| Posted(b.to_vec()))
            .map_err(IntoResponse::into_response)
    }
}

/// An optional text field: empty means absent.
pub fn text(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// An optional number field, with the message shown next to it when it is not one.
pub fn number<T: std::str::FromStr>(
    field: &str,
    v: &Option<String>,
    errors: &mut Vec<(String, String)>,
) -> Option<T> {
    let s = v.as_deref().map(str::trim).filter(|s| !s.is_empty())?;
    match s.parse() {
        Ok(n) => Some(n),
        Err(_) => {
            errors.push((field.to_owned(), format!("`{s}` is not a number")));
            None
        }
    }
}

/// Messages to show next to form fields, by field name (`form` for the whole form).
#[derive(Debug, Default, Clone)]
pub struct Errors(pub std::collections::HashMap<String, String>);

impl Errors {
    /// The message for `field`, if any.
    pub fn of(&self, field: &str) -> Option<String> {
        self.0.get(field).cloned()
    }
}

impl FromIterator<(String, String)> for Errors {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

/// One text field of a form, with what was typed and its message.
#[derive(Debug, Clone)]
pub struct Field {
    /// Its name in the form.
    pub name: &'static str,
    /// Its label.
    pub label: &'static str,
    /// What it holds.
    pub value: String,
    /// The message next to it.
    pub error: Option<String>,
}

/// Fields `(name, label, value)` with their messages from `errors`.
pub fn fields(list: &[(&'static str, &'static str, Option<&str>)], errors: &Errors) -> Vec<Field> {
    list.iter()
        .map(|(name, label, value)| Field {
            name,
            label,
            value: value.unwrap_or("").to_owned(),
            error: errors.of(name),
        })
        .collect()
}

/// A list typed into one field (models, patterns, access groups): commas, spaces or lines
/// between entries.
pub fn list(v: &str) -> Vec<String> {
    v.split([',', ' ', '\n']).map(str::trim).filter(|m| !m.is_empty()).map(str::to_owned).collect()
}

/// An operation's refusal, shown next to the field it names (`form` when it names none).
pub fn field_error(e: &tollgate_proxy::ApiError) -> Errors {
    let field = e.param().unwrap_or("form").to_owned();
    Errors(std::collections::HashMap::from([(field, e.message().to_owned())]))
}

/// An operation's refusal next to the form field its parameter ends with
/// (`litellm_params.api_base` is the field `api_base`) when the form has one among `fields`;
/// above the form, naming the parameter, when it has not.
pub fn field_error_among(e: &tollgate_proxy::ApiError, fields: &[&str]) -> Errors {
    let (field, message) = match e.param() {
        None => ("form".to_owned(), e.message().to_owned()),
        Some(param) => match param.rsplit('.').next().filter(|f| fields.contains(f)) {
            Some(field) => (field.to_owned(), e.message().to_owned()),
            None => ("form".to_owned(), format!("{param}: {}", e.message())),
        },
    };
    Errors(std::collections::HashMap::from([(field, message)]))
}

/// The budget and rate-limit fields that key, user and team forms share, as typed.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct LimitsForm {
    #[serde(default)]
    max_budget: Option<String>,
    #[serde(default)]
    budget_duration: Option<String>,
    #[serde(default)]
    rpm_limit: Option<String>,
    #[serde(default)]
    tpm_limit: Option<String>,
    #[serde(default)]
    max_parallel_requests: Option<String>,
    #[serde(default)]
    max_premium_requests: Option<String>,
    #[serde(default)]
    premium_budget_duration: Option<String>,
}

/// A change of limits from an edit form: a field not posted is left as it is, an empty one
/// clears its limit.
#[derive(Debug, Default)]
pub struct LimitsChange {
    /// Budget in USD.
    pub max_budget: Option<Option<f64>>,
    /// Budget period.
    pub budget_duration: Option<Option<String>>,
    /// Requests per minute.
    pub rpm_limit: Option<Option<i64>>,
    /// Tokens per minute.
    pub tpm_limit: Option<Option<i64>>,
    /// Requests at once.
    pub max_parallel_requests: Option<Option<i64>>,
    /// Copilot premium requests per premium period.
    pub max_premium_requests: Option<Option<f64>>,
    /// Premium period.
    pub premium_budget_duration: Option<Option<String>>,
}

/// `None` for a field not posted, `Some(None)` for an empty one (clear the limit), else the
/// number, or an error.
fn limit<T: std::str::FromStr>(
    field: &str,
    v: &Option<String>,
    errors: &mut Vec<(String, String)>,
) -> Option<Option<T>> {
    v.as_ref()?;
    Some(number(field, v, errors))
}

impl LimitsForm {
    /// A record's limits, as the edit form shows them.
    pub fn of(l: &tollgate_store::Limits) -> Self {
        let shown = |v: Option<String>| Some(v.unwrap_or_default());
        Self {
            max_budget: shown(l.max_budget.map(|v| v.to_string())),
            budget_duration: shown(l.budget_duration.clone()),
            rpm_limit: shown(l.rpm_limit.map(|v| v.to_string())),
            tpm_limit: shown(l.tpm_limit.map(|v| v.to_string())),
            max_parallel_requests: shown(l.max_parallel_requests.map(|v| v.to_string())),
            max_premium_requests: shown(l.max_premium_requests.map(|v| v.to_string())),
            premium_budget_duration: shown(l.premium_budget_duration.clone()),
        }
    }

    /// The limits of something new; a field that is not a number goes to `errors`.
    pub fn new_limits(
        &self,
        errors: &mut Vec<(String, String)>,
    ) -> tollgate_proxy::routes::admin::LimitsBody {
        tollgate_proxy::routes::admin::LimitsBody {
            max_budget: number("max_budget", &self.max_budget, errors),
            budget_duration: text(self.budget_duration.clone()),
            rpm_limit: number("rpm_limit", &self.rpm_limit, errors),
            tpm_limit: number("tpm_limit", &self.tpm_limit, errors),
            max_parallel_requests: number(
                "max_parallel_requests",
                &self.max_parallel_requests,
                errors,
            ),
            max_premium_requests: number(
                "max_premium_requests",
                &self.max_premium_requests,
                errors,
            ),
            premium_budget_duration: text(self.premium_budget_duration.clone()),
        }
    }

    /// The change an edit form asks for; a field that is not a number goes to `errors`.
    pub fn change(&self, errors: &mut Vec<(String, String)>) -> LimitsChange {
        LimitsChange {
            max_budget: limit("max_budget", &self.max_budget, errors),
            budget_duration: self.budget_duration.as_ref().map(|d| text(Some(d.clone()))),
            rpm_limit: limit("rpm_limit", &self.rpm_limit, errors),
            tpm_limit: limit("tpm_limit", &self.tpm_limit, errors),
            max_parallel_requests: limit(
                "max_parallel_requests",
                &self.max_parallel_requests,
                errors,
            ),
            max_premium_requests: limit("max_premium_requests", &self.max_premium_requests, errors),
            premium_budget_duration: self
                .premium_budget_duration
                .as_ref()
                .map(|d| text(Some(d.clone()))),
        }
    }

    /// The form's fields, with what was typed and their messages.
    pub fn fields(&self, errors: &Errors) -> Vec<Field> {
        fields(
            &[
                ("max_budget", "Budget (USD)", self.max_budget.as_deref()),
                (
                    "budget_duration",
                    "Budget resets every (30d, 24h)",
                    self.budget_duration.as_deref(),
                ),
                ("rpm_limit", "Requests per minute", self.rpm_limit.as_deref()),
                ("tpm_limit", "Tokens per minute", self.tpm_limit.as_deref()),
                (
                    "max_parallel_requests",
                    "Requests at once",
                    self.max_parallel_requests.as_deref(),
                ),
                (
                    "max_premium_requests",
                    "Copilot premium requests",
                    self.max_premium_requests.as_deref(),
                ),
                (
                    "premium_budget_duration",
                    "Premium requests reset every (empty: each month)",
                    self.premium_budget_duration.as_deref(),
                ),
            ],
            errors,
        )
    }
}

/// Someone signed in who sees every user and team (an admin or a viewer), with where the
/// UI lives; anyone else is answered 403.
pub struct SeesAll {
    /// Where the UI lives.
    pub base: Base,
    /// Who it is.
    pub signed: Signed,
}

impl FromRequestParts<AppState> for SeesAll {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let base = Base::of(parts, state);
        let signed = Signed::from_request_parts(parts, state).await?;
        if !signed.role.sees_all() {
            return Err(refused(&base, "Only admins and viewers see users and teams."));
        }
        Ok(Self { base, signed })
    }
}

/// Refuses anyone who may not change the gateway (a viewer or an `internal_user`).
pub fn manages(base: &Base, signed: &Signed) -> Result<(), Response> {
    if signed.role.manages() {
        Ok(())
    } else {
        Err(refused(base, "Your role may look but not change this."))
    }
}

/// One option of a select field.
#[derive(Debug, Clone)]
pub struct Choice {
    /// Its value, also shown.
    pub value: &'static str,
    /// Whether it is the one chosen.
    pub selected: bool,
}

/// `options` with `current` chosen.
pub fn choices(options: &[&'static str], current: &str) -> Vec<Choice> {
    options.iter().map(|&value| Choice { value, selected: value == current }).collect()
}

/// A store answer, or the 503 page (the failure logged, naming `what` was being read).
pub fn read<T>(
    base: &Base,
    what: &str,
    answer: Result<T, tollgate_store::StoreError>,
) -> Result<T, Response> {
    answer.map_err(|e| {
        tracing::error!(error = %e, "admin UI: the store failed reading {what}");
        unavailable(base)
    })
}

/// One thing read from the store: it, or the 404 page saying `missing`, or the 503 page.
pub fn found<T>(
    base: &Base,
    missing: &str,
    answer: Result<Option<T>, tollgate_store::StoreError>,
) -> Result<T, Response> {
    read(base, missing, answer)?.ok_or_else(|| not_found(base, missing))
}

/// Extractor: the signed-in person. Without a session a page view is sent to the sign-in
/// page (and back afterwards); anything else is refused.
impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let base = Base::of(parts, state);
        let found = match session::cookie_of(parts) {
            Some(c) => session::resume(state, &c).await,
            None => Ok(None),
        };
        match found {
            Ok(Some(s)) => Ok(s),
            Ok(None) if parts.method == axum::http::Method::GET => {
                let back = parts.uri.path_and_query().map_or("", |p| p.as_str());
                // Under SERVER_ROOT_PATH the prefix is already off the path seen here.
                let next = back
                    .strip_prefix(base.ui.as_str())
                    .or_else(|| back.strip_prefix("/ui"))
                    .unwrap_or("");
                let target = format!("{}/login?next={}", base.ui, url_encode(next));
                Err(Redirect::to(&target).into_response())
            }
            Ok(None) => Err(refused(&base, "Your session has ended; sign in again.")),
            Err(e) => {
                tracing::error!(error = %e, "the admin UI cannot read its sessions");
                Err(unavailable(&base))
            }
        }
    }
}
