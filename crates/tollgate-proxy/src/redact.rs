//! Redaction of request and response bodies before they are kept in spend records.

use serde_json::Value;

const REDACTED: &str = "[REDACTED]";

/// Whether a field name holds a credential.
fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase().replace(['-', '_'], "");
    [
        "apikey",
        "authorization",
        "token",
        "secret",
        "password",
        "credential",
        "accesskey",
        "privatekey",
    ]
    .iter()
    .any(|s| n.contains(s))
        && !matches!(
            n.as_str(),
            "maxtokens" | "maxcompletiontokens" | "maxoutputtokens" | "budgettokens"
        )
}

/// Replaces credential-like fields and key-like strings in `value`, in place.
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if is_secret_name(k) && (v.is_string() || v.is_object()) {
                    *v = Value::String(REDACTED.to_owned());
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        Value::String(s) => {
            if let Some(clean) = redact_text(s) {
                *s = clean;
            }
        }
        _ => {}
    }
}

/// Masks key-shaped words (`sk-…`, `ghu_…`, `Bearer …`) in free text; `None` if none found.
fn redact_text(s: &str) -> Option<String> {
    const PREFIXES: [&str; 6] = ["sk-", "ghu_", "gho_", "ghp_", "github_pat_", "xoxb-"];
    let looks_secret = |w: &str| {
        PREFIXES.iter().any(|p| {
            w.starts_with(p)
                && w.len() >= p.len() + 16
                && w.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
    };
    let mut changed = false;
    let mut out = String::with_capacity(s.len());
    let mut after_bearer = false;
    for (i, word) in s.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let trimmed = word.trim_matches(|c: char| "\"'`,;.()[]{}<>".contains(c));
        if looks_secret(trimmed) || (after_bearer && trimmed.len() >= 16) {
            out.push_str(&word.replace(trimmed, REDACTED));
            changed = true;
        } else {
            out.push_str(word);
        }
        after_bearer = trimmed.eq_ignore_ascii_case("bearer");
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn redacts_fields_and_key_shaped_text() {
        let mut v = json!({
            "model": "m",
            "max_tokens": 100,
            "api_key": "sk-abc",
            "metadata": {"Authorization": "Bearer x", "user": "bob"},
            "messages": [{"role": "user", "content": "my key is sk-proj-ABCDEFGHIJKLMNOPQRST, use it"},
                         {"role": "user", "content": "header: Bearer abcdefghijklmnopqrstuv"}]
        });
        redact(&mut v);
        assert_eq!(v["api_key"], "[REDACTED]");
        assert_eq!(v["max_tokens"], 100);
        assert_eq!(v["metadata"]["Authorization"], "[REDACTED]");
        assert_eq!(v["metadata"]["user"], "bob");
        assert_eq!(v["messages"][0]["content"], "my key is [REDACTED], use it");
        assert_eq!(v["messages"][1]["content"], "header: Bearer [REDACTED]");
        let mut plain = json!({"content": "nothing secret here, sk- is short"});
        redact(&mut plain);
        assert_eq!(plain["content"], "nothing secret here, sk- is short");
    }
}
