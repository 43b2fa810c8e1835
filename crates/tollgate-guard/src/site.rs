//! Cross-site browser requests: `Sec-Fetch-Site`, else `Origin` against `Host`.
//!
//! Browsers mark every request with `Sec-Fetch-Site`; page scripts cannot set or change it, so
//! when it is there it decides (a reverse proxy that rewrites `Host` does not confuse it).
//! Older browsers send only `Origin`, on cross-origin fetches and on every `POST`; its host and
//! port must then be the request's own. Clients that are not browsers send neither and pass.

use std::fmt;

use http::header::ORIGIN;

use crate::{Head, Refusal, Rule, shown};

/// The `Sec-Fetch-Site` header: where the request came from, as the browser saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecFetchSite {
    /// A page of the same origin (scheme, host and port).
    SameOrigin,
    /// Another origin of the same site: another port of `localhost`, another subdomain.
    SameSite,
    /// Another site.
    CrossSite,
    /// No page: the user typed the address, used a bookmark, or opened a link from elsewhere.
    None,
    /// A value this version does not know; treated as cross-site.
    Other,
}

impl SecFetchSite {
    /// From the header's value.
    pub fn parse(value: &[u8]) -> Self {
        match value.trim_ascii() {
            v if v.eq_ignore_ascii_case(b"same-origin") => Self::SameOrigin,
            v if v.eq_ignore_ascii_case(b"same-site") => Self::SameSite,
            v if v.eq_ignore_ascii_case(b"cross-site") => Self::CrossSite,
            v if v.eq_ignore_ascii_case(b"none") => Self::None,
            _ => Self::Other,
        }
    }
}

