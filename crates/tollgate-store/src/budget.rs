//! Budget periods: `30s`, `30m`, `24h`, `30d`, `1w` — LiteLLM's notation.

use chrono::Duration;

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
}
