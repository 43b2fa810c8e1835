//! Command line and targets file: what to send, where, and how hard.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri, header, uri::Authority};
use serde::Deserialize;

/// An HTTP load generator for gateway benchmarks: open loop at a fixed rate (latency from
/// the scheduled send time, so a stalled server cannot hide its stall) or closed loop at a
/// fixed concurrency; JSON bodies or SSE streams; HDR histograms; one JSON report on stdout.
#[derive(Debug, Parser)]
#[command(name = "tollgate-loadgen", version)]
pub struct Args {
    /// Target URL (plain http). Or use --targets.
    #[arg(long, required_unless_present = "targets")]
    pub url: Option<String>,
    /// Name of the target in the report.
    #[arg(long, default_value = "target")]
    pub name: String,
    /// Request method [default: POST with a body, else GET].
    #[arg(long)]
    pub method: Option<String>,
    /// Request header `Name: value`; repeatable.
    #[arg(short = 'H', long = "header")]
    pub headers: Vec<String>,
    /// Request body.
    #[arg(long, conflicts_with = "body_file")]
    pub body: Option<String>,
    /// Request body from a file.
    #[arg(long)]
    pub body_file: Option<PathBuf>,
    /// `json`: read the whole body; `sse`: time the first event and the gaps between events.
    #[arg(long, value_enum, default_value_t = Mode::Json)]
    pub mode: Mode,
    /// Streams: one without an event containing this text is an error [default: `[DONE]`;
    /// an empty string accepts any stream].
    #[arg(long)]
    pub done_marker: Option<String>,
    /// A JSON file with a list of targets (name, url, method, headers, body or body_json,
    /// mode, done_marker), run one after another in each round.
    #[arg(long, conflicts_with = "url")]
    pub targets: Option<PathBuf>,
    /// Open loop: requests per second, sent on a fixed schedule.
    #[arg(long, conflicts_with = "concurrency")]
    pub rate: Option<f64>,
    /// Open loop: connections (at most this many requests in flight)
    /// [default: enough for 100 ms per request at the rate, 8 to 2048].
    #[arg(long, requires = "rate")]
    pub connections: Option<usize>,
    /// Closed loop: requests in flight, each sent as soon as the previous one finished.
    #[arg(long, required_unless_present = "rate")]
    pub concurrency: Option<usize>,
    /// Seconds measured per target and round.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of load before the measurement starts (not recorded), per target and round.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Send exactly this many requests per target and round instead (no warm-up).
    #[arg(long)]
    pub requests: Option<u64>,
    /// Rounds; each runs every target once, in an order rotated by one each round, so slow
    /// drifts of the machine affect all targets alike.
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
    /// Seconds before one request is given up as a timeout.
    #[arg(long, default_value_t = 30.0)]
    pub timeout: f64,
}

/// How a response is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Read the whole body.
    Json,
    /// Read server-sent events, timing each.
    Sse,
}

/// How requests are paced.
#[derive(Debug, Clone, Copy)]
pub enum Load {
    /// Open loop: a request every `1/rate` seconds over `connections` connections.
    Rate { rate: f64, connections: usize },
    /// Closed loop: `concurrency` connections, each sending again as soon as it is done.
    Closed { concurrency: usize },
}

impl Load {
    /// The number of connections (and worker tasks) per target.
    pub fn connections(&self) -> usize {
        match *self {
            Self::Rate { connections, .. } => connections,
            Self::Closed { concurrency } => concurrency,
        }
    }
}

/// One target, ready to send to.
#[derive(Debug)]
pub struct Target {
    pub name: String,
    /// Where connections go: connection `i` to `addrs[i % addrs.len()]` (one address unless
    /// the target spreads its load over replicas).
    pub addrs: Vec<SocketAddr>,
    pub method: Method,
    /// Origin-form: path and query.
    pub path: Uri,
    /// Includes `host`.
    pub headers: HeaderMap,
    pub body: Bytes,
    pub mode: Mode,
    pub done_marker: Option<Vec<u8>>,
}

/// A target as written in a `--targets` file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetSpec {
    name: String,
    url: String,
    /// More servers (`http://host:port`) answering the same path: the target's connections
    /// are spread over `url`'s server and these in turn, as a load balancer would.
    #[serde(default)]
    spread: Vec<String>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    body_json: Option<serde_json::Value>,
    #[serde(default = "default_mode")]
    mode: Mode,
    #[serde(default)]
    done_marker: Option<String>,
}

fn default_mode() -> Mode {
    Mode::Json
}

/// Everything a run needs, checked.
#[derive(Debug)]
pub struct Plan {
    pub targets: Vec<Target>,
    pub load: Load,
    pub warmup: Duration,
    pub duration: Duration,
    pub requests: Option<u64>,
    pub rounds: usize,
    pub timeout: Duration,
}

