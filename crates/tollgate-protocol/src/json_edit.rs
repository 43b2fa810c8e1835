//! Editing one top-level field of a JSON object without re-serializing the rest, so a body
//! forwarded to an upstream keeps the client's exact bytes — key order, number forms,
//! escapes, and thinking signatures — everywhere but the field that had to change.

use std::ops::Range;

/// Parses `body` as `T` if it is one JSON object (leading white space allowed), and fails
/// with a serde error otherwise: a JSON array, string or number is not an answer either.
pub fn object<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, serde_json::Error> {
    if body.get(skip_ws(body, 0)) != Some(&b'{') {
        return Err(<serde_json::Error as serde::de::Error>::custom("expected a JSON object"));
    }
    serde_json::from_slice(body)
}

/// The byte range of the value of `key` in the top-level object `body`, if present.
/// `body` must be valid JSON (it has been parsed already). Of a key written more than once,
/// the last, which is the one a parser keeps.
pub fn top_level_value(body: &[u8], key: &str) -> Option<Range<usize>> {
    top_level_values(body, key).pop()
}

/// `body` with the value of top-level `key` replaced by `raw` (JSON text), or `key: raw`
/// inserted first when absent. `None` if `body` is not an object. A key written more than
/// once is replaced everywhere: parsers differ in which one they keep, and the upstream must
/// see the value the gateway decided on whichever it keeps.
pub fn set_top_level(body: &[u8], key: &str, raw: &str) -> Option<Vec<u8>> {
    let spans = top_level_values(body, key);
    if !spans.is_empty() {
        let mut out = Vec::with_capacity(body.len() + raw.len() * spans.len());
        let mut at = 0;
        for span in spans {
            out.extend_from_slice(&body[at..span.start]);
            out.extend_from_slice(raw.as_bytes());
            at = span.end;
        }
        out.extend_from_slice(&body[at..]);
        return Some(out);
    }
    let open = skip_ws(body, 0);
    if body.get(open) != Some(&b'{') {
        return None;
    }
    let empty = body.get(skip_ws(body, open + 1)) == Some(&b'}');
    let key_json = serde_json::to_string(key).ok()?;
    let mut out = Vec::with_capacity(body.len() + key_json.len() + raw.len() + 2);
    out.extend_from_slice(&body[..=open]);
    out.extend_from_slice(key_json.as_bytes());
    out.push(b':');
    out.extend_from_slice(raw.as_bytes());
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(&body[open + 1..]);
    Some(out)
}

/// The byte ranges of every value of `key` in the top-level object `body`, in order.
fn top_level_values(body: &[u8], key: &str) -> Vec<Range<usize>> {
    let mut found = Vec::new();
    let mut i = skip_ws(body, 0);
    if body.get(i) != Some(&b'{') {
        return found;
    }
    i += 1;
    loop {
        i = skip_ws(body, i);
        match body.get(i) {
            Some(b',') => {
                i += 1;
                continue;
            }
            Some(b'"') => {}
            _ => return found,
        }
        let Some(key_end) = string_end(body, i) else { return found };
        let this_key = &body[i + 1..key_end - 1];
        i = skip_ws(body, key_end);
        if body.get(i) != Some(&b':') {
            return found;
        }
        i = skip_ws(body, i + 1);
        let Some(value_end) = value_end(body, i) else { return found };
        if key_matches(this_key, key) {
            found.push(i..value_end);
        }
        i = value_end;
    }
}

fn key_matches(raw_key: &[u8], key: &str) -> bool {
    if raw_key.contains(&b'\\') {
        // An escaped key: compare its decoded form.
        let quoted = [b"\"".as_slice(), raw_key, b"\""].concat();
        serde_json::from_slice::<String>(&quoted).is_ok_and(|k| k == key)
    } else {
        raw_key == key.as_bytes()
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// Index just past the string starting at `i` (which is a `"`).
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        match b.get(j)? {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
}

/// Index just past the value starting at `i`.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match b.get(j)? {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while b
                .get(j)
                .is_some_and(|c| !matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
            {
                j += 1;
            }
            Some(j)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_replaces_only_the_top_level_key() {
        let body = br#"{"messages":[{"model":"inner","content":"a \" } model"}], "model" : "claude-x" ,"n":1.50}"#;
        let span = top_level_value(body, "model").unwrap();
        assert_eq!(&body[span], br#""claude-x""#);
        let out = set_top_level(body, "model", r#""glm-5""#).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"messages":[{"model":"inner","content":"a \" } model"}], "model" : "glm-5" ,"n":1.50}"#
        );
        assert_eq!(&body[top_level_value(body, "n").unwrap()], b"1.50");
    }

    #[test]
    fn inserts_missing_keys() {
        let out =
            set_top_level(br#"{"a":1}"#, "stream_options", r#"{"include_usage":true}"#).unwrap();
        assert_eq!(out, br#"{"stream_options":{"include_usage":true},"a":1}"#);
        let out = set_top_level(b" { } ", "k", "true").unwrap();
        assert_eq!(out, br#" {"k":true } "#);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["k"], true);
        assert!(set_top_level(b"[1]", "k", "1").is_none());
    }

    #[test]
    fn a_key_written_twice_is_replaced_in_both_places() {
        // Found by fuzzing: the first was replaced, and a parser keeping the last (serde_json,
        // Python's json) saw the client's value, e.g. `stream_options` without the usage
        // chunk the gateway asked for, so the request went unaccounted.
        let body = br#"{"stream_options":{"include_usage":false},"stream_options":{"include_usage":false}}"#;
        let out = set_top_level(body, "stream_options", r#"{"include_usage":true}"#).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"stream_options":{"include_usage":true},"stream_options":{"include_usage":true}}"#
        );
        let body = br#"{"model":"a","n":1,"model":"b"}"#;
        assert_eq!(&body[top_level_value(body, "model").unwrap()], br#""b""#);
        let v: serde_json::Value =
            serde_json::from_slice(&set_top_level(body, "model", r#""c""#).unwrap()).unwrap();
        assert_eq!(v["model"], "c");
    }

    #[test]
    fn escaped_keys_match() {
        let body = br#"{"mod\u0065l":"x"}"#;
        assert_eq!(&body[top_level_value(body, "model").unwrap()], br#""x""#);
    }
}
