//! ISO 8601 encodings exactly as the official Python client 2.26.1 writes them.
//!
//! * date-times (`started_at`): UTC, `Z` suffix, microseconds only when non-zero
//!   (`2025-01-19T09:00:00Z`, `2025-01-20T15:32:06.058000Z`), like Python's
//!   `datetime.isoformat()` with `+00:00` replaced by `Z`;
//! * durations (`duration`): `timedelta_to_iso`: `PT0S` for zero, else `P{d}D` then
//!   `T{h}H{m}M{s}[.ffffff]S` with zero components left out and a six-digit fraction
//!   (`PT2M34S`, `P1DT2H3M4.500000S`, `PT1.250000S`);
//! * log timestamps: milliseconds and `Z` (`2025-01-20T15:32:06.058Z`), like the
//!   guide's `isoformat(timespec="milliseconds") + "Z"`.
//!
//! Precision below the microsecond is truncated, as Python has none.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Timelike as _, Utc};

/// Formats a run's or step's `started_at` the way the Python client does.
///
/// ```
/// use chrono::{TimeZone as _, Utc};
/// let t = Utc.with_ymd_and_hms(2025, 1, 19, 9, 0, 0).unwrap();
/// assert_eq!(tofu_upload::iso::format_datetime(&t), "2025-01-19T09:00:00Z");
/// let t = t + chrono::Duration::microseconds(58_000);
/// assert_eq!(tofu_upload::iso::format_datetime(&t), "2025-01-19T09:00:00.058000Z");
/// ```
pub fn format_datetime(dt: &DateTime<Utc>) -> String {
    let micros = dt.nanosecond() % 1_000_000_000 / 1_000;
    let mut out = dt.format("%Y-%m-%dT%H:%M:%S").to_string();
    if micros != 0 {
        // Writing to a String cannot fail.
        let _ = write!(out, ".{micros:06}");
    }
    out.push('Z');
    out
}

/// Formats a log timestamp: UTC, always three fractional digits, `Z`.
///
/// ```
/// use chrono::{TimeZone as _, Utc};
/// let t = Utc.with_ymd_and_hms(2025, 1, 20, 15, 32, 6).unwrap() + chrono::Duration::milliseconds(58);
/// assert_eq!(tofu_upload::iso::format_log_timestamp(&t), "2025-01-20T15:32:06.058Z");
/// ```
pub fn format_log_timestamp(dt: &DateTime<Utc>) -> String {
    dt.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Stamps a naive date-time as UTC without converting it, as the Python client does
/// with a naive `datetime` (`create_run_started_at_naive`).
pub fn naive_as_utc(naive: NaiveDateTime) -> DateTime<Utc> {
    naive.and_utc()
}

/// Formats a duration as the Python client's `timedelta_to_iso`.
///
/// ```
/// use std::time::Duration;
/// use tofu_upload::iso::format_duration;
/// assert_eq!(format_duration(Duration::ZERO), "PT0S");
/// assert_eq!(format_duration(Duration::from_secs(154)), "PT2M34S");
/// assert_eq!(format_duration(Duration::from_millis(1250)), "PT1.250000S");
/// assert_eq!(format_duration(Duration::from_millis(93_784_500)), "P1DT2H3M4.500000S");
/// assert_eq!(format_duration(Duration::from_secs(86_400)), "P1D");
/// ```
pub fn format_duration(d: Duration) -> String {
    let micros = d.subsec_micros();
    let total = d.as_secs();
    if total == 0 && micros == 0 {
        return "PT0S".to_owned();
    }
    let days = total / 86_400;
    let rem = total % 86_400;
    let (hours, minutes, seconds) = (rem / 3_600, rem % 3_600 / 60, rem % 60);
    let mut out = String::from("P");
    if days > 0 {
        let _ = write!(out, "{days}D");
    }
    if hours > 0 || minutes > 0 || seconds > 0 || micros > 0 {
        out.push('T');
        if hours > 0 {
            let _ = write!(out, "{hours}H");
        }
        if minutes > 0 {
            let _ = write!(out, "{minutes}M");
        }
        if seconds > 0 || micros > 0 {
            let _ = write!(out, "{seconds}");
            if micros > 0 {
                let _ = write!(out, ".{micros:06}");
            }
            out.push('S');
        }
    }
    out
}

/// Parses the ISO 8601 durations TofuPilot writes and reads (`PnDTnHnMn.nS`, also
/// weeks `PnW`). Years and months have no fixed length and are refused.
///
/// ```
/// use std::time::Duration;
/// use tofu_upload::iso::parse_duration;
/// assert_eq!(parse_duration("PT23S"), Some(Duration::from_secs(23)));
/// assert_eq!(parse_duration("P1DT2H3M4.500000S"), Some(Duration::from_millis(93_784_500)));
/// assert_eq!(parse_duration("PT0S"), Some(Duration::ZERO));
/// assert_eq!(parse_duration("2 minutes"), None);
/// ```
pub fn parse_duration(s: &str) -> Option<Duration> {
    let rest = s.strip_prefix('P')?;
    if rest.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    let mut in_time = false;
    let mut number = String::new();
    let mut saw_component = false;
    for c in rest.chars() {
        match c {
            '0'..='9' | '.' | ',' => number.push(if c == ',' { '.' } else { c }),
            'T' if !in_time && number.is_empty() => in_time = true,
            unit => {
                if number.is_empty() {
                    return None;
                }
                let seconds_per_unit: f64 = match (in_time, unit) {
                    (false, 'W') => 604_800.0,
                    (false, 'D') => 86_400.0,
                    (true, 'H') => 3_600.0,
                    (true, 'M') => 60.0,
                    (true, 'S') => 1.0,
                    _ => return None,
                };
                if unit == 'S' {
                    total += parse_seconds(&number)?;
                } else {
                    let value: f64 = number.parse().ok()?;
                    total += Duration::try_from_secs_f64(value * seconds_per_unit).ok()?;
                }
                number.clear();
                saw_component = true;
            }
        }
    }
    if !number.is_empty() || !saw_component {
        return None;
    }
    Some(total)
}

/// Exact seconds with up to nanosecond digits, without a float round trip.
fn parse_seconds(text: &str) -> Option<Duration> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let secs: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    if !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
    let nanos: u32 = digits.parse().ok()?;
    Some(Duration::new(secs, nanos))
}

