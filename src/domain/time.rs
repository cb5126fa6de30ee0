//! Instants as the domain keeps them (unix milliseconds) and as the API writes them (RFC 3339):
//! the crate's one date path. `chrono` does every calendar step; this module only decides which
//! texts we accept and which shape we write.

use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::validation::FieldError;

const SECONDS_PER_MINUTE: i32 = 60;
const SECONDS_PER_HOUR: i32 = 60 * SECONDS_PER_MINUTE;

/// Unix milliseconds as a `chrono` UTC date-time, for code that needs a calendar (token clocks,
/// provider date formats). Beyond `chrono`'s ±262,000 years, which no clock reaches, it answers
/// the epoch rather than failing.
pub fn utc(unix_ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(unix_ms).unwrap_or(DateTime::UNIX_EPOCH)
}

/// An instant in UTC with millisecond precision, within the years RFC 3339 can write
/// (0000–9999). Stored as unix milliseconds; written as `2025-06-01T12:30:00.000Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// 0000-01-01T00:00:00.000Z
    pub const MIN: Self = Self(-62_167_219_200_000);
    /// 9999-12-31T23:59:59.999Z
    pub const MAX: Self = Self(253_402_300_799_999);

    pub fn from_unix_ms(unix_ms: i64) -> Option<Self> {
        (Self::MIN.0..=Self::MAX.0)
            .contains(&unix_ms)
            .then_some(Self(unix_ms))
    }

    pub fn unix_ms(self) -> i64 {
        self.0
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, the RFC 3339 `date-time`.
    ///
    /// Accepts lowercase `t`/`z` (RFC 3339 allows them) and any offset, converted to UTC.
    /// Fractions beyond milliseconds are truncated. Refuses leap seconds (`:60`): unix time
    /// cannot represent them and no sale window needs one.
    ///
    /// The shape is read here rather than by `chrono`'s RFC 3339 parser because that parser
    /// is more lenient than our contract (a space for `T`, leap seconds, any fraction length);
    /// `chrono` still checks the calendar (month lengths, leap years) and does the arithmetic.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let invalid = || {
            FieldError::new(
                "timestamp",
                "must be an RFC 3339 date-time such as 2025-06-01T19:30:00Z",
            )
        };
        let bytes = raw.trim().as_bytes();
        let digits = |range: std::ops::Range<usize>| -> Option<u32> {
            let slice = bytes.get(range)?;
            if slice.is_empty() || !slice.iter().all(u8::is_ascii_digit) {
                return None;
            }
            Some(slice.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')))
        };
        let byte_is =
            |at: usize, options: &[u8]| bytes.get(at).is_some_and(|b| options.contains(b));

        let shape_ok = byte_is(4, b"-")
            && byte_is(7, b"-")
            && byte_is(10, b"Tt")
            && byte_is(13, b":")
            && byte_is(16, b":");
        if !shape_ok {
            return Err(invalid());
        }
        let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
            digits(0..4),
            digits(5..7),
            digits(8..10),
            digits(11..13),
            digits(14..16),
            digits(17..19),
        ) else {
            return Err(invalid());
        };

        let mut at = 19;
        let mut millis = 0u32;
        if byte_is(at, b".") {
            let start = at + 1;
            let mut end = start;
            while bytes.get(end).is_some_and(u8::is_ascii_digit) {
                end += 1;
            }
            if end == start || end - start > 9 {
                return Err(invalid());
            }
            // Pad or truncate the fraction to exactly three digits.
            millis = (0..3).fold(0u32, |acc, i| {
                let digit = bytes
                    .get(start + i)
                    .filter(|_| start + i < end)
                    .map_or(0, |d| u32::from(d - b'0'));
                acc * 10 + digit
            });
            at = end;
        }

        let offset_seconds = match bytes.get(at) {
            Some(b'Z' | b'z') if bytes.len() == at + 1 => 0,
            Some(sign @ (b'+' | b'-')) if bytes.len() == at + 6 && byte_is(at + 3, b":") => {
                let (Some(offset_hours), Some(offset_minutes)) =
                    (digits(at + 1..at + 3), digits(at + 4..at + 6))
                else {
                    return Err(invalid());
                };
                if offset_hours > 23 || offset_minutes > 59 {
                    return Err(invalid());
                }
                // Both are two digits, so the casts cannot truncate.
                let magnitude = offset_hours as i32 * SECONDS_PER_HOUR
                    + offset_minutes as i32 * SECONDS_PER_MINUTE;
                if *sign == b'+' {
                    magnitude
                } else {
                    -magnitude
                }
            }
            _ => return Err(invalid()),
        };

        // A four-digit year always fits an i32; `chrono` refuses a second of 60 (the
        // millisecond count is what it uses for leap seconds, and ours is at most 999).
        let date = NaiveDate::from_ymd_opt(year as i32, month, day).ok_or_else(invalid)?;
        let time =
            NaiveTime::from_hms_milli_opt(hour, minute, second, millis).ok_or_else(invalid)?;
        let offset = FixedOffset::east_opt(offset_seconds).ok_or_else(invalid)?;
        let instant = date
            .and_time(time)
            .and_local_timezone(offset)
            .single()
            .ok_or_else(invalid)?;
        Self::from_unix_ms(instant.timestamp_millis()).ok_or_else(invalid)
    }

    /// Always UTC with exactly three fraction digits, the shape of JavaScript's
    /// `toISOString()`, so stored strings sort in time order.
    pub fn to_rfc3339(self) -> String {
        utc(self.0).to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(|error| serde::de::Error::custom(error.message))
    }
}

