//! Where clients put their credential, and telling a client's own Claude token from a key.

use axum::http::HeaderMap;

/// The credential a request carries, from the first of `Authorization: Bearer`, `x-api-key`,
/// `x-litellm-api-key` (with or without `Bearer `) and `api-key`.
pub fn credential(headers: &HeaderMap) -> Option<&str> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    // A client passing its own Claude token through (Authorization: Bearer sk-ant-…) names its
    // tollgate key in one of the other headers.
    if claude_token(headers).is_some() {
        for name in ["x-api-key", "x-litellm-api-key", "api-key"] {
            if let Some(v) = get(name) {
                let token = v.strip_prefix("Bearer ").unwrap_or(v).trim();
                if !token.is_empty() {
                    return Some(token);
                }
            }
        }
    }
    if let Some(v) = get("authorization") {
        let token =
            v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")).unwrap_or(v).trim();
        if !token.is_empty() {
            return Some(token);
        }
    }
    for name in ["x-api-key", "x-litellm-api-key", "api-key"] {
        if let Some(v) = get(name) {
            let token = v.strip_prefix("Bearer ").unwrap_or(v).trim();
            if !token.is_empty() {
                return Some(token);
            }
        }
    }
    None
}

/// The client's own Claude token, when it sends one as `Authorization: Bearer sk-ant-…`.
pub fn claude_token(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get("authorization")?.to_str().ok()?.trim();
    let token = v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer "))?.trim();
    token.starts_with("sk-ant-").then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_credential_header() {
        for (name, value) in [
            ("authorization", "Bearer k1"),
            ("x-api-key", "k1"),
            ("x-litellm-api-key", "Bearer k1"),
            ("x-litellm-api-key", "k1"),
            ("api-key", "k1"),
        ] {
            let mut h = HeaderMap::new();
            h.insert(name, value.parse().unwrap());
            assert_eq!(credential(&h), Some("k1"), "{name}: {value}");
        }
        assert_eq!(credential(&HeaderMap::new()), None);
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer sk-ant-oat01-own".parse().unwrap());
        h.insert("x-litellm-api-key", "sk-tollgate".parse().unwrap());
        assert_eq!(credential(&h), Some("sk-tollgate"));
        assert_eq!(claude_token(&h), Some("sk-ant-oat01-own"));
    }
}
