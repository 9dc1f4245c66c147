//! Number syntax of the exposition formats, and Prometheus' float formatting.
//!
//! Parsing: the 0.0.4 format takes what Go's `strconv.ParseFloat` takes for decimal input
//! (including `Inf`, `+Inf`, `NaN` in any case); OpenMetrics is stricter: a plain decimal
//! `realnumber`, `[+-]Inf`/`Infinity` in any case, or `NaN`, and never hex, `_`, or other bases.
//!
//! Formatting: Go's `strconv.FormatFloat(v, 'g', -1, 64)` (shortest round-trip digits, exponent
//! form when the decimal exponent is below -4 or at least 6, two-digit exponents), with
//! Prometheus' spellings `+Inf`, `-Inf`, `NaN`.

/// Parses a sample value in the 0.0.4 text format.
pub fn parse_text_value(s: &str) -> Option<f64> {
    if let Some(v) = parse_small_int(s) {
        return Some(v);
    }
    let b = s.as_bytes();
    // Rust accepts forms Go does not ("infinity" is fine in both; "+nan" is not Go). Reject a
    // signed NaN; everything else Rust accepts for decimal input, Go accepts too.
    if b.first().is_some_and(|c| *c == b'+' || *c == b'-') && s[1..].eq_ignore_ascii_case("nan") {
        return None;
    }
    s.parse::<f64>().ok()
}

/// Parses a number in OpenMetrics' strict grammar.
pub fn parse_openmetrics_number(s: &str) -> Option<f64> {
    if let Some(v) = parse_small_int(s) {
        return Some(v);
    }
    let b = s.as_bytes();
    let unsigned = match b.first() {
        Some(b'+' | b'-') => &s[1..],
        _ => s,
    };
    if unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity") {
        return s.parse::<f64>().ok();
    }
    if s.eq_ignore_ascii_case("nan") {
        return Some(f64::NAN);
    }
    if !is_realnumber(unsigned.as_bytes()) {
        return None;
    }
    s.parse::<f64>().ok()
}

/// `1*DIGIT ["." *DIGIT] / "." 1*DIGIT`, then optionally `e [sign] 1*DIGIT` (sign already gone).
fn is_realnumber(b: &[u8]) -> bool {
    let mut i = 0;
    let int_digits = count_digits(&b[i..]);
    i += int_digits;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = count_digits(&b[i..]);
        i += frac_digits;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_digits = count_digits(&b[i..]);
        if exp_digits == 0 {
            return false;
        }
        i += exp_digits;
    }
    i == b.len()
}

fn count_digits(b: &[u8]) -> usize {
    b.iter().take_while(|c| c.is_ascii_digit()).count()
}

/// Fast path for the common case of a short unsigned or negative integer (exact in f64).
#[inline]
fn parse_small_int(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    let mut n: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(c - b'0');
    }
    // Safe: at most 15 digits, below 2^53.
    let v = n as f64;
    Some(if neg { -v } else { v })
}

/// Parses a 0.0.4 timestamp: a signed integer number of milliseconds.
pub fn parse_text_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let digits = match b.first() {
        Some(b'-' | b'+') => &b[1..],
        _ => b,
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.parse::<i64>().ok()
}

/// Appends `v` formatted as Prometheus does (Go's `'g'` with shortest precision).
pub fn format_float(v: f64, out: &mut Vec<u8>) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
        return;
    }
    if v == 0.0 {
        out.extend_from_slice(if v.is_sign_negative() { b"-0" } else { b"0" });
        return;
    }
    // Small integers are the common case (counters): print them directly.
    if v.fract() == 0.0 && v.abs() < 1e6 {
        let mut b = itoa::Buffer::new();
        out.extend_from_slice(b.format(v as i64).as_bytes());
        return;
    }
    let mut rb = ryu::Buffer::new();
    let s = rb.format_finite(v);
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (mantissa, exp10) = match s.find(['e', 'E']) {
        Some(p) => (&s[..p], s[p + 1..].parse::<i32>().unwrap_or(0)),
        None => (s, 0),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(p) => (&mantissa[..p], &mantissa[p + 1..]),
        None => (mantissa, ""),
    };
    let mut digits: Vec<u8> = int_part.bytes().chain(frac_part.bytes()).collect();
    // Value = 0.DIGITS * 10^point.
    let mut point = int_part.len() as i32 + exp10;
    let leading = digits.iter().take_while(|d| **d == b'0').count();
    digits.drain(..leading);
    point -= leading as i32;
    while digits.last() == Some(&b'0') {
        digits.pop();
    }
    if neg {
        out.push(b'-');
    }
    let nd = digits.len() as i32;
    let exp = point - 1;
    if !(-4..6).contains(&exp) {
        out.push(digits[0]);
        if nd > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push(b'0');
        }
        out.extend_from_slice(e.to_string().as_bytes());
    } else if point <= 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', (-point) as usize));
        out.extend_from_slice(&digits);
    } else if point >= nd {
        out.extend_from_slice(&digits);
        out.extend(std::iter::repeat_n(b'0', (point - nd) as usize));
    } else {
        out.extend_from_slice(&digits[..point as usize]);
        out.push(b'.');
        out.extend_from_slice(&digits[point as usize..]);
    }
}

/// `format_float` into a `String`.
pub fn float_to_string(v: f64) -> String {
    let mut out = Vec::with_capacity(24);
    format_float(v, &mut out);
    // Only ASCII is written.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_g_formatting() {
        for (v, want) in [
            (1.0, "1"),
            (-1.0, "-1"),
            (0.1, "0.1"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (0.00012345, "0.00012345"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (1e6, "1e+06"),
            (1e21, "1e+21"),
            (1.5, "1.5"),
            (-2.5e-10, "-2.5e-10"),
            (123456.789, "123456.789"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (0.0, "0"),
            (-0.0, "-0"),
            (100.0, "100"),
            (999999.0, "999999"),
            (12345678901.5, "1.23456789015e+10"),
        ] {
            assert_eq!(float_to_string(v), want, "{v:e}");
        }
    }

    #[test]
    fn formatting_round_trips() {
        let mut x = 0.123456789f64;
        for _ in 0..200 {
            x = x * 7.77 + 1e-3;
            for v in [x, -x, 1.0 / x] {
                let s = float_to_string(v);
                assert_eq!(s.parse::<f64>().unwrap().to_bits(), v.to_bits(), "{s}");
            }
        }
    }

    #[test]
    fn openmetrics_numbers_are_strict() {
        for ok in [
            "1",
            "-1",
            "1.5",
            ".5",
            "5.",
            "1e3",
            "1E-3",
            "+Inf",
            "-inf",
            "Infinity",
            "NaN",
            "nan",
            "0001.2e-1",
            "9223372036854775808",
        ] {
            assert!(parse_openmetrics_number(ok).is_some(), "{ok}");
        }
        for bad in [
            "", "1_2", "0x1", "0X1", "0x1p-3", "0B1", "0O1", "+NaN", "1z", "e3", ".", "1e", " 1",
            "--1", "Inf1",
        ] {
            assert!(parse_openmetrics_number(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn text_values_and_timestamps() {
        assert_eq!(parse_text_value("+Inf"), Some(f64::INFINITY));
        assert!(parse_text_value("nan").unwrap().is_nan());
        assert_eq!(parse_text_value("1e3"), Some(1000.0));
        assert_eq!(parse_text_value("x"), None);
        assert_eq!(parse_text_timestamp("-15"), Some(-15));
        assert_eq!(parse_text_timestamp("1.5"), None);
        assert_eq!(parse_text_timestamp("99999999999999999999"), None);
    }
}
