//! An OpenAI-format upstream's whole answer: usage read for accounting, then translated for
//! an Anthropic client.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_protocol::openai::usage_from_response;
use tollgate_protocol::translate::openai_response_to_anthropic;

fuzz_target!(|data: &[u8]| {
    let _ = usage_from_response(data);
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    if let Ok(message) = openai_response_to_anthropic(&v, "requested-model") {
        assert_eq!(message["type"], "message");
        assert_eq!(message["model"], "requested-model");
        assert!(message["content"].is_array(), "no content: {message}");
    }
});
