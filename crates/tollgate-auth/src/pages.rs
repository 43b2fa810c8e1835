//! The HTML pages (askama templates in `templates/auth/`), and how they are answered: with a
//! per-response CSP nonce for the inline style and script, never cached, never sending a
//! referrer (a `?key=` must not leak to GitHub).

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::access::random_hex;

/// The device-flow page: the code, the copy-and-open button, the live status.
#[derive(Template)]
#[template(path = "auth/github.html")]
pub(crate) struct FlowPage<'a> {
    pub(crate) nonce: String,
    pub(crate) title: &'a str,
    pub(crate) owner_label: &'a str,
    pub(crate) user_code: &'a str,
    pub(crate) verification_uri: &'a str,
    pub(crate) status_url: String,
}

/// The account is linked already.
#[derive(Template)]
#[template(path = "auth/linked.html")]
pub(crate) struct LinkedPage<'a> {
    pub(crate) nonce: String,
    pub(crate) title: &'a str,
    pub(crate) owner_label: &'a str,
    pub(crate) login: Option<&'a str>,
    pub(crate) linked_at: String,
}

/// Something stops the visitor; the message says what and what to do.
#[derive(Template)]
#[template(path = "auth/error.html")]
pub(crate) struct ErrorPage<'a> {
    pub(crate) nonce: String,
    pub(crate) title: &'a str,
    pub(crate) heading: &'a str,
    pub(crate) message: &'a str,
    pub(crate) hint: Option<&'a str>,
}

/// A fresh CSP nonce.
pub(crate) fn nonce() -> String {
    random_hex(16)
}

/// Renders `page` with its security headers, and a session cookie when one was opened.
pub(crate) fn html<T: Template>(
    status: StatusCode,
    nonce: &str,
    page: &T,
    set_cookie: Option<&str>,
) -> Response {
    let body = match page.render() {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, "auth helper: cannot render a page");
            return (StatusCode::INTERNAL_SERVER_ERROR, "cannot render the page").into_response();
        }
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    // The page's script polls the flow's status; `?key=` must not leak to GitHub.
    let policy = tollgate_guard::PagePolicy { fetches: true, referrer: "no-referrer" };
    tollgate_guard::page_headers(headers, nonce, policy);
    if let Some(cookie) = set_cookie.and_then(|c| HeaderValue::from_str(c).ok()) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    response
}

/// An error page.
pub(crate) fn error(
    status: StatusCode,
    heading: &str,
    message: &str,
    hint: Option<&str>,
) -> Response {
    let nonce = nonce();
    let page = ErrorPage { nonce: nonce.clone(), title: heading, heading, message, hint };
    let mut response = html(status, &nonce, &page, None);
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_html_escaped() {
        let page = ErrorPage {
            nonce: "n".into(),
            title: "t",
            heading: "<script>alert(1)</script>",
            message: "a & \"b\"",
            hint: None,
        };
        let body = page.render().unwrap();
        assert!(!body.contains("<script>alert(1)"));
        assert!(body.contains("&#60;script&#62;") || body.contains("&lt;script&gt;"), "{body}");
    }

    #[test]
    fn flow_page_shows_the_code_and_escapes_attributes() {
        let page = FlowPage {
            nonce: "abc".into(),
            title: "Link",
            owner_label: "the shared Copilot account",
            user_code: "ABCD-1234",
            verification_uri: "https://github.com/login/device?x=\"><b>",
            status_url: "/github/status?flow=f".into(),
        };
        let body = page.render().unwrap();
        assert!(body.contains(">ABCD-1234</output>"));
        assert!(
            body.contains("Copy code &#38; open GitHub")
                || body.contains("Copy code &amp; open GitHub")
        );
        assert!(!body.contains("\"><b>"));
        assert!(body.contains("<script nonce=\"abc\">"));
    }
}
