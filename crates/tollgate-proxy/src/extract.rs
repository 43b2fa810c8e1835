//! Extractors that tell handlers who is calling.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::auth::{Denied, Principal, credential};
use crate::error::ApiError;
use crate::state::AppState;

fn authenticate(parts: &Parts, state: &AppState) -> Result<Principal, Denied> {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    state.auth().authenticate(credential(&parts.headers), peer, state.directory())
}

/// Extractor: the authenticated caller, or a 401 in the route's protocol.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state).map(Caller).map_err(|d| d.error)
    }
}

/// Extractor for the model APIs: the caller, or why it was refused — with the key when the
/// credential named an existing one, so the handler can record the refusal with the model
/// the request was for.
#[derive(Debug)]
pub struct ModelCaller(pub Result<Principal, Denied>);

impl FromRequestParts<AppState> for ModelCaller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, std::convert::Infallible> {
        Ok(ModelCaller(authenticate(parts, state)))
    }
}

/// Extractor: the query string as `T`, or a 400 in the route's protocol naming what is wrong
/// (axum's own answer is plain text).
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query).map(Query).map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                format!("Invalid query string: {e}."),
            )
            .with_code("invalid_query")
        })
    }
}
