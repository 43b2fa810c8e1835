//! Budget periods: `30s`, `30m`, `24h`, `30d`, `1w` — LiteLLM's notation.

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};

use crate::StoreError;

/// Longest accepted period (about ten years): keeps `now + period` far from chrono's limits.
const MAX_SECONDS: i64 = 10 * 366 * 86_400;

/// Parses a budget period such as `30s`, `30m`, `24h`, `30d` or `1w`: a whole number above
/// zero followed by one unit letter (surrounding spaces are ignored).
///
/// # Errors
///
/// [`StoreError::Invalid`] naming the value and what is expected.
pub fn parse_budget_duration(s: &str) -> Result<Duration, StoreError> {
    let text = s.trim();
    let invalid = |why: &str| {
        StoreError::Invalid(format!(
            "budget duration `{text}` {why}; expected a whole number and a unit s, m, h, d or w \
             (e.g. `30s`, `30m`, `24h`, `30d`)"
        ))
    };
    let Some(unit) = text.chars().last() else {
        return Err(StoreError::Invalid(
            "budget duration is empty; expected e.g. `30s`, `30m`, `24h`, `30d`".to_owned(),
        ));
    };
    let seconds_per_unit: i64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return Err(invalid("has no known unit")),
    };
    let digits = &text[..text.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("does not start with a whole number"));
    }
    let count: i64 = digits.parse().map_err(|_| invalid("is too long"))?;
    if count == 0 {
        return Err(invalid("is zero"));
    }
    match count.checked_mul(seconds_per_unit) {
        Some(seconds) if seconds <= MAX_SECONDS => Ok(Duration::seconds(seconds)),
        _ => Err(invalid("is longer than ten years")),
    }
}

/// The first instant of the calendar month after `now`'s, in UTC: when Copilot's premium
/// allowance resets, and so when a premium budget without a period of its own does.
pub fn next_month_start(now: DateTime<Utc>) -> DateTime<Utc> {
    let (year, month) =
        if now.month() == 12 { (now.year() + 1, 1) } else { (now.year(), now.month() + 1) };
    Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0).single().unwrap_or(now + Duration::days(31))
}

/// When a premium period begun at `now` ends: after `duration` when there is one, else at
/// the next month's start. Every key, user and team has a premium period, budget or not, so
/// the premium requests it shows are always this period's.
///
/// # Errors
///
/// [`StoreError::Invalid`] for a duration [`parse_budget_duration`] refuses.
pub fn premium_reset_after(
    duration: Option<&str>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, StoreError> {
    match duration {
        Some(period) => Ok(now + parse_budget_duration(period)?),
        None => Ok(next_month_start(now)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_each_unit() {
        assert_eq!(parse_budget_duration("30s").unwrap(), Duration::seconds(30));
        assert_eq!(parse_budget_duration("30m").unwrap(), Duration::minutes(30));
        assert_eq!(parse_budget_duration("24h").unwrap(), Duration::hours(24));
        assert_eq!(parse_budget_duration(" 30d ").unwrap(), Duration::days(30));
        assert_eq!(parse_budget_duration("1w").unwrap(), Duration::days(7));
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in ["", "d", "0d", "-1d", "1.5h", "30", "30x", "1mo", "h1", "9999999999999999999d"]
        {
            let err = parse_budget_duration(bad).unwrap_err();
            assert!(matches!(err, StoreError::Invalid(_)), "{bad}: {err}");
        }
        let msg = parse_budget_duration("30x").unwrap_err().to_string();
        assert!(msg.contains("`30x`") && msg.contains("30d"), "{msg}");
    }

    #[test]
    fn premium_periods_default_to_the_calendar_month() {
        let at = |y, m, d, h| Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap();
        assert_eq!(next_month_start(at(2026, 12, 2, 17)), at(2027, 1, 1, 0));
        assert_eq!(next_month_start(at(2026, 1, 31, 23)), at(2026, 2, 1, 0));
        assert_eq!(next_month_start(at(2026, 3, 1, 0)), at(2026, 4, 1, 0));
        let now = at(2026, 12, 2, 17);
        assert_eq!(premium_reset_after(None, now).unwrap(), at(2027, 1, 1, 0));
        assert_eq!(premium_reset_after(Some("7d"), now).unwrap(), at(2026, 12, 9, 17));
        assert!(premium_reset_after(Some("7x"), now).is_err());
    }
}
