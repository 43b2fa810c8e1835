//! An Anthropic-format upstream's stream: framed into events, accounted as the pass-through
//! path does, and translated for an OpenAI client, whose stream must be chunks ending with
//! `[DONE]` or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_fuzz::{OpenAiOrder, frames};
use tollgate_protocol::anthropic::StreamUsageObserver;
use tollgate_protocol::translate::AnthropicToOpenAiStream;

fuzz_target!(|data: &[u8]| {
    let mut observer = StreamUsageObserver::new();
    let mut stream = AnthropicToOpenAiStream::new("requested-model", 1_700_000_000, true);
    let mut order = OpenAiOrder::default();
    for event in frames(data) {
        observer.observe(&event.data);
        for out in stream.push_event(&event) {
            order.check(&out);
        }
    }
    for out in stream.finish() {
        order.check(&out);
    }
    assert!(stream.is_done() && order.ended(), "the stream did not end");
    let _ = (stream.usage(), observer.usage());
});
