//! One keep-alive HTTP/1.1 connection per worker, and one request on it, timed.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, client::conn::http1::SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::{
    cli::{Mode, Target},
    sse::Scanner,
    stats::Outcome,
};

/// A worker's connection; `None` until the first request or after a failure.
pub type Slot = Option<SendRequest<Full<Bytes>>>;

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, &'static str> {
    let stream = TcpStream::connect(addr).await.map_err(|_| "connect")?;
    // Small requests and SSE events must leave at once; Nagle would batch them.
    stream.set_nodelay(true).map_err(|_| "connect")?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| "handshake")?;
    tokio::task::spawn_local(async move {
        // Ends when the server closes or the sender is dropped; either is handled by the caller.
        let _ = connection.await;
    });
    Ok(sender)
}

/// Returns a connection ready for a request: the slot's if it is still open, else a new one.
async fn ready(addr: SocketAddr, slot: &mut Slot) -> Result<(), &'static str> {
    if let Some(sender) = slot.as_mut()
        && sender.ready().await.is_ok()
    {
        return Ok(());
    }
    // Closed by the server (idle timeout, `connection: close`) or never opened: not an error.
    let mut sender = connect(addr).await?;
    sender.ready().await.map_err(|_| "handshake")?;
    *slot = Some(sender);
    Ok(())
}

/// Sends one request (on a connection to `addr`, one of the target's) and reads the whole
/// response. `scheduled` is the open-loop send time latency counts from; closed loop counts
/// from the actual send.
pub async fn request(
    target: &Target,
    addr: SocketAddr,
    slot: &mut Slot,
    scheduled: Option<Instant>,
    timeout: Duration,
) -> Outcome {
    let mut outcome = Outcome::default();
    if let Err(kind) = ready(addr, slot).await {
        *slot = None;
        outcome.error = Some(kind.to_owned());
        return outcome;
    }
    let sent = Instant::now();
    let origin = scheduled.unwrap_or(sent);
    let result = tokio::time::timeout(timeout, exchange(target, slot, origin, &mut outcome)).await;
    let end = Instant::now();
    let error = match result {
        Ok(Ok(())) => None,
        Ok(Err(kind)) => Some(kind),
        Err(_) => Some("timeout".to_owned()),
    };
    if error.is_some() {
        // The connection may be mid-response; never reuse it.
        *slot = None;
    }
    outcome.error = error;
    outcome.latency = end.saturating_duration_since(origin);
    outcome.service = end.saturating_duration_since(sent);
    outcome
}

async fn exchange(
    target: &Target,
    slot: &mut Slot,
    origin: Instant,
    outcome: &mut Outcome,
) -> Result<(), String> {
    let sender = slot.as_mut().ok_or_else(|| "connect".to_owned())?;
    let mut req = Request::new(Full::new(target.body.clone()));
    *req.method_mut() = target.method.clone();
    *req.uri_mut() = target.path.clone();
    *req.headers_mut() = target.headers.clone();
    let response = sender.send_request(req).await.map_err(|_| "send".to_owned())?;
    let status = response.status();
    let mut body = response.into_body();
    let stream = status.is_success() && target.mode == Mode::Sse;
    let mut scanner = Scanner::default();
    let marker = target.done_marker.as_deref();
    let mut last_event: Option<Instant> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| "body".to_owned())?;
        let Some(data) = frame.data_ref() else { continue };
        outcome.body_bytes += data.len() as u64;
        if !stream {
            continue;
        }
        let completed = scanner.feed(data, marker);
        if completed == 0 {
            continue;
        }
        let now = Instant::now();
        match last_event {
            None => outcome.first_event = Some(now.saturating_duration_since(origin)),
            Some(last) => outcome.gaps.push(now.saturating_duration_since(last)),
        }
        // Events that arrived in the same read are zero apart, as the client sees them.
        outcome.gaps.extend(std::iter::repeat_n(Duration::ZERO, completed - 1));
        last_event = Some(now);
        outcome.events += completed as u64;
    }
    if !status.is_success() {
        return Err(format!("status_{}", status.as_u16()));
    }
    if stream {
        if outcome.events == 0 {
            return Err("sse_no_events".to_owned());
        }
        if marker.is_some() && !scanner.done() {
            return Err("sse_no_done".to_owned());
        }
    }
    Ok(())
}
