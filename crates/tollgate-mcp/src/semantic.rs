//! Semantic tool filtering: of the tools a caller may see, the few whose descriptions are
//! closest in meaning to what the caller is asking about, so a model is not handed hundreds.
//!
//! A [`ToolRanker`] embeds each tool's text (name, title, description and parameters) and the
//! query through an [`Embedder`] — the proxy's own embeddings routing, so any model tollgate
//! serves can do it — and orders the tools by cosine similarity. Tool embeddings are cached by
//! their exact text, so listing the same tools again costs one embedding of the query alone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::future::BoxFuture;
use serde_json::Value;

/// How many tool embeddings a ranker keeps unless told otherwise.
pub const DEFAULT_CACHE_CAPACITY: usize = 4096;

/// Longest text embedded per tool, in bytes: well inside what embedding models accept, and
/// more than any useful tool description.
const MAX_TOOL_TEXT: usize = 8_000;

/// How deep parameter descriptions are followed into nested objects and arrays.
const MAX_SCHEMA_DEPTH: usize = 3;

/// Turns texts into vectors: one call per batch, one vector per text, in order.
///
/// Every vector a ranker compares must come from the same model; use one ranker per model.
pub trait Embedder: Send + Sync {
    /// Embeds `texts`, which is never empty.
    fn embed<'a>(&'a self, texts: &'a [String])
    -> BoxFuture<'a, Result<Vec<Vec<f32>>, EmbedError>>;
}

/// Why an [`Embedder`] produced no vectors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EmbedError(pub String);

/// Why tools could not be ranked; the caller decides what to serve instead (the proxy serves
/// the unfiltered list).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SemanticError {
    /// There is nothing to rank against.
    #[error("the query to rank tools against is empty")]
    EmptyQuery,
    /// Zero tools were asked for.
    #[error("top_k must be at least 1")]
    ZeroTopK,
    /// The embedder failed.
    #[error("embedding failed: {0}")]
    Embed(#[from] EmbedError),
    /// The embedder answered, but not with one usable vector per text.
    #[error("the embedder returned {0}")]
    BadVectors(String),
}

/// One tool's place in a ranking.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ranked {
    /// Its position in the list given to [`ToolRanker::rank`].
    pub index: usize,
    /// Cosine similarity to the query, from -1 to 1.
    pub score: f32,
}

/// Ranks MCP tools against a query, caching tool embeddings between calls.
#[derive(Debug)]
pub struct ToolRanker {
    cache: Mutex<Cache>,
}

impl Default for ToolRanker {
    fn default() -> Self {
        Self::new(DEFAULT_CACHE_CAPACITY)
    }
}

impl ToolRanker {
    /// A ranker keeping at most `capacity` tool embeddings (the least recently used go first).
    pub fn new(capacity: usize) -> Self {
        Self { cache: Mutex::new(Cache::new(capacity.max(1))) }
    }

    /// How many tool embeddings are cached.
    pub fn cached(&self) -> usize {
        self.lock().entries.len()
    }

