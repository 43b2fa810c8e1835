//! The SSE framer and event parser on arbitrary upstream bytes: the events found must not
//! depend on how the bytes were split into reads, and framing must lose no bytes.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tollgate_protocol::sse::{SseEvent, SseFramer, encode};

fn framed(data: &[u8], sizes: &[usize]) -> (Vec<Bytes>, Option<Bytes>) {
    let mut framer = SseFramer::new();
    let mut frames = Vec::new();
    let (mut at, mut i) = (0, 0);
    while at < data.len() {
        let end = (at + sizes[i % sizes.len()]).min(data.len());
        framer.push(&data[at..end]);
        while let Some(frame) = framer.next_frame() {
            frames.push(frame);
        }
        at = end;
        i += 1;
    }
    (frames, framer.finish())
}

fuzz_target!(|data: &[u8]| {
    let whole = framed(data, &[usize::MAX]);
    for sizes in [&[1][..], &[7], &[1, 2, 3, 5, 8, 13]] {
        assert_eq!(framed(data, sizes), whole, "framing depends on read sizes {sizes:?}");
    }
    let (frames, rest) = whole;
    let mut joined: Vec<u8> = frames.iter().flat_map(|f| f.iter().copied()).collect();
    let framed_len = joined.len();
    joined.extend(rest.iter().flat_map(|r| r.iter().copied()));
    if rest.is_none() {
        assert!(data[framed_len..].iter().all(u8::is_ascii_whitespace), "bytes were lost");
    } else {
        assert_eq!(joined, data, "framing changed the bytes");
    }
    for frame in &frames {
        let event = SseEvent::parse(frame);
        // What the gateway encodes from a parsed event must parse back to the same event.
        let single_line = |s: &str| !s.contains(['\n', '\r']);
        if single_line(&event.data) && event.event.as_deref().is_none_or(single_line) {
            let again = SseEvent::parse(&encode(event.event.as_deref(), &event.data));
            assert_eq!(again, event);
        }
    }
});
