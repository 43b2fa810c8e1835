//! Reading request bodies within the configured size limit.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_LENGTH;
use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;

use crate::error::ApiError;
use crate::state::AppState;

/// Largest body a management call takes: its fields are names, limits and a little metadata.
pub const MANAGEMENT_BODY_LIMIT: usize = 1024 * 1024;

/// Extractor for management calls: the whole request body, at most
/// [`MANAGEMENT_BODY_LIMIT`] (or `max_request_bytes`, if smaller); 413 otherwise.
#[derive(Debug)]
pub struct LimitedBody(pub Bytes);

impl FromRequest<AppState> for LimitedBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let mut pending = PendingBody::from_request(req, state).await?;
        pending.limit = pending.limit.min(MANAGEMENT_BODY_LIMIT);
        pending.read().await.map(LimitedBody)
    }
}

/// Extractor: a request body not read yet, so a handler can refuse the caller before reading
/// what it sent. [`PendingBody::read`] reads it within `max_request_bytes`.
#[derive(Debug)]
pub struct PendingBody {
    body: Body,
    declared: Option<u64>,
    limit: usize,
    timeout: Duration,
}

impl FromRequest<AppState> for PendingBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        Ok(Self {
            declared,
            limit: state.settings().max_request_bytes,
            timeout: state.settings().body_read_timeout,
            body: req.into_body(),
        })
    }
}

impl PendingBody {
    /// The whole body, or 413 / 408 / 400 in the route's protocol. A client gets
    /// `body_read_timeout` to send all of it, however it paces the bytes.
    pub async fn read(self) -> Result<Bytes, ApiError> {
        if self.declared.is_some_and(|n| n > self.limit as u64) {
            return Err(ApiError::too_large(self.limit));
        }
        let read =
            tokio::time::timeout(self.timeout, read_limited(self.body, self.limit, self.declared));
        match read.await {
            Ok(result) => result,
            Err(_) => Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "The request body did not arrive within {} seconds.",
                    self.timeout.as_secs_f64()
                ),
            )
            .with_code("request_timeout")),
        }
    }
}

/// Reads a whole body of at most `limit` bytes. A body in one frame is returned as it came;
/// a longer one is gathered into one buffer sized from `Content-Length`, so a large body is
/// held once, not as frames plus their concatenation.
async fn read_limited(
    mut body: Body,
    limit: usize,
    declared: Option<u64>,
) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    let unreadable =
        || ApiError::new(StatusCode::BAD_REQUEST, "The request body could not be read.");
    let mut first: Option<Bytes> = None;
    let mut gathered: Option<Vec<u8>> = None;
    let mut len = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|_| unreadable())?.into_data() else { continue };
        len += data.len();
        if len > limit {
            return Err(ApiError::too_large(limit));
        }
        match (&mut gathered, first.take()) {
            (Some(buf), _) => buf.extend_from_slice(&data),
            (None, None) => first = Some(data),
            (None, Some(head)) => {
                let expected = declared.map_or(0, |n| n as usize).clamp(len, limit);
                let mut buf = Vec::with_capacity(expected);
                buf.extend_from_slice(&head);
                buf.extend_from_slice(&data);
                gathered = Some(buf);
            }
        }
    }
    Ok(match (gathered, first) {
        (Some(buf), _) => Bytes::from(buf),
        (None, Some(one)) => one,
        (None, None) => Bytes::new(),
    })
}