/// An `Origin` header: a scheme, a host and the port (explicit or the scheme's default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    /// Parses `scheme://host[:port]`. `null` (sandboxed frames, `file:` pages, some redirects),
    /// anything with a path or user info, and other text are `None`.
    pub fn parse(value: &str) -> Option<Self> {
        let uri: http::Uri = value.trim().parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let authority = crate::authority(uri.authority()?.as_str())?;
        if uri.path_and_query().is_some_and(|p| p != "/") {
            return None;
        }
        Some(Self {
            port: authority.port_u16().or_else(|| default_port(&scheme)),
            host: authority.host().to_ascii_lowercase(),
            scheme,
        })
    }

    /// Whether this is the origin of a request addressed to `authority` (its `Host`): the
    /// same host and port, a port left out meaning the scheme's default.
    pub fn is_host(&self, authority: &str) -> bool {
        let Some(authority) = crate::authority(authority) else { return false };
        let port = authority.port_u16().or_else(|| default_port(&self.scheme));
        matches!(self.scheme.as_str(), "http" | "https")
            && authority.host().eq_ignore_ascii_case(&self.host)
            && port == self.port
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        match (self.port, default_port(&self.scheme)) {
            (Some(port), default) if Some(port) != default => write!(f, ":{port}"),
            _ => Ok(()),
        }
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// Refuses cross-site browser requests: `Sec-Fetch-Site: cross-site` always, `same-site`
/// unless the method is safe (another port of `localhost` is the same site, and may be any
/// local web app); without `Sec-Fetch-Site`, an `Origin` that is not the request's own.
#[derive(Debug, Clone, Copy, Default)]
pub struct SameOriginOnly;

impl Rule for SameOriginOnly {
    fn check(&self, head: &Head<'_>) -> Result<(), Refusal> {
        let refuse = |why: String| Err(Refusal::CrossSite { why });
        if let Some(value) = head.headers.get("sec-fetch-site") {
            return match SecFetchSite::parse(value.as_bytes()) {
                SecFetchSite::SameOrigin | SecFetchSite::None => Ok(()),
                SecFetchSite::SameSite if head.method.is_safe() => Ok(()),
                _ => refuse(format!(
                    "the browser sent it from another site (`Sec-Fetch-Site: {}`)",
                    shown(value.as_bytes())
                )),
            };
        }
        let Some(value) = head.headers.get(ORIGIN) else { return Ok(()) };
        let origin = value.to_str().ok().and_then(Origin::parse);
        let host = head.host().unwrap_or("");
        match origin {
            Some(origin) if origin.is_host(host) => Ok(()),
            Some(origin) => refuse(format!(
                "the page at `{origin}` sent it to `{}`, another origin",
                shown(host.as_bytes())
            )),
            None => refuse(format!(
                "it comes from a page without a usable origin (`Origin: {}`)",
                shown(value.as_bytes())
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use http::{Method, Request};

    use super::*;

    #[test]
    fn sec_fetch_site_values() {
        assert_eq!(SecFetchSite::parse(b"same-origin"), SecFetchSite::SameOrigin);
        assert_eq!(SecFetchSite::parse(b" Same-Site "), SecFetchSite::SameSite);
        assert_eq!(SecFetchSite::parse(b"cross-site"), SecFetchSite::CrossSite);
        assert_eq!(SecFetchSite::parse(b"none"), SecFetchSite::None);
        assert_eq!(SecFetchSite::parse(b"sideways"), SecFetchSite::Other);
    }

    #[test]
    fn origins_parse_strictly() {
        let o = Origin::parse("http://localhost:4000").unwrap();
        assert_eq!((o.scheme.as_str(), o.host.as_str(), o.port), ("http", "localhost", Some(4000)));
        assert_eq!(Origin::parse("HTTPS://GW.Example").unwrap().port, Some(443));
        assert_eq!(Origin::parse("http://[::1]:4000").unwrap().host, "[::1]");
        for bad in [
            "null",
            "",
            "localhost:4000",
            "http://",
            "http://a.example/path",
            "http://u@a.example",
            "http://a.example?q",
            "not an origin",
        ] {
            assert_eq!(Origin::parse(bad), None, "{bad}");
        }
        assert_eq!(Origin::parse("https://gw.example").unwrap().to_string(), "https://gw.example");
        assert_eq!(
            Origin::parse("http://a.example:8080").unwrap().to_string(),
            "http://a.example:8080"
        );
    }

    #[test]
    fn an_origin_matches_its_own_host_and_port_only() {
        let local = Origin::parse("http://localhost:4000").unwrap();
        assert!(local.is_host("localhost:4000") && local.is_host("LocalHost:4000"));
        assert!(!local.is_host("localhost:4001"));
        assert!(!local.is_host("localhost"));
        assert!(!local.is_host("127.0.0.1:4000"));
        assert!(!local.is_host("evil.example:4000"));
        assert!(!local.is_host(""));
        let tls = Origin::parse("https://gw.example").unwrap();
        assert!(tls.is_host("gw.example") && tls.is_host("gw.example:443"));
        assert!(!tls.is_host("gw.example:80"));
        let plain = Origin::parse("http://gw.example").unwrap();
        assert!(plain.is_host("gw.example:80") && !plain.is_host("gw.example:443"));
        assert!(Origin::parse("http://[::1]:4000").unwrap().is_host("[::1]:4000"));
        let extension = Origin::parse("chrome-extension://abcdef").unwrap();
        assert!(!extension.is_host("abcdef"));
    }

    fn check(method: Method, headers: &[(&str, &str)]) -> Result<(), Refusal> {
        let mut request = Request::builder().method(method).uri("/key/generate");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(()).unwrap();
        let head = Head {
            method: request.method(),
            uri: request.uri(),
            headers: request.headers(),
            has_body: true,
        };
        SameOriginOnly.check(&head)
    }

    #[test]
    fn clients_that_are_not_browsers_pass() {
        assert_eq!(check(Method::POST, &[]), Ok(()));
        assert_eq!(check(Method::POST, &[("host", "evil.example")]), Ok(()));
    }

    #[test]
    fn sec_fetch_site_decides_when_present() {
        for site in ["same-origin", "none"] {
            assert_eq!(check(Method::POST, &[("sec-fetch-site", site)]), Ok(()), "{site}");
        }
        assert_eq!(check(Method::GET, &[("sec-fetch-site", "same-site")]), Ok(()));
        for (method, site) in [
            (Method::POST, "cross-site"),
            (Method::GET, "cross-site"),
            (Method::POST, "same-site"),
            (Method::DELETE, "same-site"),
            (Method::POST, "sideways"),
        ] {
            let refused = check(method.clone(), &[("sec-fetch-site", site)]);
            assert!(
                matches!(&refused, Err(Refusal::CrossSite { why }) if why.contains(site)),
                "{method} {site}: {refused:?}"
            );
        }
        // The browser's word stands over an `Origin` that a rewritten `Host` no longer matches.
        let behind_a_proxy = [
            ("sec-fetch-site", "same-origin"),
            ("origin", "https://gw.example"),
            ("host", "127.0.0.1:4000"),
        ];
        assert_eq!(check(Method::POST, &behind_a_proxy), Ok(()));
    }

    #[test]
    fn without_sec_fetch_site_the_origin_must_be_the_requests_own() {
        let same = [("origin", "http://localhost:4000"), ("host", "localhost:4000")];
        assert_eq!(check(Method::POST, &same), Ok(()));
        for (origin, host) in [
            ("http://evil.example", "localhost:4000"),
            ("http://localhost:3000", "localhost:4000"),
            ("http://evil.example:4000", "127.0.0.1:4000"),
            ("null", "localhost:4000"),
            ("http://localhost:4000", ""),
        ] {
            let refused = check(Method::POST, &[("origin", origin), ("host", host)]);
            assert!(matches!(&refused, Err(Refusal::CrossSite { .. })), "{origin} → {host}");
            assert!(check(Method::GET, &[("origin", origin), ("host", host)]).is_err());
        }
        let refused = check(Method::POST, &[("origin", "http://evil.example")]);
        let Err(Refusal::CrossSite { why }) = refused else { panic!("{refused:?}") };
        assert!(why.contains("`http://evil.example`"), "{why}");
    }
}
