//! An Anthropic-format upstream's whole answer: usage read for accounting, then translated
//! for an OpenAI client.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_protocol::anthropic::usage_from_response;
use tollgate_protocol::translate::anthropic_response_to_openai;

fuzz_target!(|data: &[u8]| {
    let _ = usage_from_response(data);
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    if let Ok(completion) = anthropic_response_to_openai(&v, "requested-model", 1_700_000_000) {
        assert_eq!(completion["object"], "chat.completion");
        assert_eq!(completion["model"], "requested-model");
        assert!(completion["choices"].is_array(), "no choices: {completion}");
    }
});
