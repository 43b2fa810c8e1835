//! An OpenAI-format upstream's stream: framed into events, accounted as the pass-through
//! path does, and translated for an Anthropic client, whose stream must keep Anthropic's
//! event order and end with `message_stop` or `error`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_fuzz::{AnthropicOrder, frames};
use tollgate_protocol::openai::classify_chunk;
use tollgate_protocol::translate::OpenAiToAnthropicStream;

fuzz_target!(|data: &[u8]| {
    let mut stream = OpenAiToAnthropicStream::new("requested-model", "msg_fuzz");
    let mut order = AnthropicOrder::default();
    for event in frames(data) {
        let _ = classify_chunk(&event.data);
        for out in stream.push_chunk(&event.data) {
            order.check(&out);
        }
    }
    for out in stream.finish() {
        order.check(&out);
    }
    assert!(stream.is_done() && order.ended(), "the stream did not end");
    let _ = stream.usage();
});