/// Parses an RFC 3339 date-time to unix milliseconds (see [`Timestamp::parse`]).
pub fn parse_rfc3339(raw: &str) -> Result<i64, FieldError> {
    Timestamp::parse(raw).map(Timestamp::unix_ms)
}

/// Formats unix milliseconds as RFC 3339 UTC. Values outside years 0000–9999 cannot come from
/// a parse or a real clock; they are clamped to the nearest bound rather than failing.
pub fn format_rfc3339(unix_ms: i64) -> String {
    Timestamp(unix_ms.clamp(Timestamp::MIN.0, Timestamp::MAX.0)).to_rfc3339()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_instants_parse_to_their_unix_milliseconds() {
        for (text, ms) in [
            ("1970-01-01T00:00:00Z", 0),
            ("1970-01-01T00:00:00.001Z", 1),
            ("1969-12-31T23:59:59.999Z", -1),
            ("2024-02-29T12:34:56.789Z", 1_709_210_096_789),
            ("2000-02-29T00:00:00Z", 951_782_400_000),
            ("1900-03-01T00:00:00Z", -2_203_891_200_000),
            ("1600-02-29T00:00:00Z", -11_670_998_400_000),
            ("0000-01-01T00:00:00Z", -62_167_219_200_000),
            ("9999-12-31T23:59:59.999Z", 253_402_300_799_999),
            ("2025-06-01T19:30:00+07:00", 1_748_781_000_000),
            ("2025-06-01T12:30:00-00:00", 1_748_781_000_000),
            ("2025-06-01t12:30:00z", 1_748_781_000_000),
            ("2025-06-01T07:00:00-05:30", 1_748_781_000_000),
            ("2025-06-01T12:30:00.5Z", 1_748_781_000_500),
            ("2025-06-01T12:30:00.123456789Z", 1_748_781_000_123),
            (" 2025-06-01T12:30:00Z ", 1_748_781_000_000),
        ] {
            assert_eq!(parse_rfc3339(text), Ok(ms), "{text}");
        }
    }

    #[test]
    fn garbage_and_impossible_dates_are_refused() {
        for bad in [
            "",
            "now",
            "2025-06-01",
            "2025-06-01T12:30Z",
            "2025-06-01T12:30:00",
            "2025-06-01 12:30:00Z",
            "2025-6-01T12:30:00Z",
            "2025-06-01T12:30:00.Z",
            "2025-06-01T12:30:00.1234567891Z",
            "2025-13-01T12:30:00Z",
            "2025-00-01T12:30:00Z",
            "2025-02-29T12:30:00Z",
            "1900-02-29T12:30:00Z",
            "2025-04-31T12:30:00Z",
            "2025-06-00T12:30:00Z",
            "2025-06-01T24:00:00Z",
            "2025-06-01T12:60:00Z",
            "2025-06-01T23:59:60Z",
            "2025-06-01T12:30:00+24:00",
            "2025-06-01T12:30:00+07:60",
            "2025-06-01T12:30:00+0700",
            "2025-06-01T12:30:00+07:00junk",
            "2025-06-01T12:30:00ZZ",
            "+2025-06-01T12:30:00Z",
            "２０２５-06-01T12:30:00Z",
            "0000-01-01T00:00:00+01:00",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn timestamps_format_as_utc_with_milliseconds() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            format_rfc3339(1_709_210_096_789),
            "2024-02-29T12:34:56.789Z"
        );
        assert_eq!(format_rfc3339(i64::MIN), "0000-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339(i64::MAX), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn a_timestamp_round_trips_through_json() {
        let at = Timestamp::from_unix_ms(1_748_781_000_000);
        let json = at.map(|t| serde_json::to_string(&t).unwrap_or_default());
        assert_eq!(json.as_deref(), Some("\"2025-06-01T12:30:00.000Z\""));
        let back: Option<Timestamp> = serde_json::from_str("\"2025-06-01T19:30:00+07:00\"").ok();
        assert_eq!(back, at);
    }

    proptest! {
        #[test]
        fn every_representable_instant_round_trips(ms in Timestamp::MIN.0..=Timestamp::MAX.0) {
            let text = format_rfc3339(ms);
            prop_assert_eq!(parse_rfc3339(&text), Ok(ms));
        }

        #[test]
        fn formatted_timestamps_sort_like_their_instants(
            a in Timestamp::MIN.0..=Timestamp::MAX.0,
            b in Timestamp::MIN.0..=Timestamp::MAX.0,
        ) {
            prop_assert_eq!(a.cmp(&b), format_rfc3339(a).cmp(&format_rfc3339(b)));
        }

        #[test]
        fn an_offset_names_the_same_instant_as_utc(
            ms in 0i64..4_102_444_800_000,
            offset_minutes in -(23 * 60 + 59)..=(23 * 60 + 59i64),
        ) {
            // Write the UTC instant in local time at the offset, then parse it back.
            let local = format_rfc3339(ms + offset_minutes * 60_000);
            let sign = if offset_minutes < 0 { '-' } else { '+' };
            let magnitude = offset_minutes.abs();
            let text = format!(
                "{}{sign}{:02}:{:02}",
                &local[..local.len() - 1],
                magnitude / 60,
                magnitude % 60
            );
            prop_assert_eq!(parse_rfc3339(&text), Ok(ms));
        }
    }
}
