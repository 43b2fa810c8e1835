//! Reading request bodies within the configured size limit.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_LENGTH;
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
        let limit = state.settings().max_request_bytes;
        let protocol = Protocol::for_path(req.uri().path());
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(ApiError::too_large(limit).in_protocol(protocol));
        }
        read_limited(req.into_body(), limit)
            .await
            .map(LimitedBody)
            .map_err(|e| e.in_protocol(protocol))
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
                Err(ApiError::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    "The request body could not be read.",
                ))
            }
        }
    }
}
