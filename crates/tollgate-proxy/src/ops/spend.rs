//! Reading spend records: how the filters of `/spend/logs` and of the console's logs page
//! are read from text, once for both.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use tollgate_store::StatusRange;

use crate::error::ApiError;
use crate::ops::input::bad;

/// The outcomes a spend record can have, as stored (see [`crate::record::Outcome`]).
pub const OUTCOMES: [&str; 5] =
    ["success", "upstream_failed", "stream_failed", "client_disconnected", "refused"];

/// LiteLLM's `status_filter` word for every outcome but success.
pub const FAILURE: &str = "failure";

/// The outcomes `s` names: one of [`OUTCOMES`], or [`FAILURE`] for all but `success`.
pub fn outcomes(param: &str, s: &str) -> Result<Vec<String>, ApiError> {
    let s = s.trim();
    if s == FAILURE {
        return Ok(OUTCOMES.iter().filter(|o| **o != "success").map(|o| (*o).to_owned()).collect());
    }
    match OUTCOMES.iter().find(|o| **o == s) {
        Some(o) => Ok(vec![(*o).to_owned()]),
        None => Err(bad(param, &format!("must be {FAILURE} or one of {}", OUTCOMES.join(", ")))),
    }
}

/// An HTTP status (`429`; `0` is a client that went away) or a class (`4xx`, `5xx`).
pub fn status(param: &str, s: &str) -> Result<StatusRange, ApiError> {
    let s = s.trim().to_ascii_lowercase();
    let refused = || bad(param, "must be a status such as 429, or a class such as 4xx or 5xx");
    if let Some(class) = s.strip_suffix("xx") {
        let c: i32 = class.parse().map_err(|_| refused())?;
        return if (1..=5).contains(&c) && class.len() == 1 {
            Ok(StatusRange { min: c * 100, max: c * 100 + 99 })
        } else {
            Err(refused())
        };
    }
    match s.parse::<i32>() {
        Ok(n) if n == 0 || (100..=599).contains(&n) => Ok(StatusRange { min: n, max: n }),
        _ => Err(refused()),
    }
}

/// A time: RFC 3339, `YYYY-MM-DDTHH:MM[:SS]` in UTC (what a browser's date-time field
/// sends), or `YYYY-MM-DD` — the start of that day, or with `end_of_day` the start of the
/// next, so an end date includes its whole day.
pub fn time(param: &str, s: &str, end_of_day: bool) -> Result<DateTime<Utc>, ApiError> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in
        ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M"]
    {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Ok(t.and_utc());
        }
    }
    let day = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        bad(param, "must be a date (YYYY-MM-DD), a UTC date and time, or an RFC 3339 time")
    })?;
    let day = if end_of_day { day.succ_opt().unwrap_or(day) } else { day };
    Ok(day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
}

/// `Err` naming `end_param` unless the range ends after it starts.
pub fn check_range(
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    end_param: &str,
) -> Result<(), ApiError> {
    match (start, end) {
        (Some(s), Some(e)) if e <= s => Err(bad(end_param, "must be after the start")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_keep_their_fraction_of_a_second() {
        let t = super::time("from", "2026-11-21T10:30:00.5", false).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-21T10:30:00.500+00:00");
        let t = super::time("from", "2026-11-21T10:30:07", false).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-21T10:30:07+00:00");
    }

    use super::*;
    use crate::record::Outcome;

    #[test]
    fn every_recorded_outcome_can_be_filtered_on() {
        let all = [
            Outcome::Success,
            Outcome::UpstreamFailed("x"),
            Outcome::StreamFailed("x"),
            Outcome::ClientDisconnected,
            Outcome::Refused,
        ];
        for o in all {
            // Exhaustive: a new outcome fails to compile here until it is listed.
            match o {
                Outcome::Success
                | Outcome::UpstreamFailed(_)
                | Outcome::StreamFailed(_)
                | Outcome::ClientDisconnected
                | Outcome::Refused => {}
            }
            assert!(OUTCOMES.contains(&o.as_str()), "{} is not offered", o.as_str());
        }
        assert_eq!(OUTCOMES.len(), all.len());
    }

    #[test]
    fn outcomes_and_failure() {
        assert_eq!(outcomes("o", "refused").unwrap(), ["refused"]);
        let failed = outcomes("o", "failure").unwrap();
        assert_eq!(failed.len(), 4);
        assert!(!failed.iter().any(|o| o == "success"));
        let e = outcomes("outcome", "boom").unwrap_err();
        assert_eq!(e.param(), Some("outcome"));
    }

    #[test]
    fn statuses_and_classes() {
        assert_eq!(status("s", "429").unwrap(), StatusRange { min: 429, max: 429 });
        assert_eq!(status("s", "5XX").unwrap(), StatusRange { min: 500, max: 599 });
        assert_eq!(status("s", "0").unwrap(), StatusRange { min: 0, max: 0 });
        for wrong in ["", "6xx", "xx", "42", "1000", "-1", "45xx", "4x"] {
            assert_eq!(status("status", wrong).unwrap_err().param(), Some("status"), "{wrong}");
        }
    }

    #[test]
    fn times_days_and_browser_date_times() {
        let t = |s: &str, end| time("t", s, end).unwrap().to_rfc3339();
        assert_eq!(t("2026-11-21", false), "2026-11-21T00:00:00+00:00");
        assert_eq!(t("2026-11-21", true), "2026-11-22T00:00:00+00:00");
        assert_eq!(t("2026-11-21T10:30", true), "2026-11-21T10:30:00+00:00");
        assert_eq!(t("2026-11-21T10:30:00+01:00", false), "2026-11-21T09:30:00+00:00");
        assert!(time("t", "yesterday", false).is_err());
        let (a, b) = (time("a", "2026-11-21", false).ok(), time("b", "2026-11-20", true).ok());
        assert!(check_range(a, b, "b").is_err());
        assert!(check_range(b, a, "b").is_err(), "an empty range is refused too");
        assert!(check_range(a, None, "b").is_ok());
    }
}
