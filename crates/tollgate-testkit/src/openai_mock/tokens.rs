//! Deterministic token counts and text splitting, so tests can predict `usage` exactly.
//!
//! The rule the mock reports:
//! - `prompt_tokens` = for each entry of `messages`: the whitespace-separated words of its
//!   text, plus 3. Text is a string `content`, or the `text` of every part of an array
//!   `content`. Embeddings: the words of every input, at least 1 in total.
//! - `completion_tokens` = the words of the reply text plus the words of the reasoning, at
//!   least 1. For tool calls the reply text is each call's name and arguments.
//! - `total_tokens` = the sum of both.
//!
//! The Responses API reports the same counts as `input_tokens` and `output_tokens`, where
//! the messages are the items of `input` (a string `input` is one message) plus
//! `instructions` when given. An item's text is its string `content`, the `text` of every
//! part of an array `content`, a function call's `arguments` or a call output's `output`.

use std::ops::Range;

use serde_json::Value;

use super::reply::{Reply, ReplySpec};

/// Tokens the mock adds per message, as OpenAI's own counting does for its framing.
const PER_MESSAGE: u64 = 3;

/// Argument fragments per tool call when [`ReplySpec::chunks`] is not set.
const DEFAULT_ARGUMENT_FRAGMENTS: usize = 4;

/// Whitespace-separated words in `text`.
pub fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// `prompt_tokens` of a chat request body, by the rule in the module docs.
pub fn prompt_tokens(body: &Value) -> u64 {
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return 0;
    };
    messages
        .iter()
        .map(|message| {
            let text_words = match message.get("content") {
                Some(Value::String(text)) => words(text),
                Some(Value::Array(parts)) => parts
                    .iter()
                    .filter_map(|part| part.get("text").and_then(Value::as_str))
                    .map(words)
                    .sum(),
                _ => 0,
            };
            text_words + PER_MESSAGE
        })
        .sum()
}

/// `input_tokens` of a Responses API request body, by the rule in the module docs.
pub fn input_tokens(body: &Value) -> u64 {
    let instructions = match body.get("instructions") {
        Some(Value::String(text)) => words(text) + PER_MESSAGE,
        _ => 0,
    };
    let items = match body.get("input") {
        Some(Value::String(text)) => words(text) + PER_MESSAGE,
        Some(Value::Array(items)) => items.iter().map(|item| item_words(item) + PER_MESSAGE).sum(),
        _ => 0,
    };
    instructions + items
}

fn item_words(item: &Value) -> u64 {
    if let Some(text) =
        ["arguments", "output"].iter().find_map(|field| item.get(*field).and_then(Value::as_str))
    {
        return words(text);
    }
    match item.get("content") {
        Some(Value::String(text)) => words(text),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .map(words)
            .sum(),
        _ => 0,
    }
}

/// Reasoning tokens of a reply: the words of its reasoning text.
pub fn reasoning_tokens(spec: &ReplySpec) -> u64 {
    spec.reasoning.as_deref().map_or(0, words)
}

/// `completion_tokens` of a reply, by the rule in the module docs.
pub fn completion_tokens(spec: &ReplySpec) -> u64 {
    let answer = match &spec.reply {
        Reply::Text { text } => words(text),
        Reply::ToolCalls { calls } => {
            calls.iter().map(|c| words(&c.name) + words(&c.arguments)).sum()
        }
        Reply::Error { .. } | Reply::Hang => 0,
    };
    (answer + reasoning_tokens(spec)).max(1)
}

/// The `usage` object of a chat reply.
pub fn usage(spec: &ReplySpec, prompt_tokens: u64) -> Value {
    let completion_tokens = completion_tokens(spec);
    let mut usage = serde_json::json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    });
    if spec.reasoning.is_some() {
        usage["completion_tokens_details"] =
            serde_json::json!({"reasoning_tokens": reasoning_tokens(spec)});
    }
    usage
}

/// The `usage` object of a Responses API reply.
pub fn response_usage(spec: &ReplySpec, input_tokens: u64) -> Value {
    let output_tokens = completion_tokens(spec);
    serde_json::json!({
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens(spec)},
        "total_tokens": input_tokens + output_tokens,
    })
}

/// Byte ranges that split `text` into deltas: `n` near-equal pieces by characters when
/// given, otherwise one piece per word with its trailing whitespace. Concatenated, the
/// pieces are always exactly `text`.
pub fn split(text: &str, n: Option<usize>) -> Vec<Range<usize>> {
    if text.is_empty() {
        return Vec::new();
    }
    match n {
        Some(n) => split_even(text, n),
        None => split_words(text),
    }
}

/// Argument fragments of one tool call.
pub fn split_arguments(arguments: &str, n: Option<usize>) -> Vec<Range<usize>> {
    split(arguments, Some(n.unwrap_or(DEFAULT_ARGUMENT_FRAGMENTS)))
}

fn split_even(text: &str, n: usize) -> Vec<Range<usize>> {
    let chars = text.chars().count();
    let n = n.clamp(1, chars);
    let offsets: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    (0..n)
        .map(|k| {
            let start = offsets[k * chars / n];
            let end = if k + 1 == n { text.len() } else { offsets[(k + 1) * chars / n] };
            start..end
        })
        .collect()
}

fn split_words(text: &str) -> Vec<Range<usize>> {
    // A piece starts at every word that follows whitespace; the first piece also takes any
    // leading whitespace, so nothing is lost.
    let mut starts = vec![0];
    let mut previous_was_space = false;
    for (i, c) in text.char_indices() {
        let space = c.is_whitespace();
        if !space && previous_was_space {
            starts.push(i);
        }
        previous_was_space = space;
    }
    // Leading whitespace makes the first word start a second piece; fold it into the first.
    if text.starts_with(char::is_whitespace) && starts.len() > 1 {
        starts.remove(1);
    }
    let mut ranges: Vec<Range<usize>> = starts.windows(2).map(|w| w[0]..w[1]).collect();
    ranges.push(starts[starts.len() - 1]..text.len());
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(text: &str, n: Option<usize>) -> Vec<&str> {
        split(text, n).into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn splits_per_word_and_evenly() {
        assert_eq!(pieces("Hello big world", None), ["Hello ", "big ", "world"]);
        assert_eq!(pieces("  lead and trail ", None), ["  lead ", "and ", "trail "]);
        assert_eq!(pieces("abcdefgh", Some(4)), ["ab", "cd", "ef", "gh"]);
        assert_eq!(pieces("héllo", Some(9)).concat(), "héllo");
        assert!(pieces("", None).is_empty());
    }

    #[test]
    fn counts_prompt_tokens() {
        let body = serde_json::json!({"messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "one two three"}]}
        ]});
        assert_eq!(prompt_tokens(&body), 2 + 3 + 3 + 3);
    }

    #[test]
    fn counts_responses_input_tokens() {
        assert_eq!(input_tokens(&serde_json::json!({"input": "one two"})), 2 + 3);
        let body = serde_json::json!({"instructions": "be brief", "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "one two three"}]},
            {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{\"a\": 1}"},
            {"type": "function_call_output", "call_id": "c", "output": "sunny and warm"},
        ]});
        assert_eq!(input_tokens(&body), (2 + 3) + (3 + 3) + (2 + 3) + (3 + 3));
    }
}
