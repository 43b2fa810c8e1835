//! Token usage of Anthropic responses and streams, in the gateway's OpenAI-shaped terms, so
//! same-protocol pass-through is accounted like everything else.

use serde::Deserialize;

use crate::openai::Usage;

#[derive(Deserialize, Default)]
struct UsageView {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<UsageView>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum EventView {
    MessageStart { message: WithUsage },
    MessageDelta { usage: Option<UsageView> },
}

/// The usage of a non-streaming Messages response body, if it reports one.
pub fn usage_from_response(body: &[u8]) -> Option<Usage> {
    response_usage(body).ok().flatten()
}

/// The usage of a non-streaming Messages response body, checking on the way that the body
/// is one JSON object: anything else is not an answer, whatever its status said.
pub fn response_usage(body: &[u8]) -> Result<Option<Usage>, serde_json::Error> {
    let Some(u) = crate::json_edit::object::<WithUsage>(body)?.usage else { return Ok(None) };
    let mut counts = Counts::default();
    counts.apply(&u);
    Ok(Some(counts.usage()))
}

/// Collects usage from a Messages stream as it is relayed: `message_start` carries input
/// and cache counts, `message_delta` the cumulative output (and, from newer servers, input)
/// counts. Feed it every event's `data`; it parses only those two kinds.
#[derive(Debug, Default)]
pub struct StreamUsageObserver {
    counts: Counts,
    seen: bool,
}

impl StreamUsageObserver {
    /// An observer that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Looks at the `data` of one stream event.
    pub fn observe(&mut self, data: &str) {
        // Deltas dominate a stream; only the two usage-bearing events are worth parsing.
        if !(data.contains("\"message_start\"") || data.contains("\"message_delta\"")) {
            return;
        }
        let usage = match serde_json::from_str::<EventView>(data) {
            Ok(EventView::MessageStart { message }) => message.usage,
            Ok(EventView::MessageDelta { usage }) => usage,
            Err(_) => None,
        };
        if let Some(u) = usage {
            self.counts.apply(&u);
            self.seen = true;
        }
    }

    /// The usage seen so far, if any event reported one.
    pub fn usage(&self) -> Option<Usage> {
        self.seen.then(|| self.counts.usage())
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    input: u64,
    output: u64,
    cache_creation: u64,
    cache_read: u64,
}

impl Counts {
    /// Later reports are cumulative, so each present field replaces the earlier value.
    fn apply(&mut self, u: &UsageView) {
        if let Some(n) = u.input_tokens {
            self.input = n;
        }
        if let Some(n) = u.output_tokens {
            self.output = n;
        }
        if let Some(n) = u.cache_creation_input_tokens {
            self.cache_creation = n;
        }
        if let Some(n) = u.cache_read_input_tokens {
            self.cache_read = n;
        }
    }

    fn usage(self) -> Usage {
        Usage {
            // Saturating: the counts are whatever the upstream sent.
            prompt_tokens: self
                .input
                .saturating_add(self.cache_read)
                .saturating_add(self.cache_creation),
            completion_tokens: self.output,
            cached_tokens: self.cache_read,
        }
    }
}
