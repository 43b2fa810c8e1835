//! Server-sent events: an incremental framer for relaying streams event by event, and an
//! encoder.
//!
//! The framer never waits for more than one event: each complete event is handed on as soon
//! as its terminating blank line arrives, so relaying through it adds no buffering delay.

use bytes::{Bytes, BytesMut};

/// Splits a byte stream into complete SSE events.
#[derive(Debug, Default)]
pub struct SseFramer {
    buf: BytesMut,
    /// Bytes of `buf` already searched for a terminator, so a long event arriving in many
    /// pieces is not rescanned from the start each time.
    scanned: usize,
}

impl SseFramer {
    /// A framer with nothing buffered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes received from upstream.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete event, terminator included, if one has fully arrived.
    pub fn next_frame(&mut self) -> Option<Bytes> {
        match find_event_end(&self.buf, self.scanned.saturating_sub(3)) {
            Some(end) => {
                self.scanned = 0;
                Some(self.buf.split_to(end).freeze())
            }
            None => {
                self.scanned = self.buf.len();
                None
            }
        }
    }

    /// Whatever is left when the stream ends (an event without its blank line).
    pub fn finish(&mut self) -> Option<Bytes> {
        self.scanned = 0;
        let rest = self.buf.split().freeze();
        (!rest.iter().all(u8::is_ascii_whitespace)).then_some(rest)
    }
}

/// Index just past the blank line ending the first event, searching from `from`.
fn find_event_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < buf.len() {
        match buf[i] {
            b'\n' => {
                if buf.get(i + 1) == Some(&b'\n') {
                    return Some(i + 2);
                }
                if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                    return Some(i + 3);
                }
            }
            b'\r' => {
                if buf.get(i + 1) == Some(&b'\r') {
                    return Some(i + 2);
                }
                if buf.get(i + 1) == Some(&b'\n')
                    && buf.get(i + 2) == Some(&b'\r')
                    && buf.get(i + 3) == Some(&b'\n')
                {
                    return Some(i + 4);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The fields of one event that matter to a gateway.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// `event:` field, if any.
    pub event: Option<String>,
    /// `data:` lines joined with `\n`.
    pub data: String,
}

impl SseEvent {
    /// Parses one framed event. Comments and unknown fields are skipped.
    pub fn parse(frame: &[u8]) -> Self {
        let text = String::from_utf8_lossy(frame);
        let mut event = None;
        let mut data: Option<String> = None;
        for line in text.split(['\n', '\r']) {
            if line.is_empty() || line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line, ""),
            };
            match field {
                "event" => event = Some(value.to_owned()),
                "data" => match &mut data {
                    Some(d) => {
                        d.push('\n');
                        d.push_str(value);
                    }
                    None => data = Some(value.to_owned()),
                },
                _ => {}
            }
        }
        Self { event, data: data.unwrap_or_default() }
    }
}

/// Encodes one event. `data` must not contain line breaks (JSON from serde never does).
pub fn encode(event: Option<&str>, data: &str) -> Bytes {
    let mut out = String::with_capacity(data.len() + 32);
    if let Some(e) = event {
        out.push_str("event: ");
        out.push_str(e);
        out.push('\n');
    }
    out.push_str("data: ");
    out.push_str(data);
    out.push_str("\n\n");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[&[u8]]) -> Vec<Bytes> {
        let mut f = SseFramer::new();
        let mut out = Vec::new();
        for piece in input {
            f.push(piece);
            while let Some(frame) = f.next_frame() {
                out.push(frame);
            }
        }
        out.extend(f.finish());
        out
    }

    #[test]
    fn splits_on_blank_lines_across_pieces() {
        let out = frames(&[b"data: {\"a\"", b":1}\n", b"\ndata: [DONE]\n\n"]);
        assert_eq!(out, vec![Bytes::from("data: {\"a\":1}\n\n"), Bytes::from("data: [DONE]\n\n")]);
    }

    #[test]
    fn handles_crlf_and_cr() {
        let out = frames(&[b"event: x\r\ndata: 1\r\n\r\ndata: 2\r\rdata: 3\n\n"]);
        assert_eq!(out.len(), 3);
        assert_eq!(SseEvent::parse(&out[0]).event.as_deref(), Some("x"));
        assert_eq!(SseEvent::parse(&out[1]).data, "2");
    }

    #[test]
    fn terminator_split_between_pieces() {
        let out = frames(&[b"data: 1\n", b"\n", b"data: 2\r\n", b"\r", b"\n"]);
        assert_eq!(out, vec![Bytes::from("data: 1\n\n"), Bytes::from("data: 2\r\n\r\n")]);
    }

    #[test]
    fn leftover_without_terminator_is_returned() {
        let out = frames(&[b"data: 1\n\ndata: partial"]);
        assert_eq!(out[1], Bytes::from("data: partial"));
    }

    #[test]
    fn parses_multiline_data_and_comments() {
        let e = SseEvent::parse(b": ping\nevent: message_start\ndata: a\ndata:b\n\n");
        assert_eq!(e, SseEvent { event: Some("message_start".into()), data: "a\nb".into() });
    }

    #[test]
    fn encodes() {
        assert_eq!(encode(Some("ping"), "{}"), Bytes::from("event: ping\ndata: {}\n\n"));
    }
}
