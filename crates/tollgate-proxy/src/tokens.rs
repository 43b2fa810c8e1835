//! Estimating the input tokens of an Anthropic Messages request locally, for upstreams that
//! cannot count them: every text the model reads (system, messages, tool calls and results,
//! tool definitions) counted with OpenAI's `o200k_base`, plus the framing OpenAI charges per
//! message, and a flat figure per image.
//!
//! The body is read where it lies: texts are borrowed from the request's bytes and nested
//! parts stay raw until visited, so a 20 MB prompt costs little more than its own bytes.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// Tokens an image is counted as: Anthropic's figure for a ~1.2-megapixel picture, the size
/// clients usually send.
const IMAGE_TOKENS: u64 = 1600;
/// Tokens of framing around a request and around each message.
const FRAMING: u64 = 3;

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow, default)]
    system: Option<&'a RawValue>,
    #[serde(borrow, default)]
    messages: Vec<Message<'a>>,
    #[serde(borrow, default)]
    tools: Vec<Tool<'a>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Tool<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    description: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    input_schema: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Block<'a> {
    #[serde(borrow, rename = "type", default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
}

/// Counts of what a request holds.
#[derive(Default)]
struct Tally<'c> {
    tokens: u64,
    images: u64,
    count: Option<&'c dyn Fn(&str) -> usize>,
}

impl Tally<'_> {
    fn text(&mut self, s: &str) {
        if let Some(count) = self.count {
            self.tokens += count(s) as u64;
        }
    }

    /// A string, or a list of blocks (message content, a system prompt, a tool result).
    fn content(&mut self, raw: &RawValue, nested: bool) {
        let json = raw.get().trim_start();
        if json.starts_with('"') {
            // Borrowed unless it has escapes to undo.
            match serde_json::from_str::<&str>(raw.get()) {
                Ok(s) => self.text(s),
                Err(_) => {
                    if let Ok(s) = serde_json::from_str::<String>(raw.get()) {
                        self.text(&s);
                    }
                }
            }
            return;
        }
        let Ok(blocks) = serde_json::from_str::<Vec<Block<'_>>>(raw.get()) else { return };
        for b in blocks {
            match b.kind.as_deref() {
                Some("text") => self.text(b.text.as_deref().unwrap_or_default()),
                Some("image") => self.images += 1,
                Some("thinking") => self.text(b.thinking.as_deref().unwrap_or_default()),
                Some("tool_use") if !nested => {
                    self.text(b.name.as_deref().unwrap_or_default());
                    if let Some(input) = b.input {
                        self.text(input.get());
                    }
                }
                Some("tool_result") if !nested => {
                    if let Some(c) = b.content {
                        self.content(c, true);
                    }
                }
                _ => {}
            }
        }
    }
}

/// The estimated input tokens of the Messages request in `raw`, texts counted with `count`.
/// `None` if `raw` is not a JSON object.
pub fn estimate(raw: &[u8], count: &dyn Fn(&str) -> usize) -> Option<u64> {
    let body: Body<'_> = tollgate_protocol::json_edit::object(raw).ok()?;
    let mut tally = Tally { count: Some(count), ..Tally::default() };
    if let Some(system) = body.system {
        tally.content(system, false);
    }
    for m in &body.messages {
        if let Some(c) = m.content {
            tally.content(c, false);
        }
    }
    for tool in &body.tools {
        tally.text(tool.name.as_deref().unwrap_or_default());
        tally.text(tool.description.as_deref().unwrap_or_default());
        if let Some(schema) = tool.input_schema {
            tally.text(schema.get());
        }
    }
    let messages = body.messages.len() as u64;
    Some(FRAMING + tally.tokens + messages * FRAMING + tally.images * IMAGE_TOKENS)
}

/// Tokens of one text with OpenAI's `o200k_base`, in pieces so that a huge text never needs
/// the tokenizer's working memory for all of it at once.
pub fn count_text(text: &str) -> usize {
    const PIECE: usize = 64 * 1024;
    let bpe = tiktoken_rs::o200k_base_singleton();
    let mut total = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.len().min(PIECE);
        // Cut at white space (tokens rarely span it) on a character boundary.
        if end < rest.len() {
            while !rest.is_char_boundary(end) {
                end -= 1;
            }
            if let Some(space) = rest[..end].rfind(char::is_whitespace).filter(|i| *i > 0) {
                end = space;
            }
        }
        total += bpe.encode_with_special_tokens(&rest[..end]).len();
        rest = &rest[end..];
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> usize {
        s.split_whitespace().count()
    }

    #[test]
    fn counts_every_text_the_model_reads() {
        let body = br#"{"model":"m","system":[{"type":"text","text":"be brief"}],
            "messages":[
              {"role":"user","content":"one two three"},
              {"role":"assistant","content":[{"type":"thinking","thinking":"hm hm"},
                 {"type":"tool_use","id":"t","name":"ls","input":{"path":"x"}}]},
              {"role":"user","content":[{"type":"tool_result","tool_use_id":"t",
                 "content":[{"type":"text","text":"a b"},{"type":"image","source":{}}]},
                 {"type":"text","text":"with \"escapes\"\n"}]}],
            "tools":[{"name":"ls","description":"list files","input_schema":{"type":"object"}}]}"#;
        let n = estimate(body, &words).unwrap();
        // be brief(2) one two three(3) hm hm(2) ls(1) {"path":"x"}(1) a b(2) with "escapes"(2)
        // tools: ls(1) list files(2) schema(1); framing 3 + 3 per message; one image.
        assert_eq!(n, 2 + 3 + 2 + 1 + 1 + 2 + 2 + 1 + 2 + 1 + 3 + 9 + IMAGE_TOKENS);
        assert_eq!(estimate(b"[1]", &words), None);
        assert_eq!(estimate(br#"{"messages":[]}"#, &words), Some(3));
    }

    #[test]
    fn long_texts_are_counted_in_pieces_to_the_same_total() {
        let text = "lorem ipsum dolor sit amet ".repeat(10_000);
        let whole = tiktoken_rs::o200k_base_singleton().encode_with_special_tokens(&text).len();
        let pieces = count_text(&text);
        // Cutting at white space can merge or split a token at each cut; there are few cuts.
        assert!(whole.abs_diff(pieces) <= text.len() / (64 * 1024) + 1, "{whole} vs {pieces}");
    }
}
