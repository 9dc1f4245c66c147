//! Prometheus' duration format, as used in the configuration file and the
//! HTTP API: `1y2w3d4h5m6s7ms`, or `0`.
//!
//! Parsing follows Prometheus (`model.ParseDuration`): each unit at most once,
//! units in descending order (`y w d h m s ms`), no fractions and no sign, and
//! the total must fit Go's `time.Duration` (about 292 years), so configs that
//! Prometheus rejects are rejected here too, with the same messages.
//! Formatting follows Prometheus' `Duration.String()`: `1m30s`, `1h`, `0s`;
//! years and weeks are only used when they divide the duration exactly
//! (`90d`, not `12w6d`).
//!
//! This file depends on std and `thiserror` only, so that the `config` crate
//! can compile it too until `model` exports it.

use std::fmt;
use std::str::FromStr;

const MILLIS_PER_SECOND: u64 = 1000;
const MILLIS_PER_MINUTE: u64 = 60 * MILLIS_PER_SECOND;
const MILLIS_PER_HOUR: u64 = 60 * MILLIS_PER_MINUTE;
const MILLIS_PER_DAY: u64 = 24 * MILLIS_PER_HOUR;
const MILLIS_PER_WEEK: u64 = 7 * MILLIS_PER_DAY;
const MILLIS_PER_YEAR: u64 = 365 * MILLIS_PER_DAY;

/// The largest duration Prometheus accepts: Go's `time.Duration` counts
/// nanoseconds in an `i64`.
const MAX_NANOS: u128 = i64::MAX as u128;
const NANOS_PER_MILLI: u128 = 1_000_000;

/// Units in the order they must appear, with their length in milliseconds.
const UNITS: [(&str, u64); 7] = [
    ("y", MILLIS_PER_YEAR),
    ("w", MILLIS_PER_WEEK),
    ("d", MILLIS_PER_DAY),
    ("h", MILLIS_PER_HOUR),
    ("m", MILLIS_PER_MINUTE),
    ("s", MILLIS_PER_SECOND),
    ("ms", 1),
];

/// A non-negative span of time with millisecond precision, written in
/// Prometheus' duration format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    millis: u64,
}

/// Why a string is not a Prometheus duration. The messages are Prometheus'.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseDurationError {
    #[error("empty duration string")]
    Empty,
    #[error("not a valid duration string: {0:?}")]
    Invalid(String),
    #[error("unknown unit {unit:?} in duration {input:?}")]
    UnknownUnit { unit: String, input: String },
    #[error("duration out of range")]
    OutOfRange,
}

impl Duration {
    pub const ZERO: Duration = Duration { millis: 0 };

    pub const fn from_millis(millis: u64) -> Duration {
        Duration { millis }
    }

    pub const fn from_secs(secs: u64) -> Duration {
        Duration {
            millis: secs.saturating_mul(MILLIS_PER_SECOND),
        }
    }

    pub const fn from_mins(mins: u64) -> Duration {
        Duration {
            millis: mins.saturating_mul(MILLIS_PER_MINUTE),
        }
    }

    pub const fn as_millis(self) -> u64 {
        self.millis
    }

    pub const fn is_zero(self) -> bool {
        self.millis == 0
    }

    pub const fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.millis)
    }

    /// Parses Prometheus' duration format; see the module documentation.
    pub fn parse(input: &str) -> Result<Duration, ParseDurationError> {
        match input {
            // Zero is the one number allowed without a unit.
            "0" => return Ok(Duration::ZERO),
            "" => return Err(ParseDurationError::Empty),
            _ => {}
        }
        let invalid = || ParseDurationError::Invalid(input.to_owned());
        let mut rest = input;
        let mut total_nanos: u128 = 0;
        // Index into UNITS of the last unit seen; the next one must come later.
        let mut next_unit_index = 0;
        while !rest.is_empty() {
            let digits_end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits_end == 0 {
                return Err(invalid());
            }
            let value: u64 = rest[..digits_end].parse().map_err(|_| invalid())?;
            rest = &rest[digits_end..];

            let unit_end = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            if unit_end == 0 {
                return Err(invalid());
            }
            let unit = &rest[..unit_end];
            rest = &rest[unit_end..];
            let Some(unit_index) = UNITS.iter().position(|(name, _)| *name == unit) else {
                return Err(ParseDurationError::UnknownUnit {
                    unit: unit.to_owned(),
                    input: input.to_owned(),
                });
            };
            if unit_index < next_unit_index {
                return Err(invalid());
            }
            next_unit_index = unit_index + 1;

            let unit_nanos = u128::from(UNITS[unit_index].1) * NANOS_PER_MILLI;
            total_nanos += u128::from(value) * unit_nanos;
            if total_nanos > MAX_NANOS {
                return Err(ParseDurationError::OutOfRange);
            }
        }
        let millis = total_nanos / NANOS_PER_MILLI;
        Ok(Duration {
            millis: u64::try_from(millis).map_err(|_| ParseDurationError::OutOfRange)?,
        })
    }
}

impl FromStr for Duration {
    type Err = ParseDurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Duration::parse(s)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut remaining = self.millis;
        if remaining == 0 {
            return f.write_str("0s");
        }
        for (name, unit_millis) in UNITS {
            // Years and weeks only when exact: "90d" reads better than "12w6d".
            let exact_only = unit_millis >= MILLIS_PER_WEEK;
            if exact_only && !remaining.is_multiple_of(unit_millis) {
                continue;
            }
            let count = remaining / unit_millis;
            if count > 0 {
                write!(f, "{count}{name}")?;
                remaining -= count * unit_millis;
            }
        }
        Ok(())
    }
}

