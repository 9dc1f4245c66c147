//! JSON output exactly as Prometheus writes it: timestamps as seconds with the millisecond
//! fraction written out (`1435781451.781`, `2.500`), sample values as strings in Go's `'f'`
//! format (or `'e'` below 1e-6 and from 1e21 up), `+Inf`, `-Inf`, `NaN`; label sets as objects.

use model::labels::Labels;
use std::fmt::Write;

/// Appends a JSON string literal.
pub fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends a millisecond timestamp as Prometheus' JSON number of seconds.
pub fn timestamp(out: &mut String, t: i64) {
    let mut t = t;
    if t < 0 {
        out.push('-');
        t = t.wrapping_neg();
    }
    let _ = write!(out, "{}", t / 1000);
    let frac = t % 1000;
    if frac != 0 {
        let _ = write!(out, ".{frac:03}");
    }
}

/// A float in Go's `strconv.FormatFloat(f, 'f' or 'e', -1, 64)` as the API uses it.
pub fn float_text(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Go's 'e': mantissa digits, then e±DD (at least two exponent digits).
        let s = format!("{f:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.unsigned_abs());
    }
    format!("{f}")
}

/// Appends a quoted sample value.
pub fn value(out: &mut String, f: f64) {
    out.push('"');
    out.push_str(&float_text(f));
    out.push('"');
}

/// Appends a label set as a JSON object.
pub fn labels(out: &mut String, l: &Labels) {
    out.push('{');
    for (i, label) in l.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        string(out, &label.name);
        out.push(':');
        string(out, &label.value);
    }
    out.push('}');
}

/// Appends `[t, "v"]`.
pub fn point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    timestamp(out, t);
    out.push(',');
    value(out, v);
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_prometheus() {
        let mut s = String::new();
        timestamp(&mut s, 1_435_781_451_781);
        s.push(' ');
        timestamp(&mut s, 2500);
        s.push(' ');
        timestamp(&mut s, 3000);
        s.push(' ');
        timestamp(&mut s, -1500);
        s.push(' ');
        timestamp(&mut s, 5);
        assert_eq!(s, "1435781451.781 2.500 3 -1.500 0.005");
        for (f, want) in [
            (1.0, "1"),
            (0.1, "0.1"),
            (1e6, "1000000"),
            (1e-7, "1e-07"),
            (1.5e-7, "1.5e-07"),
            (1e21, "1e+21"),
            (123456789.25, "123456789.25"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (-0.0, "-0"),
            (0.000001, "0.000001"),
        ] {
            assert_eq!(float_text(f), want, "{f:e}");
        }
        let mut s = String::new();
        string(&mut s, "a\"b\\\n\u{1}");
        assert_eq!(s, r#""a\"b\\\n\u0001""#);
    }
}
