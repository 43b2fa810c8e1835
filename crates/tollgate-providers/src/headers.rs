//! What every provider does with a deployment's `extra_headers`.

use http::{HeaderMap, HeaderName, HeaderValue};
use tollgate_config::Secret;

/// Applies a deployment's `extra_headers` over `headers`, which must already hold everything
/// the provider sets itself (content type, credentials, API version, editor identity, ...):
/// a name already present, in any case, is replaced rather than sent twice, and an empty
/// value removes the header. Names or values that are not valid HTTP are skipped with a
/// warning; config validation reports them first.
pub fn apply_extra_headers(headers: &mut HeaderMap, extra: &[(String, Secret<String>)]) {
    for (name, value) in extra {
        // HeaderName lowercases, which makes the override case-insensitive.
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            tracing::warn!(header = %name, "extra_headers: not a valid header name; skipped");
            continue;
        };
        if value.expose().is_empty() {
            headers.remove(&name);
            continue;
        }
        let Some(value) = sensitive(value.expose()) else {
            tracing::warn!(header = %name, "extra_headers: not a valid header value; skipped");
            continue;
        };
        // `insert` drops every earlier value of the name.
        headers.insert(name, value);
    }
}

/// A header value hidden from `Debug` output (http prints sensitive values as `Sensitive`).
/// Configured values may be credentials, so every one is treated as such.
pub(crate) fn sensitive(text: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(text).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// Sets `name` to `text` unless `text` is not a valid header value (it came from a client
/// or a config, both checked before; the header is left out rather than failing the call).
pub(crate) fn set(headers: &mut HeaderMap, name: HeaderName, text: &str) {
    if let Ok(value) = HeaderValue::from_str(text) {
        headers.insert(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extra(pairs: &[(&str, &str)]) -> Vec<(String, Secret<String>)> {
        pairs.iter().map(|(n, v)| ((*n).to_owned(), Secret::new((*v).to_owned()))).collect()
    }

    #[test]
    fn extra_headers_replace_case_insensitively_and_empty_removes() {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer from-key"));
        h.append("x-twice", HeaderValue::from_static("one"));
        h.append("x-twice", HeaderValue::from_static("two"));
        h.insert("anthropic-beta", HeaderValue::from_static("flag"));
        apply_extra_headers(
            &mut h,
            &extra(&[
                ("Authorization", "Bearer from-config"),
                ("X-TWICE", "once"),
                ("Anthropic-Beta", ""),
                ("X-New", "yes"),
                ("bad name", "ignored"),
                ("x-bad-value", "line\nbreak"),
            ]),
        );
        let all = |name: &str| -> Vec<&str> {
            h.get_all(name).iter().map(|v| v.to_str().unwrap()).collect()
        };
        assert_eq!(all("authorization"), ["Bearer from-config"]);
        assert_eq!(all("x-twice"), ["once"]);
        assert!(all("anthropic-beta").is_empty());
        assert_eq!(all("x-new"), ["yes"]);
        assert!(h.get("x-bad-value").is_none());
        assert!(!format!("{h:?}").contains("from-config"), "configured values stay hidden");
    }

    #[test]
    fn removing_an_absent_header_is_harmless() {
        let mut h = HeaderMap::new();
        apply_extra_headers(&mut h, &extra(&[("x-absent", "")]));
        assert!(h.is_empty());
    }
}
