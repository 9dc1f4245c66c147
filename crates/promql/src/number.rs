//! Number literals: their value as Prometheus computes it, and their printed form.
//!
//! Prometheus reads a number token first as a Go integer literal (base prefix `0x`, a leading
//! `0` meaning octal, `_` between digits) and, when that fails, as a Go float. So `017` is 15,
//! `09` is 9 and `1e400` is an error (out of range), not infinity.

/// Why a number token has no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NumberError {
    Syntax,
    Range,
}

/// The value of a number token (`1`, `0x1F`, `1_000`, `1.5e3`, `.5`, `Inf`, `NaN`).
pub(crate) fn parse_number(text: &str) -> Result<f64, NumberError> {
    if let Some(v) = parse_go_int(text) {
        return Ok(v as f64);
    }
    parse_go_float(text)
}

/// Go's rule for `_` in number literals: each one sits between two digits (a base prefix
/// counts as a digit).
fn underscores_ok(text: &str) -> bool {
    let bytes = text.as_bytes();
    let (hex, mut i) = match bytes {
        [b'0', b'x' | b'X', ..] => (true, 2),
        _ => (false, 0),
    };
    // What came before: 'd' digit (or base prefix), '_' underscore, 'o' other, '^' nothing.
    let mut prev = if i == 2 { b'd' } else { b'^' };
    while i < bytes.len() {
        let c = bytes[i];
        let is_digit = c.is_ascii_digit() || (hex && c.is_ascii_hexdigit());
        if is_digit {
            prev = b'd';
        } else if c == b'_' {
            if prev != b'd' {
                return false;
            }
            prev = b'_';
        } else {
            if prev == b'_' {
                return false;
            }
            prev = b'o';
        }
        i += 1;
    }
    prev != b'_'
}

fn parse_go_int(text: &str) -> Option<i64> {
    if !underscores_ok(text) {
        return None;
    }
    let digits: String = text.chars().filter(|c| *c != '_').collect();
    let (radix, body) = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        (16, hex)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits.as_str())
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    i64::from_str_radix(body, radix).ok()
}

fn parse_go_float(text: &str) -> Result<f64, NumberError> {
    let lower = text.to_ascii_lowercase();
    match lower.as_str() {
        "inf" | "+inf" | "infinity" => return Ok(f64::INFINITY),
        "-inf" | "-infinity" => return Ok(f64::NEG_INFINITY),
        "nan" => return Ok(f64::NAN),
        _ => {}
    }
    // Hexadecimal floats need a `p` exponent in Go, which the lexer never produces.
    if lower.starts_with("0x") || !underscores_ok(text) {
        return Err(NumberError::Syntax);
    }
    let digits: String = text.chars().filter(|c| *c != '_').collect();
    if !digits
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return Err(NumberError::Syntax);
    }
    let value: f64 = digits.parse().map_err(|_| NumberError::Syntax)?;
    if value.is_infinite() {
        return Err(NumberError::Range);
    }
    Ok(value)
}

/// Formats like Go's `strconv.FormatFloat(v, 'f', -1, 64)`: the shortest digits that read back
/// as `v`, never in exponent form; `+Inf`, `-Inf`, `NaN`.
pub(crate) fn format_number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        // Rust's `Display` for f64 is the shortest round-trip form without an exponent.
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_follow_go() {
        assert_eq!(parse_number("1"), Ok(1.0));
        assert_eq!(parse_number("0x1F"), Ok(31.0));
        assert_eq!(parse_number("0x1_F"), Ok(31.0));
        assert_eq!(parse_number("1_000"), Ok(1000.0));
        assert_eq!(parse_number("017"), Ok(15.0));
        assert_eq!(parse_number("09"), Ok(9.0));
        assert_eq!(parse_number("1.5e3"), Ok(1500.0));
        assert_eq!(parse_number(".5"), Ok(0.5));
        assert_eq!(parse_number("5."), Ok(5.0));
        assert_eq!(parse_number("1_000.5"), Ok(1000.5));
        assert_eq!(parse_number("99999999999999999999"), Ok(1e20));
        assert_eq!(parse_number("Inf"), Ok(f64::INFINITY));
        assert!(parse_number("NaN").is_ok_and(f64::is_nan));
        assert_eq!(parse_number("1e400"), Err(NumberError::Range));
        assert_eq!(parse_number("0x"), Err(NumberError::Syntax));
        assert_eq!(parse_number("1__0"), Err(NumberError::Syntax));
        assert_eq!(parse_number("1_"), Err(NumberError::Syntax));
    }

    #[test]
    fn formatting() {
        assert_eq!(format_number(1.0), "1");
        assert_eq!(format_number(-0.25), "-0.25");
        assert_eq!(format_number(1e21), "1000000000000000000000");
        assert_eq!(format_number(1e-7), "0.0000001");
        assert_eq!(format_number(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_number(f64::NAN), "NaN");
    }
}
