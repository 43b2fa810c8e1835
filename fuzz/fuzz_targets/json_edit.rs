//! Splicing one top-level field into a client's body, as same-protocol pass-through does.
//! The input is `key`, a newline, the new value's JSON, a newline, then the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tollgate_protocol::json_edit::{set_top_level, top_level_value};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let (Some(key), Some(raw), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let Ok(key) = std::str::from_utf8(key) else { return };
    let Ok(raw) = std::str::from_utf8(raw) else { return };
    // The gateway only splices bodies it parsed; on anything else it must still not panic.
    let out = set_top_level(body, key, raw);
    let span = top_level_value(body, key);
    let Ok(Value::Object(before)) = serde_json::from_slice::<Value>(body) else { return };
    let Ok(value) = serde_json::from_str::<Value>(raw) else { return };
    if let Some(span) = span {
        serde_json::from_slice::<Value>(&body[span]).expect("the span is one value");
        assert!(before.contains_key(key), "found {key:?} where the parser sees none");
    }
    let out = out.expect("a JSON object can always take a field");
    let after: Value = serde_json::from_slice(&out).unwrap_or_else(|e| {
        panic!("the spliced body is not JSON ({e}): {}", String::from_utf8_lossy(&out))
    });
    let Value::Object(mut after) = after else { panic!("the spliced body is not an object") };
    assert_eq!(after.remove(key), Some(value), "the field does not hold the new value");
    let mut before = before;
    before.remove(key);
    assert_eq!(after, before, "other fields changed");
});
