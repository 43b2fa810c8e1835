//! Credentials inside a stored model's `litellm_params` (and a named credential's values):
//! sealed before they reach the store, opened only to build the router, and replaced by
//! `"<redacted>"` in every answer.
//!
//! A sealed value is `{"tollgate_sealed": "<nonce hex>:<ciphertext hex>"}`, bound to
//! `<scope>/<field path>` so a ciphertext cannot be moved to another model or field.
//! `os.environ/NAME` references are not secrets: they stay as written and are resolved when
//! the router is built.

use serde_json::{Map, Value};
use tollgate_config::ENV_REF_PREFIX;
use tollgate_store::{SecretBox, StoreError};

/// What every answer shows instead of a credential.
pub const REDACTED: &str = "<redacted>";

const SEALED: &str = "tollgate_sealed";

/// Whether a `litellm_params` (or credential value) key holds a credential.
pub fn is_secret_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "api_key"
        || n == "password"
        || n.ends_with("_key")
        || n.ends_with("_token")
        || n.ends_with("_secret")
        || n.ends_with("_password")
}

/// Whether a header's value is a credential (`Authorization`, `x-api-key`, `*-token`, ...).
pub fn is_secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["authorization", "cookie"].iter().any(|s| n.contains(s))
        || ["key", "token", "secret", "password"].iter().any(|s| n.contains(s))
}

/// Calls `f` on every credential value of `params` (top-level secret keys, and secret
/// `extra_headers`), with its path.
pub fn each_secret(params: &mut Map<String, Value>, f: &mut dyn FnMut(&str, &mut Value)) {
    for (k, v) in params.iter_mut() {
        if is_secret_param(k) {
            f(k, v);
        } else if k == "extra_headers"
            && let Value::Object(headers) = v
        {
            for (h, hv) in headers.iter_mut() {
                if is_secret_header(h) {
                    f(&format!("extra_headers.{h}"), hv);
                }
            }
        }
    }
}

fn sealed_text(v: &Value) -> Option<&str> {
    v.as_object().filter(|o| o.len() == 1).and_then(|o| o.get(SEALED)).and_then(Value::as_str)
}

/// Seals every credential string of `params` that is not already sealed nor an `os.environ/`
/// reference.
pub fn seal(
    sb: &SecretBox,
    scope: &str,
    params: &mut Map<String, Value>,
) -> Result<(), StoreError> {
    seal_with(sb, scope, params, each_secret)
}

/// How a kind of stored object finds its credential values: calls `f` on each, with its path.
pub type SecretWalk = fn(&mut Map<String, Value>, &mut dyn FnMut(&str, &mut Value));

/// [`seal`] for an object whose credentials `walk` finds.
pub fn seal_with(
    sb: &SecretBox,
    scope: &str,
    params: &mut Map<String, Value>,
    walk: SecretWalk,
) -> Result<(), StoreError> {
    let mut failed = None;
    walk(params, &mut |path, v| {
        if is_env_ref(v) || failed.is_some() {
            return;
        }
        let Value::String(plain) = v else { return };
        match sb.seal(plain.as_bytes(), format!("{scope}/{path}").as_bytes()) {
            Ok((ct, nonce)) => {
                let text = format!("{}:{}", hex::encode(nonce), hex::encode(ct));
                *v = serde_json::json!({ SEALED: text });
            }
            Err(e) => failed = Some(e),
        }
    });
    failed.map_or(Ok(()), Err)
}

/// The plaintext of every sealed value of `params`.
pub fn open(
    sb: &SecretBox,
    scope: &str,
    params: &mut Map<String, Value>,
) -> Result<(), StoreError> {
    open_with(sb, scope, params, each_secret)
}

/// [`open`] for an object whose credentials `walk` finds.
pub fn open_with(
    sb: &SecretBox,
    scope: &str,
    params: &mut Map<String, Value>,
    walk: SecretWalk,
) -> Result<(), StoreError> {
    let mut failed = None;
    walk(params, &mut |path, v| {
        let Some(text) = sealed_text(v) else { return };
        let opened = text
            .split_once(':')
            .and_then(|(n, c)| Some((hex::decode(n).ok()?, hex::decode(c).ok()?)))
            .ok_or_else(|| StoreError::Crypto(format!("the sealed value of `{path}` is corrupt")))
            .and_then(|(nonce, ct)| sb.open(&ct, &nonce, format!("{scope}/{path}").as_bytes()))
            .and_then(|plain| {
                String::from_utf8(plain)
                    .map_err(|_| StoreError::Crypto(format!("the value of `{path}` is not UTF-8")))
            });
        match opened {
            Ok(plain) => *v = Value::String(plain),
            Err(e) => failed = failed.take().or(Some(e)),
        }
    });
    failed.map_or(Ok(()), Err)
}

/// Whether a value is an `os.environ/NAME` reference (not a secret: it names a variable).
pub fn is_env_ref(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.starts_with(ENV_REF_PREFIX))
}

/// `params` as answers show them: every credential, sealed or not, is `"<redacted>"`;
/// `os.environ/` references stay, since they name a variable, not its value.
pub fn redacted(params: &Map<String, Value>) -> Map<String, Value> {
    let mut out = params.clone();
    each_secret(&mut out, &mut |_, v| {
        if !(v.is_null() || is_env_ref(v)) {
            *v = Value::String(REDACTED.to_owned());
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sb() -> SecretBox {
        SecretBox::from_env_value("0123456789abcdef0123456789abcdef").unwrap()
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn seals_credentials_and_opens_them_back() {
        let plain = obj(json!({
            "model": "openai/gpt-4o",
            "api_key": "sk-secret-1",
            "api_base": "http://x",
            "extra_headers": {"Authorization": "Bearer t", "anthropic-version": "2023-06-01"},
        }));
        let mut p = plain.clone();
        seal(&sb(), "model/m1", &mut p).unwrap();
        let text = Value::Object(p.clone()).to_string();
        assert!(!text.contains("sk-secret-1") && !text.contains("Bearer t"), "{text}");
        assert_eq!(p["api_base"], "http://x");
        assert_eq!(p["extra_headers"]["anthropic-version"], "2023-06-01");
        open(&sb(), "model/m1", &mut p).unwrap();
        assert_eq!(p, plain);
    }

    #[test]
    fn a_sealed_value_is_bound_to_its_model() {
        let mut p = obj(json!({"api_key": "sk-secret-1"}));
        seal(&sb(), "model/m1", &mut p).unwrap();
        assert!(open(&sb(), "model/m2", &mut p).is_err());
    }

    #[test]
    fn env_references_stay_and_redaction_hides_the_rest() {
        let mut p = obj(json!({"api_key": "os.environ/OPENAI_KEY", "aws_secret": "x"}));
        seal(&sb(), "model/m1", &mut p).unwrap();
        assert_eq!(p["api_key"], "os.environ/OPENAI_KEY");
        let shown = redacted(&p);
        assert_eq!(shown["api_key"], "os.environ/OPENAI_KEY");
        assert_eq!(shown["aws_secret"], REDACTED);
    }
}