    /// The `top_k` tools of `tools` (MCP tool objects as `tools/list` gives them) most similar
    /// to `query`, best first; equal scores keep the order of `tools`. With `min_score`, tools
    /// scoring below it are left out, so fewer than `top_k` may come back.
    ///
    /// Makes at most one [`Embedder::embed`] call: the query and every tool text not cached.
    pub async fn rank(
        &self,
        embedder: &dyn Embedder,
        tools: &[Value],
        query: &str,
        top_k: usize,
        min_score: Option<f32>,
    ) -> Result<Vec<Ranked>, SemanticError> {
        if top_k == 0 {
            return Err(SemanticError::ZeroTopK);
        }
        let query = query.trim();
        if query.is_empty() {
            return Err(SemanticError::EmptyQuery);
        }
        if tools.is_empty() {
            return Ok(Vec::new());
        }
        let texts: Vec<String> = tools.iter().map(tool_text).collect();

        let mut known: Vec<Option<Arc<[f32]>>> = Vec::with_capacity(texts.len());
        let mut batch = vec![query.to_owned()];
        {
            let mut cache = self.lock();
            for text in &texts {
                let hit = cache.get(text);
                if hit.is_none() && !batch[1..].contains(text) {
                    batch.push(text.clone());
                }
                known.push(hit);
            }
        }

        let vectors = embedder.embed(&batch).await?;
        if vectors.len() != batch.len() {
            return Err(SemanticError::BadVectors(format!(
                "{} vectors for {} texts",
                vectors.len(),
                batch.len()
            )));
        }
        let mut vectors = vectors.into_iter();
        let query_vector = vectors.next().unwrap_or_default();
        check(&query_vector, query_vector.len())?;
        let mut fresh = HashMap::with_capacity(batch.len() - 1);
        for (text, vector) in batch.into_iter().skip(1).zip(vectors) {
            check(&vector, query_vector.len())?;
            fresh.insert(text, Arc::<[f32]>::from(vector));
        }

        let mut ranked = Vec::with_capacity(texts.len());
        for (index, (text, hit)) in texts.iter().zip(known).enumerate() {
            let vector = match hit.or_else(|| fresh.get(text).cloned()) {
                Some(v) => v,
                None => {
                    return Err(SemanticError::BadVectors("no vector for a tool".to_owned()));
                }
            };
            if vector.len() != query_vector.len() {
                // Cached from a model with other dimensions: the embedder is not the one the
                // cache was filled by.
                return Err(SemanticError::BadVectors(format!(
                    "{} dimensions for the query but {} for a cached tool",
                    query_vector.len(),
                    vector.len()
                )));
            }
            ranked.push(Ranked { index, score: cosine(&query_vector, &vector) });
        }
        {
            let mut cache = self.lock();
            for (text, vector) in fresh {
                cache.insert(text, vector);
            }
        }

        if let Some(min) = min_score {
            ranked.retain(|r| r.score >= min);
        }
        // A stable sort: equal scores keep the order the tools were listed in.
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
        ranked.truncate(top_k);
        Ok(ranked)
    }

    /// [`rank`](Self::rank), returning the chosen tools themselves, best first.
    pub async fn filter(
        &self,
        embedder: &dyn Embedder,
        tools: &[Value],
        query: &str,
        top_k: usize,
        min_score: Option<f32>,
    ) -> Result<Vec<Value>, SemanticError> {
        let ranked = self.rank(embedder, tools, query, top_k, min_score).await?;
        Ok(ranked.into_iter().map(|r| tools[r.index].clone()).collect())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        // The cache holds no invariant a panicking holder could break.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The text embedded for one tool: its name, title and description, then each parameter's
/// name and description (nested ones too), one per line.
pub fn tool_text(tool: &Value) -> String {
    let mut out = String::new();
    let mut line = |s: &str| {
        let s = s.trim();
        if !s.is_empty() {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(s);
        }
    };
    let field = |key: &str| tool.get(key).and_then(Value::as_str).unwrap_or_default();
    line(field("name"));
    line(field("title"));
    line(field("description"));
    let mut params = Vec::new();
    if let Some(schema) = tool.get("inputSchema") {
        parameters(schema, 0, &mut params);
    }
    for p in &params {
        line(p);
    }
    if out.len() > MAX_TOOL_TEXT {
        let mut end = MAX_TOOL_TEXT;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    out
}

/// `name: description` for each property of a JSON Schema, following objects and arrays.
fn parameters(schema: &Value, depth: usize, out: &mut Vec<String>) {
    if depth >= MAX_SCHEMA_DEPTH {
        return;
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            match prop.get("description").and_then(Value::as_str) {
                Some(d) if !d.trim().is_empty() => out.push(format!("{name}: {}", d.trim())),
                _ => out.push(name.clone()),
            }
            parameters(prop, depth + 1, out);
        }
    }
    if let Some(items) = schema.get("items") {
        parameters(items, depth + 1, out);
    }
}

fn check(vector: &[f32], dimensions: usize) -> Result<(), SemanticError> {
    if vector.is_empty() {
        return Err(SemanticError::BadVectors("an empty vector".to_owned()));
    }
    if vector.len() != dimensions {
        return Err(SemanticError::BadVectors(format!(
            "vectors of {} and {} dimensions",
            dimensions,
            vector.len()
        )));
    }
    if vector.iter().any(|v| !v.is_finite()) {
        return Err(SemanticError::BadVectors("a vector with a NaN or infinity".to_owned()));
    }
    Ok(())
}

/// Cosine similarity; 0 when either vector is all zeros.
fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut aa, mut bb) = (0.0_f64, 0.0_f64, 0.0_f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 { 0.0 } else { (dot / (aa.sqrt() * bb.sqrt())) as f32 }
}

/// Tool embeddings by exact text, the least recently used dropped past `capacity`.
#[derive(Debug)]
struct Cache {
    capacity: usize,
    tick: u64,
    entries: HashMap<String, (Arc<[f32]>, u64)>,
}

impl Cache {
    fn new(capacity: usize) -> Self {
        Self { capacity, tick: 0, entries: HashMap::new() }
    }

