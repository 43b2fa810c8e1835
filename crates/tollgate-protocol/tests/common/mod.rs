//! Fixture loading and SSE helpers shared by the test crates.
#![allow(dead_code)]

use std::path::PathBuf;

use bytes::Bytes;
use serde_json::Value;
use tollgate_protocol::sse::{SseEvent, SseFramer};

/// The path of a fixture file.
pub fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// A fixture's text.
pub fn text(name: &str) -> String {
    std::fs::read_to_string(path(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// A fixture as JSON.
pub fn json(name: &str) -> Value {
    serde_json::from_str(&text(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// The fixture files of a directory, sorted.
pub fn files(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(path(dir))
        .unwrap_or_else(|e| panic!("fixture dir {dir}: {e}"))
        .map(|e| format!("{dir}/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no fixtures in {dir}");
    names
}

/// Splits SSE bytes into events.
pub fn frames(bytes: &[u8]) -> Vec<SseEvent> {
    let mut framer = SseFramer::new();
    framer.push(bytes);
    let mut out = Vec::new();
    while let Some(frame) = framer.next_frame() {
        out.push(SseEvent::parse(&frame));
    }
    out.extend(framer.finish().map(|f| SseEvent::parse(&f)));
    out
}

/// Events as `(event name, data)`, data parsed as JSON (`[DONE]` kept as a string), so
/// comparisons ignore key order and spacing.
pub fn decoded(events: &[SseEvent]) -> Vec<(Option<String>, Value)> {
    events
        .iter()
        .map(|e| {
            let data =
                serde_json::from_str(&e.data).unwrap_or_else(|_| Value::String(e.data.clone()));
            (e.event.clone(), data)
        })
        .collect()
}

/// Translator output as decoded events.
pub fn decode_output(chunks: &[Bytes]) -> Vec<(Option<String>, Value)> {
    let all: Vec<u8> = chunks.iter().flat_map(|b| b.iter().copied()).collect();
    // Each piece must be a whole event: a translator never splits one.
    for c in chunks {
        assert!(c.ends_with(b"\n\n"), "not a whole event: {c:?}");
    }
    decoded(&frames(&all))
}

/// A fixture stream as decoded events.
pub fn fixture_events(name: &str) -> Vec<(Option<String>, Value)> {
    decoded(&frames(text(name).as_bytes()))
}

/// Replaces tool-call `arguments` strings by the JSON they hold, so bodies compare by
/// meaning: key order inside serialized arguments is not part of the contract.
pub fn normalize(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("arguments", Value::String(s)) if !s.is_empty() => {
                        let parsed = serde_json::from_str(&s).unwrap_or(Value::String(s));
                        (k, parsed)
                    }
                    (_, v) => (k, normalize(v)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(normalize).collect()),
        other => other,
    }
}

/// Asserts two JSON values are equal, printing both in full when not.
#[track_caller]
pub fn assert_json_eq(actual: &Value, expected: &Value, what: &str) {
    assert!(
        normalize(actual.clone()) == normalize(expected.clone()),
        "{what}\n--- actual\n{}\n--- expected\n{}",
        serde_json::to_string_pretty(actual).unwrap(),
        serde_json::to_string_pretty(expected).unwrap()
    );
}

/// Sorted copy of a list of names.
pub fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}
