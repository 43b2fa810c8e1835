//! Anthropic content blocks as OpenAI content parts.

use serde_json::json;

use crate::anthropic::{ContentBlock, DocumentBlock, ImageSource, ToolResultBlock};
use crate::openai::types::{ChatMessage, ChatRole, ContentPart};
use crate::translate::Dropped;
use crate::wire::TextOr;

/// An image source as an image part: inline bytes become a `data:` URL.
pub(super) fn image_part(source: ImageSource, dropped: &mut Dropped) -> Option<ContentPart> {
    match source {
        ImageSource::Base64 { media_type, data } => {
            Some(ContentPart::image(format!("data:{media_type};base64,{data}")))
        }
        ImageSource::Url { url } => Some(ContentPart::image(url)),
        ImageSource::Other(v) => {
            let kind = v.get("type").and_then(|t| t.as_str()).unwrap_or("unknown");
            dropped.add(format!("messages.content.image.source.{kind}"));
            None
        }
    }
}

/// A document as parts: a PDF becomes a `file` part (OpenAI reads PDFs given as
/// `file_data`), text documents become text, and URL or file-id sources, which OpenAI
/// cannot fetch, are dropped.
pub(super) fn document_parts(doc: DocumentBlock, dropped: &mut Dropped) -> Vec<ContentPart> {
    let source = &doc.source;
    let kind = source.get("type").and_then(|t| t.as_str()).unwrap_or("unknown");
    let str_field = |name: &str| source.get(name).and_then(|v| v.as_str());
    let titled = |text: &str| match &doc.title {
        Some(title) => format!("{title}\n\n{text}"),
        None => text.to_owned(),
    };
    match (kind, str_field("media_type"), str_field("data")) {
        ("base64", Some(media_type), Some(data)) => {
            let filename = doc.title.clone().unwrap_or_else(|| "document.pdf".to_owned());
            vec![ContentPart::Other(json!({
                "type": "file",
                "file": { "filename": filename, "file_data": format!("data:{media_type};base64,{data}") }
            }))]
        }
        ("text", _, Some(data)) => vec![ContentPart::text(titled(data))],
        ("content", _, _) => {
            let text = match source.get("content") {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Array(blocks)) => blocks
                    .iter()
                    .filter_map(|b| b.get("text").and_then(|t| t.as_str()))
                    .collect::<Vec<_>>()
                    .join("\n\n"),
                _ => String::new(),
            };
            vec![ContentPart::text(titled(&text))]
        }
        _ => {
            dropped.add(format!("messages.content.document.source.{kind}"));
            Vec::new()
        }
    }
}

/// A tool result as a `tool` message, plus the images it held: OpenAI tool messages carry
/// text only, so images travel in a user message after the tool messages of the turn.
/// A failed tool's text is prefixed with `Error: `, the only failure marker a plain tool
/// message can carry.
pub(super) fn tool_message(
    result: ToolResultBlock,
    dropped: &mut Dropped,
) -> (ChatMessage, Vec<ContentPart>) {
    let mut texts = Vec::new();
    let mut images = Vec::new();
    match result.content {
        None => {}
        Some(TextOr::Text(s)) => texts.push(s),
        Some(TextOr::List(blocks)) => {
            for block in blocks {
                if block.cache_control().is_some() {
                    dropped.add("cache_control");
                }
                match block {
                    ContentBlock::Text(t) => texts.push(t.text),
                    ContentBlock::Image(i) => images.extend(image_part(i.source, dropped)),
                    ContentBlock::Document(d) => {
                        for part in document_parts(d, dropped) {
                            match part {
                                ContentPart::Text(t) => texts.push(t.text),
                                other => images.push(other),
                            }
                        }
                    }
                    // Search results hold their text in nested text blocks.
                    ContentBlock::Other(v) if v.get("content").is_some_and(|c| c.is_array()) => {
                        texts.extend(
                            v.get("content")
                                .and_then(|c| c.as_array())
                                .into_iter()
                                .flatten()
                                .filter_map(|b| b.get("text").and_then(|t| t.as_str()))
                                .map(str::to_owned),
                        );
                    }
                    other => dropped.add(format!("messages.content.tool_result.{}", other.kind())),
                }
            }
        }
    }
    let mut text = texts.join("\n\n");
    if !images.is_empty() {
        let note = format!("[{} attachment(s) returned; see the next user message]", images.len());
        text = if text.is_empty() { note } else { format!("{text}\n\n{note}") };
    }
    if result.is_error == Some(true) {
        text = if text.is_empty() { "Error".to_owned() } else { format!("Error: {text}") };
    }
    let mut msg = ChatMessage::text(ChatRole::Tool, text);
    if !images.is_empty() {
        images.insert(
            0,
            ContentPart::text(format!("Attachments returned by tool call {}:", result.tool_use_id)),
        );
    }
    msg.tool_call_id = Some(result.tool_use_id);
    (msg, images)
}

/// Parts as message content: one string when they are all text (joined by blank lines,
/// the form every OpenAI-compatible server accepts), the parts otherwise.
pub(in crate::translate) fn collapse(parts: Vec<ContentPart>) -> TextOr<ContentPart> {
    if parts.iter().all(|p| matches!(p, ContentPart::Text(_))) {
        let texts: Vec<String> = parts
            .into_iter()
            .filter_map(|p| match p {
                ContentPart::Text(t) => Some(t.text),
                _ => None,
            })
            .collect();
        TextOr::Text(texts.join("\n\n"))
    } else {
        TextOr::List(parts)
    }
}
