//! Redaction of request and response bodies before they are kept in spend records: fields
//! named like credentials are blanked (by exact name, so `max_tokens` and
//! `prompt_tokens_details` stay), and key- or token-shaped strings are masked wherever they
//! occur in text — after `KEY=`, on a line of their own, inside JSON held in a string.

use serde_json::Value;

const REDACTED: &str = "[REDACTED]";

/// Field names that hold credentials, lower-case with `-` and `_` removed.
const SECRET_FIELDS: &[&str] = &[
    "apikey",
    "xapikey",
    "authorization",
    "proxyauthorization",
    "password",
    "passwd",
    "secret",
    "clientsecret",
    "token",
    "accesstoken",
    "refreshtoken",
    "idtoken",
    "authtoken",
    "bearertoken",
    "sessiontoken",
    "oauthtoken",
    "githubtoken",
    "privatekey",
    "accesskey",
    "secretkey",
    "secretaccesskey",
    "awssecretaccesskey",
    "credential",
    "credentials",
    "cookie",
    "setcookie",
];

/// Prefixes of provider keys and tokens; what follows must be at least [`MIN_SECRET`] long.
const KEY_PREFIXES: &[&str] = &[
    "sk-",
    "sk_",
    "pk-",
    "rk-",
    "ghu_",
    "gho_",
    "ghp_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "xoxs-",
    "glpat-",
    "AKIA",
    "ASIA",
    "AIza",
    "hf_",
];

/// Characters a secret after a known prefix, or after `Bearer`, is made of.
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'+' | b'/' | b'=')
}

/// Fewest characters after a prefix that make a secret rather than a word like `sk-learn`.
const MIN_SECRET: usize = 16;

fn is_secret_name(name: &str) -> bool {
    let n: String =
        name.chars().filter(|c| !matches!(c, '-' | '_')).map(|c| c.to_ascii_lowercase()).collect();
    SECRET_FIELDS.contains(&n.as_str())
}

/// Replaces credential fields and key-shaped strings in `value`, in place.
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if is_secret_name(k) && !v.is_null() {
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

/// The end of a secret starting at `start` in `b`, if one does: a known key prefix followed by
/// enough token characters, or a JSON web token (three base64url segments).
fn secret_at(b: &[u8], start: usize) -> Option<usize> {
    let rest = &b[start..];
    let run = |from: usize| from + b[from..].iter().take_while(|c| is_token_char(**c)).count();
    for p in KEY_PREFIXES {
        if rest.starts_with(p.as_bytes()) {
            let end = run(start + p.len());
            if end - start - p.len() >= MIN_SECRET {
                return Some(end);
            }
        }
    }
    if rest.starts_with(b"eyJ") {
        let end = run(start);
        let token = &b[start..end];
        if token.iter().filter(|c| **c == b'.').count() >= 2 && token.len() >= 32 {
            return Some(end);
        }
    }
    None
}

/// Where the value after `Bearer `/`Basic `/`token ` or `KEY=` / `"password": "` starts, when
/// the word before names a credential.
fn credential_value_at(b: &[u8], start: usize) -> Option<usize> {
    let word_end = start
        + b[start..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(**c, b'_' | b'-'))
            .count();
    let word = std::str::from_utf8(&b[start..word_end]).ok()?;
    let scheme = ["bearer", "basic", "token"].iter().any(|w| word.eq_ignore_ascii_case(w));
    let mut i = word_end;
    if scheme {
        if b.get(i) != Some(&b' ') {
            return None;
        }
        while b.get(i) == Some(&b' ') {
            i += 1;
        }
        return Some(i);
    }
    if !is_secret_name(word) {
        return None;
    }
    // `KEY=value`, `key: value`, `"key": "value"`.
    if b.get(i) == Some(&b'"') || b.get(i) == Some(&b'\'') {
        i += 1;
    }
    while b.get(i) == Some(&b' ') {
        i += 1;
    }
    if !matches!(b.get(i), Some(b'=' | b':')) {
        return None;
    }
    i += 1;
    while matches!(b.get(i), Some(b' ' | b'"' | b'\'')) {
        i += 1;
    }
    Some(i)
}

/// Masks secrets in free text; `None` if none found.
fn redact_text(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        let boundary = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        if !boundary || !b[i].is_ascii_alphabetic() {
            i += 1;
            continue;
        }
        let span = match secret_at(b, i) {
            Some(end) => Some((i, end)),
            None => credential_value_at(b, i).and_then(|v| {
                let end = v + b[v..].iter().take_while(|c| is_token_char(**c)).count();
                (end - v >= 8).then_some((v, end))
            }),
        };
        match span {
            Some((from, to)) => {
                let o = out.get_or_insert_with(|| String::with_capacity(s.len()));
                o.push_str(&s[copied..from]);
                o.push_str(REDACTED);
                copied = to;
                i = to;
            }
            None => i += 1,
        }
    }
    let mut o = out?;
    o.push_str(&s[copied..]);
    Some(o)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn blanks_credential_fields_by_exact_name() {
        let mut v = json!({
            "model": "m",
            "max_tokens": 100,
            "api_key": "sk-abc",
            "metadata": {"Authorization": "Bearer x", "user": "bob", "x-api-key": "k"},
            "usage": {"prompt_tokens": 3, "prompt_tokens_details": {"cached_tokens": 1}},
            "thinking": {"budget_tokens": 1000},
            "password": null,
        });
        redact(&mut v);
        assert_eq!(v["api_key"], "[REDACTED]");
        assert_eq!(v["max_tokens"], 100);
        assert_eq!(v["metadata"]["Authorization"], "[REDACTED]");
        assert_eq!(v["metadata"]["x-api-key"], "[REDACTED]");
        assert_eq!(v["metadata"]["user"], "bob");
        assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 1);
        assert_eq!(v["thinking"]["budget_tokens"], 1000);
        assert!(v["password"].is_null());
    }

    #[test]
    fn masks_secrets_wherever_they_stand() {
        let key = "sk-proj-ABCDEFGHIJKLMNOPQRST";
        for (text, expected) in [
            (format!("my key is {key}, use it"), "my key is [REDACTED], use it".to_owned()),
            (format!("OPENAI_API_KEY={key}"), "OPENAI_API_KEY=[REDACTED]".to_owned()),
            (format!("first line\n{key}\nlast"), "first line\n[REDACTED]\nlast".to_owned()),
            (format!("{{\"key\":\"{key}\"}}"), "{\"key\":\"[REDACTED]\"}".to_owned()),
            (
                "header: Bearer abcdefghijklmnopqrstuv".to_owned(),
                "header: Bearer [REDACTED]".to_owned(),
            ),
            ("token ghp_0123456789abcdefghij0123".to_owned(), "token [REDACTED]".to_owned()),
            (
                "\"password\": \"hunter2hunter2\"".to_owned(),
                "\"password\": \"[REDACTED]\"".to_owned(),
            ),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlc2lnbmF0dXJl done".to_owned(),
                "jwt [REDACTED] done".to_owned(),
            ),
        ] {
            let mut v = json!({ "content": text });
            redact(&mut v);
            assert_eq!(v["content"], expected.as_str(), "{text}");
        }
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        for text in [
            "nothing secret here, sk- is short",
            "use sk-learn for that",
            "the token count was 12",
            "askme-about-everything-you-like",
            "passwords are hard",
        ] {
            let mut v = json!({ "content": text });
            redact(&mut v);
            assert_eq!(v["content"], text);
        }
    }
}