impl Args {
    /// Resolves addresses, reads files and checks the numbers.
    pub fn plan(&self) -> anyhow::Result<Plan> {
        let load = match (self.rate, self.concurrency) {
            (Some(rate), _) => {
                if !(rate > 0.0 && rate.is_finite()) {
                    bail!("--rate must be a positive number, got {rate}");
                }
                let auto = ((rate * 0.1).ceil() as usize).clamp(8, 2048);
                Load::Rate { rate, connections: self.connections.unwrap_or(auto).max(1) }
            }
            (None, Some(c)) if c > 0 => Load::Closed { concurrency: c },
            _ => bail!("give --rate R (open loop) or --concurrency C (closed loop, C > 0)"),
        };
        let targets = match &self.targets {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let specs: Vec<TargetSpec> = serde_json::from_str(&text)
                    .with_context(|| format!("parsing {}", path.display()))?;
                if specs.is_empty() {
                    bail!("{}: no targets", path.display());
                }
                specs.into_iter().map(TargetSpec::resolve).collect::<anyhow::Result<_>>()?
            }
            None => vec![self.single_target()?.resolve()?],
        };
        let secs = |name: &str, v: f64| {
            Duration::try_from_secs_f64(v).with_context(|| format!("--{name}: invalid seconds"))
        };
        Ok(Plan {
            targets,
            load,
            warmup: secs("warmup", self.warmup)?,
            duration: secs("duration", self.duration)?,
            requests: self.requests,
            rounds: self.rounds.max(1),
            timeout: secs("timeout", self.timeout)?,
        })
    }

    fn single_target(&self) -> anyhow::Result<TargetSpec> {
        let mut headers = BTreeMap::new();
        for h in &self.headers {
            let (name, value) = h
                .split_once(':')
                .with_context(|| format!("header `{h}`: expected `Name: value`"))?;
            headers.insert(name.trim().to_owned(), value.trim().to_owned());
        }
        let body = match &self.body_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?,
            ),
            None => self.body.clone(),
        };
        Ok(TargetSpec {
            name: self.name.clone(),
            url: self.url.clone().unwrap_or_default(),
            spread: Vec::new(),
            method: self.method.clone(),
            headers,
            body,
            body_json: None,
            mode: self.mode,
            done_marker: self.done_marker.clone(),
        })
    }
}

impl TargetSpec {
    fn resolve(self) -> anyhow::Result<Target> {
        let what = format!("target `{}`", self.name);
        let uri: Uri = self.url.parse().with_context(|| format!("{what}: bad url"))?;
        if uri.scheme_str() != Some("http") {
            bail!("{what}: only http:// URLs are supported, got {}", self.url);
        }
        let authority = uri.authority().with_context(|| format!("{what}: url has no host"))?;
        let mut addrs = vec![resolve(&what, authority)?];
        for other in &self.spread {
            let other: Uri = other.parse().with_context(|| format!("{what}: bad spread url"))?;
            let host = other.authority().with_context(|| format!("{what}: {other} has no host"))?;
            if other.scheme_str() != Some("http") {
                bail!("{what}: only http:// URLs are supported, got {other}");
            }
            addrs.push(resolve(&what, host)?);
        }
        let path: Uri = uri.path_and_query().map_or("/", |p| p.as_str()).parse()?;

        let body = match (self.body, self.body_json) {
            (Some(_), Some(_)) => bail!("{what}: give body or body_json, not both"),
            (Some(text), None) => Bytes::from(text),
            (None, Some(value)) => Bytes::from(serde_json::to_vec(&value)?),
            (None, None) => Bytes::new(),
        };
        let method = match self.method {
            Some(m) => m.to_ascii_uppercase().parse().with_context(|| format!("{what}: method"))?,
            None if body.is_empty() => Method::GET,
            None => Method::POST,
        };
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(authority.as_str())?);
        if !body.is_empty() {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        for (name, value) in &self.headers {
            let name: HeaderName =
                name.parse().with_context(|| format!("{what}: header name `{name}`"))?;
            let value = HeaderValue::from_str(value)
                .with_context(|| format!("{what}: value of header `{name}`"))?;
            headers.insert(name, value);
        }
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        let done_marker = match (self.mode, self.done_marker) {
            (Mode::Json, _) => None,
            (Mode::Sse, None) => Some(b"[DONE]".to_vec()),
            (Mode::Sse, Some(m)) if m.is_empty() => None,
            (Mode::Sse, Some(m)) => Some(m.into_bytes()),
        };
        Ok(Target {
            name: self.name,
            addrs,
            method,
            path,
            headers,
            body,
            mode: self.mode,
            done_marker,
        })
    }
}

fn resolve(what: &str, authority: &Authority) -> anyhow::Result<SocketAddr> {
    let port = authority.port_u16().unwrap_or(80);
    std::net::ToSocketAddrs::to_socket_addrs(&(authority.host(), port))
        .with_context(|| format!("{what}: resolving {}", authority.host()))?
        .next()
        .with_context(|| format!("{what}: {} has no address", authority.host()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> anyhow::Result<Target> {
        serde_json::from_str::<TargetSpec>(json)?.resolve()
    }

    #[test]
    fn a_spread_target_lists_every_server_in_order() {
        let t = spec(
            r#"{"name": "pair", "url": "http://127.0.0.1:4000/v1/chat/completions",
                "spread": ["http://127.0.0.1:4001", "http://127.0.0.1:4002/"]}"#,
        )
        .unwrap();
        let ports: Vec<u16> = t.addrs.iter().map(SocketAddr::port).collect();
        assert_eq!(ports, [4000, 4001, 4002]);
        assert_eq!(t.path, "/v1/chat/completions");
    }

    #[test]
    fn a_target_without_spread_has_one_server_and_https_is_refused() {
        let t = spec(r#"{"name": "one", "url": "http://127.0.0.1:4000/"}"#).unwrap();
        assert_eq!(t.addrs.len(), 1);
        let err = spec(r#"{"name": "x", "url": "http://127.0.0.1:1/", "spread": ["https://a:1"]}"#)
            .unwrap_err();
        assert!(err.to_string().contains("only http://"), "{err}");
    }
}
