//! Finds where server-sent events end in a byte stream that arrives in arbitrary pieces,
//! so a stream's time to first event and the gaps between events can be timed as the
//! client sees them.

/// Splits an SSE byte stream into events. An event ends at a blank line (`\n\n` or
/// `\r\n\r\n`); blank lines with nothing before them are not events.
#[derive(Debug, Default)]
pub struct Scanner {
    /// Bytes of the current line so far, `\r` not counted.
    line_len: usize,
    /// The current event's bytes, kept only to look for the done marker.
    event: Vec<u8>,
    /// Whether the current event has any non-blank line yet.
    event_started: bool,
    /// Whether a completed event contained the done marker.
    done: bool,
}

impl Scanner {
    /// Feeds the next piece of the body; returns how many events it completed.
    pub fn feed(&mut self, chunk: &[u8], done_marker: Option<&[u8]>) -> usize {
        let mut completed = 0;
        for &byte in chunk {
            match byte {
                b'\n' => {
                    if self.line_len == 0 {
                        if self.event_started {
                            completed += 1;
                            self.finish_event(done_marker);
                        }
                    } else {
                        self.event_started = true;
                    }
                    self.line_len = 0;
                }
                b'\r' => {}
                _ => self.line_len += 1,
            }
            if done_marker.is_some() && byte != b'\r' {
                self.event.push(byte);
            }
        }
        completed
    }

    /// Whether an event containing the done marker has been seen.
    pub fn done(&self) -> bool {
        self.done
    }

    fn finish_event(&mut self, done_marker: Option<&[u8]>) {
        if let Some(marker) = done_marker
            && !marker.is_empty()
            && self.event.windows(marker.len()).any(|w| w == marker)
        {
            self.done = true;
        }
        self.event.clear();
        self.event_started = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DONE: Option<&[u8]> = Some(b"[DONE]");

    #[test]
    fn counts_events_split_anywhere() {
        let body = b"data: {\"a\":1}\n\ndata: {\"a\":2}\n\ndata: [DONE]\n\n";
        for split in 0..body.len() {
            let mut scanner = Scanner::default();
            let (left, right) = body.split_at(split);
            let n = scanner.feed(left, DONE) + scanner.feed(right, DONE);
            assert_eq!(n, 3, "split at {split}");
            assert!(scanner.done(), "split at {split}");
        }
    }

    #[test]
    fn crlf_and_multi_line_events() {
        let mut scanner = Scanner::default();
        let body =
            b"event: message_start\r\ndata: {}\r\n\r\nevent: message_stop\r\ndata: {}\r\n\r\n";
        assert_eq!(scanner.feed(body, Some(b"message_stop")), 2);
        assert!(scanner.done());
    }

    #[test]
    fn leading_blank_lines_and_missing_marker() {
        let mut scanner = Scanner::default();
        assert_eq!(scanner.feed(b"\n\n: keep-alive\n\ndata: x\n\n", DONE), 2);
        assert!(!scanner.done());
    }

    #[test]
    fn marker_split_across_chunks() {
        let mut scanner = Scanner::default();
        assert_eq!(scanner.feed(b"data: [DO", DONE), 0);
        assert_eq!(scanner.feed(b"NE]\n\n", DONE), 1);
        assert!(scanner.done());
    }
}
