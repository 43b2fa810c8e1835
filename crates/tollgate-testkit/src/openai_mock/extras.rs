//! `POST /v1/embeddings`, `GET /v1/models`, and the recorded 404 for everything else.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use serde_json::{Value, json};

use super::{
    Shared,
    chat::{invalid_request, json_response, parse_body, unless_success},
    tokens,
};

/// Dimensions of every mock embedding: enough that the few hundred distinct words of a tool
/// catalogue seldom share one (at 256, shared dimensions visibly reorder rankings).
pub const EMBEDDING_DIMENSIONS: usize = 1024;

/// Answers embeddings; takes the next programmed reply so errors, hangs and delays apply,
/// while any success kind means "the embeddings".
pub(crate) async fn embeddings(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(body) = parse_body(&shared, &method, &uri, &headers, &body) else {
        return invalid_request("the request body is not valid JSON");
    };
    let inputs: Vec<String> = match body.get("input") {
        Some(Value::String(text)) => vec![text.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map_or_else(|| item.to_string(), str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let model = body.get("model").and_then(Value::as_str).unwrap_or("unknown").to_owned();
    let base64 = body.get("encoding_format").and_then(Value::as_str) == Some("base64");
    shared.record(&method, &uri, &headers, body);
    if inputs.is_empty() {
        return invalid_request("'input' must be a string or a non-empty array");
    }

    let spec = shared.next_reply();
    if let Some(response) = unless_success(&shared, &spec).await {
        return response;
    }
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let vector = embed(text);
            let embedding =
                if base64 { json!(encode_base64(&vector)) } else { json!(vector.as_slice()) };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let prompt_tokens = inputs.iter().map(|text| tokens::words(text)).sum::<u64>().max(1);
    let value = json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    });
    json_response(&spec, &value)
}

/// Lists the configured model ids.
pub(super) async fn models(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    shared.record(&method, &uri, &headers, Value::Null);
    let data: Vec<Value> = shared.models().iter().map(|id| model_object(id)).collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

/// One configured model, or OpenAI's 404.
pub(super) async fn model(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    shared.record(&method, &uri, &headers, Value::Null);
    if shared.models().contains(&id) {
        Json(model_object(&id)).into_response()
    } else {
        not_found_error(&format!("The model '{id}' does not exist"))
    }
}

/// Records requests to unknown paths, so a test can see where a client went wrong.
pub(super) async fn fallback(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    shared.record(&method, &uri, &headers, body);
    not_found_error(&format!("mock upstream has no route {method} {}", uri.path()))
}

fn model_object(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": 1_700_000_000, "owned_by": "tollgate-mock"})
}

fn not_found_error(message: &str) -> Response {
    let body = json!({"error": {
        "message": message,
        "type": "invalid_request_error",
        "param": null,
        "code": "not_found",
    }});
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

/// Words too common to say what a text is about; left out of [`embed`].
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "for", "from", "has", "have", "if",
    "in", "is", "it", "its", "of", "on", "or", "that", "the", "their", "them", "then", "these",
    "this", "to", "was", "when", "which", "will", "with", "you", "your",
];

/// A hashed bag of words: each lowercase word (letters and digits, made singular, stop words
/// left out) adds one to the dimension its FNV-1a hash picks, and the
/// vector is scaled to length 1. Texts sharing words are close and texts sharing none are
/// orthogonal, so ranking by similarity behaves like ranking by meaning would, on every
/// platform and Rust version. A text with no words gets a vector of its own from its bytes.
pub fn embed(text: &str) -> [f32; EMBEDDING_DIMENSIONS] {
    let mut vector = [0.0_f32; EMBEDDING_DIMENSIONS];
    let lower = text.to_lowercase();
    for word in lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        if STOP_WORDS.contains(&word) {
            continue;
        }
        vector[bucket(&singular(word))] += 1.0;
    }
    if vector.iter().all(|v| *v == 0.0) {
        vector[bucket(text)] = 1.0;
    }
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    vector.iter_mut().for_each(|v| *v /= norm);
    vector
}

/// `entities` → `entity`, `files` → `file`; `class` and `is` stay as they are.
fn singular(word: &str) -> String {
    if let Some(stem) = word.strip_suffix("ies")
        && stem.len() >= 2
    {
        return format!("{stem}y");
    }
    match word.strip_suffix('s') {
        Some(stem) if stem.len() >= 3 && !stem.ends_with('s') => stem.to_owned(),
        _ => word.to_owned(),
    }
}

/// The dimension FNV-1a puts `word` in.
fn bucket(word: &str) -> usize {
    let hash = word.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % EMBEDDING_DIMENSIONS as u64) as usize
}

/// `encoding_format: "base64"`: little-endian f32s, standard base64 with padding.
fn encode_base64(vector: &[f32]) -> String {
    let bytes: Vec<u8> = vector.iter().flat_map(|v| v.to_le_bytes()).collect();
    base64(&bytes)
}

/// Standard base64 with padding.
pub(super) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let b = [group[0], *group.get(1).unwrap_or(&0), *group.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= group.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * k)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet() {
        // 1.0f32 is 00 00 80 3f.
        assert_eq!(encode_base64(&[1.0]), "AACAPw==");
        assert_eq!(encode_base64(&[1.0, 1.0]), "AACAPwAAgD8=");
    }

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        assert_eq!(embed("hello"), embed("hello"));
        assert_ne!(embed("hello"), embed("world"));
        let norm: f32 = embed("hello").iter().map(|v| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-5);
        let norm: f32 = embed("?!").iter().map(|v| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-5);
    }

    fn cosine(a: &str, b: &str) -> f32 {
        embed(a).iter().zip(embed(b)).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn texts_sharing_words_are_closer_than_texts_sharing_none() {
        assert!((cosine("Write the File", "write files") - 1.0).abs() < 1e-5);
        assert!((cosine("entities", "entity") - 1.0).abs() < 1e-5);
        let near = cosine("write a new file", "Create a new file or overwrite a file");
        let far = cosine("write a new file", "Read the entire knowledge graph");
        assert!(near > 0.5, "{near}");
        assert!(far.abs() < 1e-5, "{far}");
        // Stop words alone say nothing.
        assert!(cosine("the cat", "the dog").abs() < 1e-5);
    }
}
