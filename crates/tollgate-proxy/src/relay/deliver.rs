//! Handing an answer to the client with its record: whole bodies are accounted at once,
//! streams when they end (or their client goes away).

use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};

use super::attempt::Answer;
use super::strip;
use crate::record::{Outcome, RecordGuard, RequestRecord};

/// The response for `answer`; `record` is finished now or when the stream ends.
pub(super) fn deliver(answer: Answer, mut record: RequestRecord) -> Response {
    match answer {
        Answer::Whole { status, body, usage } => {
            record.usage = usage;
            if record.keeps_bodies() {
                record.response_body = serde_json::from_slice(&body).ok();
            }
            RecordGuard::new(record).finish(status.as_u16(), Outcome::Success);
            let mut response = (status, body).into_response();
            response.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Answer::Stream(open, shape, strip) => {
            let strip = strip.then(strip::Strip::default);
            open.into_response(RecordGuard::new(record), shape, strip)
        }
    }
}
