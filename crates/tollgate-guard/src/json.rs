//! JSON-only request bodies.
//!
//! A page can send `text/plain`, a form or multipart data to any address without the target's
//! consent (a "simple" request); a JSON body needs a CORS preflight first, which tollgate never
//! grants. Taking only JSON closes that door even for browsers that send no `Sec-Fetch-Site`
//! or `Origin`.

use http::header::CONTENT_TYPE;

use crate::{Head, Refusal, Rule, shown};

/// Whether a `Content-Type` value is JSON: `application/json` or `application/<x>+json`, any
/// parameters (`; charset=utf-8`) allowed.
pub fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else { return false };
    let subtype = subtype.to_ascii_lowercase();
    kind.eq_ignore_ascii_case("application")
        && (subtype == "json" || subtype.strip_suffix("+json").is_some_and(|s| !s.is_empty()))
}

/// Refuses (415) requests that declare a `Content-Type` other than JSON, and requests with a
/// body that declare none. A request without body or type passes (`POST /key/{key}/regenerate`
/// needs no body); an empty `text/plain` form post does not.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonBodiesOnly;

impl Rule for JsonBodiesOnly {
    fn check(&self, head: &Head<'_>) -> Result<(), Refusal> {
        match head.headers.get(CONTENT_TYPE) {
            Some(v) if v.to_str().is_ok_and(is_json) => Ok(()),
            Some(v) => Err(Refusal::NotJson { content_type: Some(shown(v.as_bytes())) }),
            None if head.has_body => Err(Refusal::NotJson { content_type: None }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use http::Request;

    use super::*;

    #[test]
    fn json_content_types() {
        for yes in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=UTF-8",
            " application/json ",
            "application/vnd.api+json",
            "application/merge-patch+json; charset=utf-8",
        ] {
            assert!(is_json(yes), "{yes}");
        }
        for no in [
            "",
            "text/plain",
            "text/plain; charset=utf-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "text/json",
            "application/+json",
            "application/jsonp",
            "application/json5",
            "json",
            "application",
        ] {
            assert!(!is_json(no), "{no}");
        }
    }

    fn check(content_type: Option<&str>, has_body: bool) -> Result<(), Refusal> {
        let mut request = Request::builder().method("POST").uri("/key/generate");
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let request = request.body(()).unwrap();
        let head = Head {
            method: request.method(),
            uri: request.uri(),
            headers: request.headers(),
            has_body,
        };
        JsonBodiesOnly.check(&head)
    }

    #[test]
    fn bodies_must_say_json() {
        assert_eq!(check(Some("application/json"), true), Ok(()));
        assert_eq!(
            check(Some("text/plain"), true),
            Err(Refusal::NotJson { content_type: Some("text/plain".into()) })
        );
        assert_eq!(check(None, true), Err(Refusal::NotJson { content_type: None }));
        // Nothing to parse, nothing to refuse: `POST /key/{key}/regenerate` has no body.
        assert_eq!(check(None, false), Ok(()));
        assert_eq!(check(Some("application/json"), false), Ok(()));
        // A form with nothing in it still says what it is.
        assert!(check(Some("text/plain"), false).is_err());
        assert!(check(Some("application/x-www-form-urlencoded"), false).is_err());
    }
}
