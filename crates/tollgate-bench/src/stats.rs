//! What one target's requests measured, and its JSON summary.

use std::{collections::BTreeMap, time::Duration};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// Microseconds: 1 µs resolution, 3 significant digits, up to 10 minutes.
#[allow(clippy::expect_used)] // constant bounds that hdrhistogram accepts
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// Histograms and counters of one target.
#[derive(Debug)]
pub struct Stats {
    /// Completion time, from the scheduled send time (open loop) or the send (closed loop).
    latency: Histogram<u64>,
    /// Completion time from the actual send; differs from `latency` only in open loop.
    service: Histogram<u64>,
    /// Streams: time to the first complete event.
    first_event: Histogram<u64>,
    /// Streams: time between consecutive complete events.
    gap: Histogram<u64>,
    ok: u64,
    errors: BTreeMap<String, u64>,
    events: u64,
    body_bytes: u64,
    /// Seconds of measurement window this target ran, summed over rounds.
    window: Duration,
    /// Every request that reached the server, warm-up included.
    sent: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            latency: histogram(),
            service: histogram(),
            first_event: histogram(),
            gap: histogram(),
            ok: 0,
            errors: BTreeMap::new(),
            events: 0,
            body_bytes: 0,
            window: Duration::ZERO,
            sent: 0,
        }
    }
}

/// One finished request as a worker saw it.
#[derive(Debug, Default)]
pub struct Outcome {
    /// From the scheduled (open loop) or actual (closed loop) send to the end of the body.
    pub latency: Duration,
    /// From the actual send to the end of the body.
    pub service: Duration,
    /// Streams: from the scheduled or actual send to the first complete event.
    pub first_event: Option<Duration>,
    /// Streams: gaps between consecutive events.
    pub gaps: Vec<Duration>,
    /// Streams: events received.
    pub events: u64,
    /// Body bytes received.
    pub body_bytes: u64,
    /// Why the request failed, if it did.
    pub error: Option<String>,
}

impl Stats {
    /// Adds a request's outcome. Failed requests count as errors and not in the latencies.
    pub fn record(&mut self, outcome: &Outcome) {
        if let Some(kind) = &outcome.error {
            *self.errors.entry(kind.clone()).or_default() += 1;
            return;
        }
        self.ok += 1;
        self.latency.saturating_record(micros(outcome.latency));
        self.service.saturating_record(micros(outcome.service));
        if let Some(first) = outcome.first_event {
            self.first_event.saturating_record(micros(first));
        }
        for gap in &outcome.gaps {
            // A gap of 0 µs (two events in one read) is recorded as 1 µs, the lowest bucket.
            self.gap.saturating_record(micros(*gap));
        }
        self.events += outcome.events;
        self.body_bytes += outcome.body_bytes;
    }

    /// Counts `n` requests that failed without an outcome of their own.
    pub fn add_errors(&mut self, kind: &str, n: u64) {
        if n > 0 {
            *self.errors.entry(kind.to_owned()).or_default() += n;
        }
    }

    /// Counts a request sent, measured or not.
    pub fn count_sent(&mut self) {
        self.sent += 1;
    }

    /// Adds a measurement window the target ran for.
    pub fn add_window(&mut self, window: Duration) {
        self.window += window;
    }

    /// The JSON summary: counts, rates and percentiles in milliseconds.
    pub fn summary(&self, name: &str, open_loop: bool, stream: bool) -> Value {
        let error_count: u64 = self.errors.values().sum();
        let requests = self.ok + error_count;
        let window = self.window.as_secs_f64();
        let rate = |n: u64| if window > 0.0 { n as f64 / window } else { 0.0 };
        let mut out = json!({
            "name": name,
            "requests": requests,
            "sent_including_warmup": self.sent,
            "ok": self.ok,
            "error_count": error_count,
            "errors": self.errors,
            "error_rate": if requests > 0 { error_count as f64 / requests as f64 } else { 0.0 },
            "window_s": window,
            "achieved_rps": rate(self.ok),
            "latency_ms": percentiles(&self.latency),
            "body_bytes_mean": if self.ok > 0 { self.body_bytes as f64 / self.ok as f64 } else { 0.0 },
        });
        if open_loop {
            out["service_ms"] = percentiles(&self.service);
        }
        if stream {
            out["first_event_ms"] = percentiles(&self.first_event);
            out["gap_ms"] = percentiles(&self.gap);
            out["events_per_stream_mean"] =
                json!(if self.ok > 0 { self.events as f64 / self.ok as f64 } else { 0.0 });
        }
        out
    }
}

fn percentiles(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return json!({"count": 0});
    }
    let ms = |us: u64| us as f64 / 1000.0;
    json!({
        "count": h.len(),
        "min": ms(h.min()),
        "mean": h.mean() / 1000.0,
        "p50": ms(h.value_at_quantile(0.50)),
        "p90": ms(h.value_at_quantile(0.90)),
        "p99": ms(h.value_at_quantile(0.99)),
        "p999": ms(h.value_at_quantile(0.999)),
        "max": ms(h.max()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_errors_apart_from_latencies() {
        let mut stats = Stats::default();
        for ms in 1..=100 {
            stats.record(&Outcome {
                latency: Duration::from_millis(ms),
                service: Duration::from_millis(ms),
                ..Outcome::default()
            });
        }
        stats.record(&Outcome { error: Some("status_502".into()), ..Outcome::default() });
        stats.add_window(Duration::from_secs(2));
        let s = stats.summary("t", false, false);
        assert_eq!(s["ok"], 100);
        assert_eq!(s["errors"]["status_502"], 1);
        assert_eq!(s["achieved_rps"], 50.0);
        let p99 = s["latency_ms"]["p99"].as_f64().unwrap_or_default();
        assert!((98.9..=99.1).contains(&p99), "p99 {p99}");
        assert!(s.get("first_event_ms").is_none());
    }
}
