//! Semantic tool filtering of `/mcp`'s `tools/list` (`mcp_semantic_tool_filter`): a client that
//! passes a query (`params.query`, or `params._meta.query`) gets the `top_k` tools closest to
//! it, ranked by an embedding model tollgate itself serves. The embeddings are a request of the
//! caller's, through the same routing, limits and spend records as its own embeddings calls.
//! When ranking fails, the whole list is served and the failure logged: a filter is a
//! convenience, never a reason to hide tools.

use axum::http::HeaderMap;
use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use tollgate_config::SemanticFilter;
use tollgate_mcp::{EmbedError, Embedder};

use crate::auth::Principal;
use crate::relay::{Call, forward};
use crate::request_id::RequestId;
use crate::state::AppState;

/// Largest embeddings answer read (a few thousand tools' vectors).
const MAX_ANSWER_BYTES: usize = 256 * 1024 * 1024;

/// The query a `tools/list` carries, if any.
pub(super) fn query(params: &Value) -> Option<&str> {
    params
        .get("query")
        .or_else(|| params.get("_meta").and_then(|m| m.get("query")))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|q| !q.is_empty())
}

/// `listed` (a `tools/list` result) narrowed to the tools closest to `query`.
pub(super) async fn apply(
    state: &AppState,
    caller: &Principal,
    filter: &SemanticFilter,
    query: &str,
    mut listed: Value,
) -> Value {
    let Some(tools) = listed.get("tools").and_then(Value::as_array) else { return listed };
    let through = Through { state, caller, model: &filter.embedding_model };
    let ranked = state
        .mcp_ranker()
        .filter(&through, tools, query, filter.top_k, filter.similarity_threshold)
        .await;
    match ranked {
        Ok(kept) => listed["tools"] = Value::Array(kept),
        Err(e) => tracing::warn!(
            embedding_model = %filter.embedding_model,
            "MCP tools listed unfiltered: {e}"
        ),
    }
    listed
}

/// Embeddings through tollgate's own routing, as the caller.
struct Through<'a> {
    state: &'a AppState,
    caller: &'a Principal,
    model: &'a str,
}

impl Embedder for Through<'_> {
    fn embed<'a>(
        &'a self,
        texts: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, EmbedError>> {
        Box::pin(async move {
            let body = json!({"model": self.model, "input": texts});
            let raw = bytes::Bytes::from(body.to_string());
            let request_id = RequestId::from_headers(&HeaderMap::new());
            let call =
                Call::embeddings(self.model.to_owned(), body, raw, request_id, self.caller.clone());
            let response = forward(self.state, call).await;
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), MAX_ANSWER_BYTES)
                .await
                .map_err(|e| EmbedError(format!("reading the embeddings answer: {e}")))?;
            let answer: Value = serde_json::from_slice(&bytes)
                .map_err(|e| EmbedError(format!("the embeddings answer is not JSON: {e}")))?;
            if !status.is_success() {
                let message = answer["error"]["message"].as_str().unwrap_or("no message");
                return Err(EmbedError(format!("`{}` answered {status}: {message}", self.model)));
            }
            vectors(&answer, texts.len())
        })
    }
}

/// The vectors of an OpenAI embeddings answer, in input order.
fn vectors(answer: &Value, expected: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
    let data = answer["data"]
        .as_array()
        .ok_or_else(|| EmbedError("the embeddings answer has no `data`".to_owned()))?;
    let mut out = vec![Vec::new(); expected];
    for (position, item) in data.iter().enumerate() {
        let index = item["index"].as_u64().map_or(position, |i| i as usize);
        let slot = out
            .get_mut(index)
            .ok_or_else(|| EmbedError(format!("embedding index {index} is out of range")))?;
        *slot = item["embedding"]
            .as_array()
            .ok_or_else(|| EmbedError("an embedding is not a list of numbers".to_owned()))?
            .iter()
            .map(|x| x.as_f64().map(|x| x as f32))
            .collect::<Option<Vec<f32>>>()
            .ok_or_else(|| EmbedError("an embedding is not a list of numbers".to_owned()))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_is_read_from_params_or_meta() {
        assert_eq!(query(&json!({"query": " write a file "})), Some("write a file"));
        assert_eq!(query(&json!({"_meta": {"query": "remember"}})), Some("remember"));
        assert_eq!(query(&json!({"query": ""})), None);
        assert_eq!(query(&json!({})), None);
    }

    #[test]
    fn vectors_follow_their_index() {
        let answer = json!({"data": [
            {"index": 1, "embedding": [0.0, 1.0]},
            {"index": 0, "embedding": [1.0, 0.0]},
        ]});
        assert_eq!(vectors(&answer, 2).unwrap(), vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
        assert!(vectors(&json!({"data": [{"index": 5, "embedding": [1.0]}]}), 1).is_err());
        assert!(vectors(&json!({"error": {}}), 1).is_err());
    }
}
