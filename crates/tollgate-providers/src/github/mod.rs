//! GitHub itself (not the Copilot API): the OAuth device flow that links a GitHub account.
//!
//! The base URL is a parameter everywhere (`TOLLGATE_GITHUB_URL`, default
//! `https://github.com`) so tests and air-gapped deployments can point it at a stand-in.

mod device;

pub use device::{
    COPILOT_CLIENT_ID, COPILOT_SCOPE, DEVICE_GRANT_TYPE, DeviceCode, DeviceFlowClient, GithubError,
    PollOutcome, SLOW_DOWN_STEP, next_interval,
};

/// A transport error and its causes on one line, without the URL: URLs built from a
/// configured base may carry credentials, and none of our messages should.
pub(crate) fn describe_transport(e: reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".to_owned();
    }
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// At most this much of an upstream error body goes into an error message, so a large
/// HTML error page cannot flood a log line.
pub(crate) const ERROR_BODY_PREVIEW: usize = 512;

/// `body` cut to [`ERROR_BODY_PREVIEW`] bytes on a character boundary.
pub(crate) fn preview(body: &str) -> String {
    if body.len() <= ERROR_BODY_PREVIEW {
        return body.to_owned();
    }
    let mut end = ERROR_BODY_PREVIEW;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &body[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_cuts_long_bodies_on_a_char_boundary() {
        assert_eq!(preview("short"), "short");
        let long = "é".repeat(ERROR_BODY_PREVIEW);
        let cut = preview(&long);
        assert!(cut.ends_with('…'));
        assert!(cut.len() <= ERROR_BODY_PREVIEW + '…'.len_utf8());
    }
}