    fn get(&mut self, text: &str) -> Option<Arc<[f32]>> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(text).map(|(vector, used)| {
            *used = tick;
            Arc::clone(vector)
        })
    }

    fn insert(&mut self, text: String, vector: Arc<[f32]>) {
        self.tick += 1;
        if !self.entries.contains_key(&text) && self.entries.len() >= self.capacity {
            let oldest =
                self.entries.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(text, (vector, self.tick));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;

    use super::*;

    /// Embeds a text as counts of the letters `a`, `b` and `c`; fails when told to.
    #[derive(Default)]
    struct Letters {
        calls: AtomicUsize,
        texts: Mutex<Vec<String>>,
        fail: bool,
    }

    impl Embedder for Letters {
        fn embed<'a>(
            &'a self,
            texts: &'a [String],
        ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, EmbedError>> {
            Box::pin(async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                self.texts.lock().unwrap().extend(texts.iter().cloned());
                if self.fail {
                    return Err(EmbedError("model unavailable".to_owned()));
                }
                Ok(texts
                    .iter()
                    .map(|t| ['a', 'b', 'c'].map(|l| t.matches(l).count() as f32).to_vec())
                    .collect())
            })
        }
    }

    fn tool(name: &str) -> Value {
        json!({"name": name, "inputSchema": {"type": "object"}})
    }

    fn names(tools: &[Value], ranked: &[Ranked]) -> Vec<String> {
        ranked.iter().map(|r| tools[r.index]["name"].as_str().unwrap().to_owned()).collect()
    }

    #[tokio::test]
    async fn tools_come_back_best_first_and_ties_keep_their_order() {
        let tools = [tool("cc"), tool("ab"), tool("aa"), tool("ba"), tool("bb")];
        let ranker = ToolRanker::default();
        let e = Letters::default();
        let ranked = ranker.rank(&e, &tools, "a", 5, None).await.unwrap();
        // `ab` and `ba` score the same and stay in listed order, and so do `cc` and `bb`,
        // which share no letter with the query.
        assert_eq!(names(&tools, &ranked), ["aa", "ab", "ba", "cc", "bb"]);
        assert!((ranked[0].score - 1.0).abs() < 1e-6);
        assert!((ranked[1].score - ranked[2].score).abs() < 1e-6);
        let top = ranker.rank(&e, &tools, "a", 2, None).await.unwrap();
        assert_eq!(names(&tools, &top), ["aa", "ab"]);
        let close = ranker.rank(&e, &tools, "a", 5, Some(0.5)).await.unwrap();
        assert_eq!(names(&tools, &close), ["aa", "ab", "ba"]);
        let chosen = ranker.filter(&e, &tools, "b", 1, None).await.unwrap();
        assert_eq!(chosen, [tool("bb")]);
    }

    #[tokio::test]
    async fn listing_the_same_tools_again_embeds_only_the_query() {
        let tools = [tool("aa"), tool("bb"), tool("aa")];
        let ranker = ToolRanker::default();
        let e = Letters::default();
        ranker.rank(&e, &tools, "a", 3, None).await.unwrap();
        // One call: the query, then each distinct tool text once.
        assert_eq!(e.calls.load(Ordering::SeqCst), 1);
        assert_eq!(*e.texts.lock().unwrap(), ["a", "aa", "bb"]);
        assert_eq!(ranker.cached(), 2);

        e.texts.lock().unwrap().clear();
        let more = [tool("bb"), tool("cc"), tool("aa")];
        let ranked = ranker.rank(&e, &more, "c", 3, None).await.unwrap();
        assert_eq!(e.calls.load(Ordering::SeqCst), 2);
        assert_eq!(*e.texts.lock().unwrap(), ["c", "cc"]);
        assert_eq!(names(&more, &ranked), ["cc", "bb", "aa"]);
    }

    #[tokio::test]
    async fn the_cache_drops_the_least_recently_used_past_its_capacity() {
        let ranker = ToolRanker::new(2);
        let e = Letters::default();
        ranker.rank(&e, &[tool("aa"), tool("bb")], "a", 1, None).await.unwrap();
        ranker.rank(&e, &[tool("aa")], "a", 1, None).await.unwrap();
        ranker.rank(&e, &[tool("cc")], "a", 1, None).await.unwrap();
        assert_eq!(ranker.cached(), 2);
        e.texts.lock().unwrap().clear();
        // `bb` was used least recently, so it went; `aa` stayed.
        ranker.rank(&e, &[tool("aa"), tool("bb")], "a", 1, None).await.unwrap();
        assert_eq!(*e.texts.lock().unwrap(), ["a", "bb"]);
    }

    #[tokio::test]
    async fn failures_are_errors_for_the_caller() {
        let ranker = ToolRanker::default();
        let failing = Letters { fail: true, ..Letters::default() };
        let err = ranker.rank(&failing, &[tool("aa")], "a", 1, None).await.unwrap_err();
        assert_eq!(err, SemanticError::Embed(EmbedError("model unavailable".to_owned())));
        assert_eq!(ranker.cached(), 0);
        let e = Letters::default();
        assert_eq!(
            ranker.rank(&e, &[tool("aa")], "  ", 1, None).await,
            Err(SemanticError::EmptyQuery)
        );
        assert_eq!(
            ranker.rank(&e, &[tool("aa")], "a", 0, None).await,
            Err(SemanticError::ZeroTopK)
        );
        assert_eq!(ranker.rank(&e, &[], "a", 3, None).await, Ok(Vec::new()));
        assert_eq!(e.calls.load(Ordering::SeqCst), 0);

        struct Short;
        impl Embedder for Short {
            fn embed<'a>(
                &'a self,
                _texts: &'a [String],
            ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, EmbedError>> {
                Box::pin(async { Ok(vec![vec![1.0]]) })
            }
        }
        let err = ranker.rank(&Short, &[tool("aa")], "a", 1, None).await.unwrap_err();
        assert!(matches!(err, SemanticError::BadVectors(ref m) if m == "1 vectors for 2 texts"));
    }

    #[test]
    fn a_tool_is_described_by_its_name_description_and_parameters() {
        let t = json!({
            "name": "memory-add_observations",
            "description": "Add new observations",
            "inputSchema": {"type": "object", "properties": {"observations": {
                "type": "array",
                "items": {"type": "object", "properties": {
                    "entityName": {"type": "string", "description": "The entity"}
                }}
            }}}
        });
        assert_eq!(
            tool_text(&t),
            "memory-add_observations\nAdd new observations\nobservations\nentityName: The entity"
        );
        let long = json!({"name": "x", "description": "é".repeat(MAX_TOOL_TEXT)});
        assert!(tool_text(&long).len() <= MAX_TOOL_TEXT);
    }
}
