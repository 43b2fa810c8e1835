//! Reading request bodies within the configured size limit.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_LENGTH;
use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;

use crate::error::{ApiError, Protocol};
use crate::state::AppState;

/// Extractor: the whole request body, at most `max_request_bytes`; 413 in the route's protocol
/// otherwise.
#[derive(Debug)]
pub struct LimitedBody(pub Bytes);

impl FromRequest<AppState> for LimitedBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let pending = PendingBody::from_request(req, state).await?;
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
    protocol: Protocol,
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
            protocol: Protocol::for_path(req.uri().path()),
            body: req.into_body(),
        })
    }
}

impl PendingBody {
    /// The whole body, or 413 / 408 / 400 in the route's protocol. A client gets
    /// `body_read_timeout` to send all of it, however it paces the bytes.
    pub async fn read(self) -> Result<Bytes, ApiError> {
        if self.declared.is_some_and(|n| n > self.limit as u64) {
            return Err(ApiError::too_large(self.limit).in_protocol(self.protocol));
        }
        let read = tokio::time::timeout(self.timeout, read_limited(self.body, self.limit));
        match read.await {
            Ok(result) => result.map_err(|e| e.in_protocol(self.protocol)),
            Err(_) => Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "The request body did not arrive within {} seconds.",
                    self.timeout.as_secs_f64()
                ),
            )
            .with_code("request_timeout")
            .in_protocol(self.protocol)),
        }
    }
}

async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(bytes),
        Err(e) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if too_large {
                Err(ApiError::too_large(limit))
            } else {
                Err(ApiError::new(StatusCode::BAD_REQUEST, "The request body could not be read."))
            }
        }
    }
}
