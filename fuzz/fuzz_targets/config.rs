//! `config.yaml` as a user might write it: loading either yields a config or an error that
//! names the file, with the variables the example configs reference set.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tollgate_config::{MapEnv, from_yaml_str};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let env = MapEnv::from_pairs([
        ("OPENROUTER_API_KEY", "sk-or-fuzz"),
        ("OPENAI_API_KEY", "sk-fuzz"),
        ("ANTHROPIC_API_KEY", "sk-ant-fuzz"),
        ("LITELLM_MASTER_KEY", "sk-master"),
        ("ZAI_API_KEY", "zai-fuzz"),
        ("KIMI_API_KEY", "kimi-fuzz"),
        ("REDIS_HOST", "127.0.0.1"),
        ("REDIS_PORT", "6379"),
    ]);
    match from_yaml_str(text, Some(Path::new("config.yaml")), &env) {
        Ok(config) => {
            for d in &config.diagnostics {
                let _ = d.to_string();
            }
        }
        Err(e) => assert!(e.to_string().starts_with("config.yaml"), "{e}"),
    }
});
