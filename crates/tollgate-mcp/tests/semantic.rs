//! Semantic tool filtering against the tools of two reference MCP servers (memory and
//! filesystem, with their published descriptions), embedded over HTTP by the testkit's
//! OpenAI stand-in, whose embeddings are a hashed bag of words: texts sharing words are close.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use tollgate_mcp::{EmbedError, Embedder, SemanticError, ToolRanker};
use tollgate_testkit::{MockOpenAi, ReplySpec};

/// `POST /v1/embeddings` with every text in one request, as the proxy's embedder does.
struct OpenAiEmbeddings {
    http: reqwest::Client,
    url: String,
}

impl OpenAiEmbeddings {
    fn new(mock: &MockOpenAi) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self { http: reqwest::Client::new(), url: format!("{}/embeddings", mock.base_url()) }
    }
}

impl Embedder for OpenAiEmbeddings {
    fn embed<'a>(
        &'a self,
        texts: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, EmbedError>> {
        Box::pin(async move {
            let body = json!({"model": "text-embedding-3-small", "input": texts});
            let resp = self
                .http
                .post(&self.url)
                .json(&body)
                .send()
                .await
                .map_err(|e| EmbedError(e.to_string()))?;
            if !resp.status().is_success() {
                return Err(EmbedError(format!("status {}", resp.status())));
            }
            let value: Value = resp.json().await.map_err(|e| EmbedError(e.to_string()))?;
            let data = value["data"].as_array().ok_or_else(|| EmbedError("no data".into()))?;
            Ok(data
                .iter()
                .map(|d| {
                    d["embedding"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_f64)
                        .map(|v| v as f32)
                        .collect()
                })
                .collect())
        })
    }
}

fn fixture() -> Vec<Value> {
    let text = include_str!("fixtures/reference_servers_tools.json");
    let value: Value = serde_json::from_str(text).unwrap();
    value["tools"].as_array().unwrap().clone()
}

async fn top(
    ranker: &ToolRanker,
    embedder: &OpenAiEmbeddings,
    tools: &[Value],
    query: &str,
    k: usize,
) -> Vec<String> {
    let chosen = ranker.filter(embedder, tools, query, k, None).await.unwrap();
    chosen.iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn the_filter_returns_the_tools_a_query_is_about() {
    let mock = MockOpenAi::start().await;
    let embedder = OpenAiEmbeddings::new(&mock);
    let ranker = ToolRanker::default();
    let tools = fixture();
    assert_eq!(tools.len(), 20);

    // Each query with the tools that would answer it; the best match must be one of them.
    let cases: &[(&str, &[&str])] = &[
        ("write a new file with this content", &["filesystem-write_file"]),
        (
            "remember that Alice works at Acme: a new entity in the knowledge graph",
            &["memory-create_entities", "memory-add_observations"],
        ),
        ("note a new observation about Alice: she works at Acme", &["memory-add_observations"]),
        ("rename report.txt and move it into the archive folder", &["filesystem-move_file"]),
        ("delete the relation between Alice and Acme", &["memory-delete_relations"]),
        ("show me the nested tree of folders under src", &["filesystem-directory_tree"]),
    ];
    for (query, expected) in cases {
        let got = top(&ranker, &embedder, &tools, query, 3).await;
        assert_eq!(got.len(), 3, "{query}");
        assert!(expected.contains(&got[0].as_str()), "{query}: {got:?}");
    }

    // The runners-up come from the server the query is about.
    let files = top(&ranker, &embedder, &tools, "write a new file with this content", 3).await;
    assert!(files.iter().all(|t| t.starts_with("filesystem-")), "{files:?}");
    let graph = top(
        &ranker,
        &embedder,
        &tools,
        "remember that Alice works at Acme: a new entity in the knowledge graph",
        3,
    )
    .await;
    assert!(graph.iter().all(|t| t.starts_with("memory-")), "{graph:?}");
}

#[tokio::test]
async fn tools_are_embedded_once_and_then_only_the_query() {
    let mock = MockOpenAi::start().await;
    let embedder = OpenAiEmbeddings::new(&mock);
    let ranker = ToolRanker::default();
    let tools = fixture();

    top(&ranker, &embedder, &tools, "write a new file with this content", 5).await;
    let first = mock.last_request().unwrap();
    assert_eq!(first.path, "/v1/embeddings");
    // The query and all twenty tools in one request.
    assert_eq!(first.body["input"].as_array().unwrap().len(), 21);
    assert_eq!(ranker.cached(), 20);

    top(&ranker, &embedder, &tools, "move a file", 5).await;
    assert_eq!(mock.request_count(), 2);
    assert_eq!(mock.last_request().unwrap().body["input"], json!(["move a file"]));
}

#[tokio::test]
async fn an_embeddings_failure_reaches_the_caller() {
    let mock = MockOpenAi::start().await;
    mock.enqueue(ReplySpec::openai_error(503, "server_error", "overloaded"));
    let embedder = OpenAiEmbeddings::new(&mock);
    let ranker = ToolRanker::default();
    let err = ranker.rank(&embedder, &fixture(), "write a file", 3, None).await.unwrap_err();
    assert!(matches!(err, SemanticError::Embed(_)), "{err:?}");
    assert_eq!(ranker.cached(), 0);
}
