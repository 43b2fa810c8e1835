//! What a request may cost, estimated before it is sent, so admission can reserve it against
//! budgets: the prompt's size and the most the answer may be, at the model's price.

use serde_json::Value;
use tollgate_router::pricing::Price;

/// Bytes of request body per prompt token. JSON framing and English text run at about four
/// bytes a token; the estimate errs towards more tokens for denser text.
const BYTES_PER_TOKEN: usize = 4;
/// Completion tokens assumed when the request sets no limit and the deployment has not
/// answered yet.
pub const DEFAULT_COMPLETION_TOKENS: u64 = 1024;

/// The most output tokens a request asks for, under any protocol's name for the limit.
pub fn max_output_tokens(body: &Value) -> Option<u64> {
    ["max_tokens", "max_completion_tokens", "max_output_tokens"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_u64))
}

/// The dollars to reserve for a request: its prompt estimated from the body's size, and its
/// answer at the request's own limit when it sets one (the worst case the upstream allows),
/// else at what the deployment typically answers (or [`DEFAULT_COMPLETION_TOKENS`]).
pub fn reservation(
    price: Option<Price>,
    body_bytes: usize,
    max_output: Option<u64>,
    typical_completion: Option<u64>,
) -> f64 {
    let Some(price) = price else { return 0.0 };
    let prompt = body_bytes.div_ceil(BYTES_PER_TOKEN) as u64;
    let completion = max_output.or(typical_completion).unwrap_or(DEFAULT_COMPLETION_TOKENS);
    price.cost(prompt, completion, 0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn worst_case_when_the_request_sets_a_limit() {
        let p = Price { input: 1e-6, output: 2e-6, cached_input: 0.0 };
        let body = json!({"max_tokens": 100});
        assert_eq!(max_output_tokens(&body), Some(100));
        let r = reservation(Some(p), 400, max_output_tokens(&body), Some(5));
        assert!((r - (100.0 * 1e-6 + 100.0 * 2e-6)).abs() < 1e-12, "{r}");
        let typical = reservation(Some(p), 400, None, Some(5));
        assert!((typical - (100.0 * 1e-6 + 5.0 * 2e-6)).abs() < 1e-12, "{typical}");
        assert_eq!(reservation(None, 400, Some(1), None), 0.0);
        assert_eq!(max_output_tokens(&json!({"max_output_tokens": 7})), Some(7));
    }
}
