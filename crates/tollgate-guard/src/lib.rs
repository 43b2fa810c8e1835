//! Request guards both tollgate servers (the proxy on :4000, the auth helper on :4001) put in
//! front of their routes, so that a web page the user happens to visit cannot act through the
//! user's browser:
//!
//! - [`LocalHostsOnly`]: while no master key is set, only `Host` values that name this machine.
//!   Without it, DNS rebinding lets a page on the attacker's name reach the loopback listener
//!   as a same-origin page and read the answers.
//! - [`SameOriginOnly`]: no cross-site browser requests, judged by `Sec-Fetch-Site`, else by
//!   `Origin`. Clients that are not browsers send neither and pass.
//! - [`JsonBodiesOnly`]: request bodies must be JSON. A page may send `text/plain` or a form
//!   anywhere without asking; JSON needs a CORS preflight, which tollgate never grants.
//!
//! Each guard is a pure [`Rule`] over the request head, unit-tested on its own, and
//! [`GuardLayer`] turns any rule into a tower middleware. The app decides how a [`Refusal`] is
//! answered, in its caller's protocol. Only `http` types and tower's traits: no axum.

mod host;
mod json;
mod layer;
mod page;
mod site;

use http::StatusCode;

pub use host::{LocalHostsOnly, LocalNames, is_loopback};
pub use json::{JsonBodiesOnly, is_json};
pub use layer::{Guard, GuardLayer, Head, Rule};
pub use page::{PagePolicy, page_headers};
pub use site::{Origin, SameOriginOnly, SecFetchSite};

/// Why a guard refused a request; says which status and message to answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No master key is set and the `Host` does not name this machine.
    ForeignHost {
        /// The `Host` the request named (shortened).
        host: String,
    },
    /// A browser sent the request from another site.
    CrossSite {
        /// What gave it away, for the message.
        why: String,
    },
    /// The body is not JSON.
    NotJson {
        /// The `Content-Type` it came with (shortened), if any.
        content_type: Option<String>,
    },
}

impl Refusal {
    /// 421 for a foreign `Host` (the request reached a server that does not answer to that
    /// name), 403 for a cross-site request, 415 for a body that is not JSON.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::ForeignHost { .. } => StatusCode::MISDIRECTED_REQUEST,
            Self::CrossSite { .. } => StatusCode::FORBIDDEN,
            Self::NotJson { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::ForeignHost { .. } => "host_not_allowed",
            Self::CrossSite { .. } => "cross_site_request",
            Self::NotJson { .. } => "unsupported_media_type",
        }
    }

    /// A short heading, for pages.
    pub fn title(&self) -> &'static str {
        match self {
            Self::ForeignHost { .. } => "Wrong address",
            Self::CrossSite { .. } => "Request refused",
            Self::NotJson { .. } => "Unsupported request",
        }
    }

    /// What happened and what to do instead.
    pub fn message(&self) -> String {
        match self {
            Self::ForeignHost { host } => format!(
                "This gateway has no master key, so it answers only requests addressed to this \
                 machine (localhost or a loopback address such as 127.0.0.1), not to `{host}`. \
                 Use http://localhost with this port, or set TOLLGATE_MASTER_KEY to serve other \
                 host names."
            ),
            Self::CrossSite { why } => format!(
                "Cross-site request refused: {why}. Browsers may use this endpoint only from \
                 tollgate's own pages; clients that are not browsers (curl, the SDKs) are not \
                 affected."
            ),
            Self::NotJson { content_type: None } => "This endpoint takes a JSON body: send it \
                                                     with `Content-Type: application/json`."
                .to_owned(),
            Self::NotJson { content_type: Some(found) } => format!(
                "This endpoint takes a JSON body (`Content-Type: application/json`), not \
                 `{found}`."
            ),
        }
    }
}

/// `host[:port]` as an authority: no user info, and a port, when there is one, that is a
/// number up to 65535 (`http`'s parser leaves the port unchecked).
fn authority(text: &str) -> Option<http::uri::Authority> {
    let parsed: http::uri::Authority = text.trim().parse().ok()?;
    let rest = parsed.as_str().strip_prefix(parsed.host())?;
    let port_ok =
        rest.is_empty() || rest.strip_prefix(':').is_some_and(|p| p.parse::<u16>().is_ok());
    port_ok.then_some(parsed)
}

/// A header value as it may appear in a message: lossy, without control characters, at most
/// 100 characters.
fn shown(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    let mut out: String = text.chars().filter(|c| !c.is_control()).take(100).collect();
    if text.chars().count() > 100 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_what_to_do() {
        let host = Refusal::ForeignHost { host: "evil.example".into() };
        assert_eq!(host.status(), 421);
        assert!(host.message().contains("`evil.example`") && host.message().contains("MASTER_KEY"));
        let site = Refusal::CrossSite { why: "it came from `http://a.example`".into() };
        assert_eq!((site.status().as_u16(), site.code()), (403, "cross_site_request"));
        assert!(site.message().contains("curl"));
        let none = Refusal::NotJson { content_type: None };
        assert_eq!(none.status(), 415);
        assert!(none.message().contains("Content-Type: application/json"));
        let plain = Refusal::NotJson { content_type: Some("text/plain".into()) };
        assert!(plain.message().contains("not `text/plain`"));
    }

    #[test]
    fn authorities_are_host_and_numeric_port_only() {
        for good in ["localhost", "localhost:4000", "[::1]:4000", "127.0.0.1", "a.example:65535"] {
            assert!(authority(good).is_some(), "{good}");
        }
        for bad in ["", "localhost:port", "localhost:", "a.example:65536", "u@localhost", "a b"] {
            assert!(authority(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn shown_values_are_short_and_printable() {
        assert_eq!(shown(b"evil.example"), "evil.example");
        assert_eq!(shown(b"a\r\nb\x1b"), "ab");
        let long = shown("x".repeat(500).as_bytes());
        assert_eq!(long.chars().count(), 101);
        assert!(long.ends_with('…'));
    }
}