impl From<Duration> for std::time::Duration {
    fn from(duration: Duration) -> Self {
        duration.as_std()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<u64, ParseDurationError> {
        Duration::parse(s).map(Duration::as_millis)
    }

    #[test]
    fn parses_every_unit_in_order() {
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse("0s"), Ok(0));
        assert_eq!(parse("7ms"), Ok(7));
        assert_eq!(parse("90s"), Ok(90_000));
        assert_eq!(parse("1m30s"), Ok(90_000));
        assert_eq!(parse("1h"), Ok(3_600_000));
        assert_eq!(parse("2d"), Ok(2 * MILLIS_PER_DAY));
        assert_eq!(
            parse("1y2w3d4h5m6s7ms"),
            Ok(MILLIS_PER_YEAR
                + 2 * MILLIS_PER_WEEK
                + 3 * MILLIS_PER_DAY
                + 4 * MILLIS_PER_HOUR
                + 5 * MILLIS_PER_MINUTE
                + 6 * MILLIS_PER_SECOND
                + 7)
        );
        assert_eq!(parse("0001s"), Ok(1000));
    }

    #[test]
    fn rejects_what_prometheus_rejects() {
        let invalid = |s: &str| Err(ParseDurationError::Invalid(s.to_owned()));
        assert_eq!(parse(""), Err(ParseDurationError::Empty));
        assert_eq!(parse("1"), invalid("1"));
        assert_eq!(parse("s"), invalid("s"));
        assert_eq!(parse("-1s"), invalid("-1s"));
        assert_eq!(parse("+1s"), invalid("+1s"));
        assert_eq!(parse(" 1s"), invalid(" 1s"));
        assert_eq!(parse("1m1h"), invalid("1m1h"));
        assert_eq!(parse("1s1s"), invalid("1s1s"));
        assert_eq!(parse("1s1ms1s"), invalid("1s1ms1s"));
        assert_eq!(
            parse("99999999999999999999s"),
            invalid("99999999999999999999s")
        );
        assert_eq!(
            parse("1.5h"),
            Err(ParseDurationError::UnknownUnit {
                unit: ".".to_owned(),
                input: "1.5h".to_owned()
            })
        );
        assert_eq!(
            parse("5mm"),
            Err(ParseDurationError::UnknownUnit {
                unit: "mm".to_owned(),
                input: "5mm".to_owned()
            })
        );
        assert_eq!(
            parse("3M"),
            Err(ParseDurationError::UnknownUnit {
                unit: "M".to_owned(),
                input: "3M".to_owned()
            })
        );
    }

    #[test]
    fn rejects_overflow_of_go_time_duration() {
        // 292y is below 2^63 ns, 293y is above.
        assert!(parse("292y").is_ok());
        assert_eq!(parse("293y"), Err(ParseDurationError::OutOfRange));
        assert_eq!(parse("106751d23h47m16s854ms"), Ok(9_223_372_036_854));
        assert_eq!(
            parse("106751d23h47m16s855ms"),
            Err(ParseDurationError::OutOfRange)
        );
        assert_eq!(
            parse("18446744073709551615ms"),
            Err(ParseDurationError::OutOfRange)
        );
    }

    #[test]
    fn error_messages_match_prometheus() {
        let message = |s: &str| Duration::parse(s).map_err(|e| e.to_string());
        assert_eq!(
            message("1x"),
            Err(r#"unknown unit "x" in duration "1x""#.to_owned())
        );
        assert_eq!(
            message("abc"),
            Err(r#"not a valid duration string: "abc""#.to_owned())
        );
        assert_eq!(message("300y"), Err("duration out of range".to_owned()));
        assert_eq!(message(""), Err("empty duration string".to_owned()));
    }

    #[test]
    fn formats_like_prometheus() {
        let format = |millis: u64| Duration::from_millis(millis).to_string();
        assert_eq!(format(0), "0s");
        assert_eq!(format(1), "1ms");
        assert_eq!(format(1500), "1s500ms");
        assert_eq!(format(90_000), "1m30s");
        assert_eq!(format(MILLIS_PER_HOUR), "1h");
        assert_eq!(format(MILLIS_PER_DAY + MILLIS_PER_HOUR), "1d1h");
        assert_eq!(format(MILLIS_PER_WEEK), "1w");
        assert_eq!(format(14 * MILLIS_PER_DAY), "2w");
        assert_eq!(format(90 * MILLIS_PER_DAY), "90d");
        assert_eq!(format(MILLIS_PER_YEAR), "1y");
        assert_eq!(format(366 * MILLIS_PER_DAY), "366d");
        assert_eq!(format(MILLIS_PER_YEAR + MILLIS_PER_WEEK), "372d");
        assert_eq!(format(2 * MILLIS_PER_YEAR), "2y");
    }

    #[test]
    fn formatting_round_trips() {
        for text in [
            "0s",
            "1ms",
            "15s",
            "1m30s",
            "2h",
            "90d",
            "1y",
            "3w",
            "1d2h3m4s5ms",
        ] {
            let parsed = Duration::parse(text).map(|d| d.to_string());
            assert_eq!(parsed.as_deref(), Ok(text));
        }
    }

    #[test]
    fn converts_to_std() {
        assert_eq!(
            std::time::Duration::from(Duration::from_secs(90)),
            std::time::Duration::from_secs(90)
        );
        assert_eq!(Duration::from_mins(2), Duration::from_secs(120));
    }
}