/// Serde helpers for the ISO encodings above (`#[serde(with = ...)]`).
pub(crate) mod serde_iso {
    use super::*;
    use serde::{Deserialize as _, Deserializer, Serializer, de::Error as _};

    pub(crate) fn parse_datetime<E: serde::de::Error>(s: &str) -> Result<DateTime<Utc>, E> {
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            return Ok(dt.with_timezone(&Utc));
        }
        // A naive date-time is read as UTC, as the Python client stamps it.
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .map(naive_as_utc)
            .map_err(|e| E::custom(format!("invalid ISO 8601 date-time {s:?}: {e}")))
    }

    pub(crate) mod datetime_opt {
        use super::*;
        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|s| parse_datetime(&s))
                .transpose()
        }
    }

    pub(crate) mod duration_opt {
        use super::*;
        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Duration>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|s| {
                    parse_duration(&s)
                        .ok_or_else(|| D::Error::custom(format!("invalid ISO 8601 duration {s:?}")))
                })
                .transpose()
        }
    }

    pub(crate) mod log_timestamp {
        use super::*;
        pub(crate) fn serialize<S: Serializer>(v: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(&format_log_timestamp(v))
        }
        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<DateTime<Utc>, D::Error> {
            let s = String::deserialize(d)?;
            parse_datetime(&s)
        }
    }

    /// Lenient reading of date-times in server answers: an unreadable value is `None`
    /// rather than a failed answer.
    pub(crate) mod lenient_datetime {
        use super::*;
        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            let v = Option::<serde_json::Value>::deserialize(d)?;
            Ok(match v {
                Some(serde_json::Value::String(s)) => parse_datetime::<D::Error>(&s).ok(),
                _ => None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn durations_like_timedelta_to_iso() {
        let cases = [
            (Duration::ZERO, "PT0S"),
            (Duration::from_secs(23), "PT23S"),
            (Duration::from_secs(154), "PT2M34S"),
            (Duration::from_secs(3_600), "PT1H"),
            (Duration::from_secs(86_400 * 2), "P2D"),
            (Duration::from_secs(86_400 + 60), "P1DT1M"),
            (Duration::from_micros(1), "PT0.000001S"),
            (Duration::from_nanos(999), "PT0S"),
            (Duration::from_millis(93_784_500), "P1DT2H3M4.500000S"),
        ];
        for (d, want) in cases {
            assert_eq!(format_duration(d), want, "{d:?}");
            if d.subsec_nanos() % 1000 == 0 {
                assert_eq!(parse_duration(want), Some(d), "{want}");
            }
        }
    }

    #[test]
    fn datetimes_like_python_isoformat() {
        let t = Utc.with_ymd_and_hms(2025, 1, 20, 15, 32, 6).unwrap();
        assert_eq!(format_datetime(&t), "2025-01-20T15:32:06Z");
        let t = t + chrono::Duration::nanoseconds(58_000_999);
        assert_eq!(format_datetime(&t), "2025-01-20T15:32:06.058000Z");
        assert_eq!(format_log_timestamp(&t), "2025-01-20T15:32:06.058Z");
        let parsed: DateTime<Utc> =
            serde_iso::parse_datetime::<serde_json::Error>("2025-01-20T16:32:06.058+01:00")
                .unwrap();
        assert_eq!(format_datetime(&parsed), "2025-01-20T15:32:06.058000Z");
    }

    #[test]
    fn bad_durations_are_refused() {
        for s in ["", "P", "PT", "P1Y", "PT1", "P1H", "1S", "PTxS"] {
            assert_eq!(parse_duration(s), None, "{s}");
        }
    }
}
