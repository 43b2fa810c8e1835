//! The headers every HTML page tollgate serves carries: a CSP allowing only the response's
//! nonce'd style and script, no caching, no framing, no MIME sniffing.

use http::HeaderMap;
use http::header::{self, HeaderValue};

/// What a page may do beyond the common policy.
#[derive(Debug, Clone, Copy)]
pub struct PagePolicy {
    /// Whether its script may fetch from its own origin (`connect-src 'self'`).
    pub fetches: bool,
    /// Its `Referrer-Policy`.
    pub referrer: &'static str,
}

/// Sets the headers of an HTML page whose inline style and script carry `nonce`.
pub fn page_headers(headers: &mut HeaderMap, nonce: &str, policy: PagePolicy) {
    let connect = if policy.fetches { " connect-src 'self';" } else { "" };
    let csp = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}';{connect} \
         form-action 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'"
    );
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static(policy.referrer));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_only_the_nonce() {
        let mut h = HeaderMap::new();
        page_headers(&mut h, "abc", PagePolicy { fetches: true, referrer: "no-referrer" });
        let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'nonce-abc'") && csp.contains("connect-src 'self'"));
        assert!(!csp.contains("unsafe"));
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
        let mut h = HeaderMap::new();
        page_headers(&mut h, "abc", PagePolicy { fetches: false, referrer: "same-origin" });
        assert!(!h[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("connect-src"));
    }
}
