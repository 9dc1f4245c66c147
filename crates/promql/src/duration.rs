//! Duration literals as PromQL writes them (`5m`, `1h30m`, `1y2w3d4h5m6s7ms`): the same format
//! as everywhere else in Prometheus, so this module adapts [`model::duration`] to the parser's
//! needs (milliseconds, `String` errors, signed values for printing).

use model::duration::Duration;

/// Parses a duration literal into milliseconds. The error is Prometheus' message.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    Duration::parse(text)
        .map(Duration::as_millis)
        .map_err(|e| e.to_string())
}

/// Formats milliseconds as Prometheus does (`1h30m`, `0s`); negative values get a `-`.
pub fn format_duration(ms: i64) -> String {
    let d = Duration::from_millis(ms.unsigned_abs());
    if ms < 0 {
        format!("-{d}")
    } else {
        d.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 24 * 3600 * 1000;

    #[test]
    fn parses_units_in_order() {
        assert_eq!(parse_duration("5m"), Ok(300_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("10ms"), Ok(10));
        assert_eq!(
            parse_duration("1y2w3d4h5m6s7ms"),
            Ok((365 + 14 + 3) as u64 * DAY as u64 + 4 * 3_600_000 + 306_007)
        );
        assert_eq!(
            parse_duration("30m1h"),
            Err("not a valid duration string: \"30m1h\"".into())
        );
        assert!(parse_duration("1.5m").is_err());
        assert!(parse_duration("1m1m").is_err());
        assert_eq!(parse_duration("300y"), Err("duration out of range".into()));
    }

    #[test]
    fn formats_like_prometheus() {
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(300_000), "5m");
        assert_eq!(format_duration(5_400_000), "1h30m");
        assert_eq!(format_duration(90 * DAY), "90d");
        assert_eq!(format_duration(14 * DAY), "2w");
        assert_eq!(format_duration(1500), "1s500ms");
        assert_eq!(format_duration(-300_000), "-5m");
        assert_eq!(format_duration(365 * DAY), "1y");
    }
}
