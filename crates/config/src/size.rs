//! Byte sizes such as `body_size_limit: 100MB`, parsed like Prometheus
//! (which uses `units.ParseBase2Bytes`): powers of two, `KB` and `KiB` both
//! meaning 1024 bytes, a unit required except for `0`, fractions and unit
//! sequences (`1.5MB`, `1MB512KB`) allowed. The messages are Prometheus'.

/// Units with the `iB` suffix, tried first, as Prometheus does.
const BINARY_UNITS: [(&str, f64); 7] = [
    ("B", 1.0),
    ("KiB", 1024.0),
    ("MiB", 1024.0 * 1024.0),
    ("GiB", 1024.0 * 1024.0 * 1024.0),
    ("TiB", 1024.0 * 1024.0 * 1024.0 * 1024.0),
    ("PiB", 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0),
    ("EiB", 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0),
];

/// The older spellings, also powers of two.
const LEGACY_UNITS: [(&str, f64); 7] = [
    ("B", 1.0),
    ("KB", 1024.0),
    ("MB", 1024.0 * 1024.0),
    ("GB", 1024.0 * 1024.0 * 1024.0),
    ("TB", 1024.0 * 1024.0 * 1024.0 * 1024.0),
    ("PB", 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0),
    ("EB", 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0),
];

/// Parses a size in bytes; see the module documentation.
pub fn parse_size(text: &str) -> Result<u64, String> {
    parse_with_units(text, &BINARY_UNITS).or_else(|_| parse_with_units(text, &LEGACY_UNITS))
}

fn parse_with_units(original: &str, units: &[(&str, f64)]) -> Result<u64, String> {
    let invalid = || format!("units: invalid {original}");
    let mut rest = original;
    let negative = rest.starts_with('-');
    if let Some(stripped) = rest.strip_prefix(['-', '+']) {
        rest = stripped;
    }
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total = 0.0_f64;
    while !rest.is_empty() {
        if !rest.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return Err(invalid());
        }
        let integer_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let mut amount: f64 = if integer_end == 0 {
            0.0
        } else {
            rest[..integer_end].parse().map_err(|_| invalid())?
        };
        let had_integer = integer_end > 0;
        rest = &rest[integer_end..];
        let mut had_fraction = false;
        if let Some(after_dot) = rest.strip_prefix('.') {
            let fraction_end = after_dot
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after_dot.len());
            if fraction_end > 0 {
                let fraction: f64 = format!("0.{}", &after_dot[..fraction_end])
                    .parse()
                    .map_err(|_| invalid())?;
                amount += fraction;
                had_fraction = true;
            }
            rest = &after_dot[fraction_end..];
        }
        if !had_integer && !had_fraction {
            return Err(invalid());
        }
        let unit_end = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let Some((_, multiplier)) = units.iter().find(|(name, _)| *name == unit) else {
            return Err(format!("units: unknown unit {unit} in {original}"));
        };
        total += amount * multiplier;
    }
    if negative && total > 0.0 {
        return Err(format!("units: negative size {original}"));
    }
    // Prometheus keeps sizes in an int64.
    #[allow(clippy::cast_precision_loss)]
    let max = i64::MAX as f64;
    if total > max {
        return Err("units: overflow parsing unit".to_owned());
    }
    // Truncation of fractional bytes is what Prometheus does.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(total as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_base_two_units() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("0B"), Ok(0));
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size("1KB"), Ok(1024));
        assert_eq!(parse_size("1KiB"), Ok(1024));
        assert_eq!(parse_size("100MB"), Ok(100 * 1024 * 1024));
        assert_eq!(parse_size("2GiB"), Ok(2 * 1024 * 1024 * 1024));
        assert_eq!(parse_size("1.5KB"), Ok(1536));
        assert_eq!(parse_size("1MB512KB"), Ok(1024 * 1024 + 512 * 1024));
    }

    #[test]
    fn rejects_missing_and_unknown_units_like_prometheus() {
        assert_eq!(
            parse_size("100"),
            Err("units: unknown unit  in 100".to_owned())
        );
        assert_eq!(
            parse_size("1kB"),
            Err("units: unknown unit kB in 1kB".to_owned())
        );
        assert_eq!(parse_size(""), Err("units: invalid ".to_owned()));
        assert_eq!(parse_size("MB"), Err("units: invalid MB".to_owned()));
        assert!(parse_size("-1MB").is_err());
        assert!(parse_size("100000EB").is_err());
    }
}
