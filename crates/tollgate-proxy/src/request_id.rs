//! The two ids of a request: tollgate's own, which names its spend record, and the client's
//! `x-request-id`, which is echoed back and forwarded upstream.
//!
//! A client chooses its id and may send one id many times (retries, or to dodge a budget),
//! so it never identifies a record: two requests with one client id are two records.

use std::fmt;

use axum::http::HeaderMap;

/// The longest client `x-request-id` kept; longer ones are ignored.
const MAX_CLIENT_ID_LEN: usize = 128;

/// The ids of the current request, put in the request's extensions by the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId {
    /// Made by tollgate for every request (a UUIDv7): the spend record's id, in every log line.
    pub id: String,
    /// The client's `x-request-id`, when it sent a usable one (1 to 128 visible ASCII
    /// characters).
    pub client: Option<String>,
}

impl RequestId {
    /// A fresh id, with the client's `x-request-id` from `headers` when usable.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let client = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| {
                !v.is_empty()
                    && v.len() <= MAX_CLIENT_ID_LEN
                    && v.bytes().all(|b| b.is_ascii_graphic())
            })
            .map(str::to_owned);
        Self { id: new_request_id(), client }
    }

    /// The id the client sees in `x-request-id` and upstreams receive: the client's own when
    /// it sent one, so its correlation id carries through, else tollgate's.
    pub fn shown(&self) -> &str {
        self.client.as_deref().unwrap_or(&self.id)
    }
}

/// Shows tollgate's own id, the one that names the spend record.
impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

/// A UUIDv7 (time-ordered) request id. Its random part comes from the thread-local CSPRNG
/// rather than a `getrandom` system call per request, which `Uuid::now_v7` makes.
pub fn new_request_id() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let random: [u8; 10] = rand::random();
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid().to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::http::{HeaderMap, HeaderValue};

    use super::*;

    #[test]
    fn request_ids_are_distinct_time_ordered_uuids() {
        let (a, b) = (new_request_id(), new_request_id());
        assert_ne!(a, b);
        let parsed = uuid::Uuid::parse_str(&a).unwrap();
        assert_eq!(parsed.get_version_num(), 7);
        let (secs, _) = parsed.get_timestamp().unwrap().to_unix();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        assert!(now.as_secs().abs_diff(secs) < 5);
    }

    #[test]
    fn the_client_id_is_kept_beside_a_fresh_own_id() {
        let mut headers = HeaderMap::new();
        headers.insert("x-request-id", HeaderValue::from_static("client-1"));
        let (a, b) = (RequestId::from_headers(&headers), RequestId::from_headers(&headers));
        assert_eq!(
            (a.client.as_deref(), b.client.as_deref()),
            (Some("client-1"), Some("client-1"))
        );
        assert_ne!(a.id, b.id, "a repeated client id never repeats the own id");
        assert_eq!(a.shown(), "client-1");
        assert_eq!(a.to_string(), a.id);

        let none = RequestId::from_headers(&HeaderMap::new());
        assert_eq!((none.client.as_deref(), none.shown()), (None, none.id.as_str()));
        for bad in ["", "has space", &"x".repeat(129)] {
            let mut headers = HeaderMap::new();
            headers.insert("x-request-id", HeaderValue::from_str(bad).unwrap());
            assert_eq!(RequestId::from_headers(&headers).client, None, "{bad:?}");
        }
    }
}
