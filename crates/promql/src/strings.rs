//! PromQL string literals: unquoting with Go's escape rules, and quoting for output.
//!
//! Single- and double-quoted strings take Go escapes (`\n`, `\x41`, `\101`, `\u00e9`,
//! `\U0001F600`, and the quote character itself); back-quoted strings are raw. `\x` and octal
//! escapes produce single bytes, so a literal can hold bytes that are not UTF-8: unquoting
//! yields bytes. Quoting produces a double-quoted form that unquotes to the same bytes, in the
//! style of Go's `strconv.Quote`.

/// Why a literal cannot be unquoted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnquoteError(pub String);

/// Unquotes a complete literal including its quotes (`"a\tb"`, `'x'`, `` `raw` ``).
pub fn unquote(literal: &str) -> Result<Vec<u8>, UnquoteError> {
    let bytes = literal.as_bytes();
    let (Some(&open), Some(&close)) = (bytes.first(), bytes.last()) else {
        return Err(UnquoteError("invalid syntax".into()));
    };
    if bytes.len() < 2 || open != close || !matches!(open, b'"' | b'\'' | b'`') {
        return Err(UnquoteError("invalid syntax".into()));
    }
    let body = &literal[1..literal.len() - 1];
    if open == b'`' {
        if body.contains('`') {
            return Err(UnquoteError("invalid syntax".into()));
        }
        return Ok(body.as_bytes().to_vec());
    }
    if body.contains('\n') {
        return Err(UnquoteError("invalid syntax".into()));
    }
    let mut out = Vec::with_capacity(body.len());
    let mut chars = body.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '\\' {
            if c as u32 == u32::from(open) {
                return Err(UnquoteError("invalid syntax".into()));
            }
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let Some((_, e)) = chars.next() else {
            return Err(UnquoteError("invalid syntax".into()));
        };
        let simple = match e {
            'a' => Some(0x07),
            'b' => Some(0x08),
            'f' => Some(0x0c),
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            'v' => Some(0x0b),
            '\\' => Some(b'\\'),
            c if c as u32 == u32::from(open) => Some(open),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            continue;
        }
        let (count, radix, is_byte) = match e {
            '0'..='7' => (2, 8, true),
            'x' => (2, 16, true),
            'u' => (4, 16, false),
            'U' => (8, 16, false),
            _ => return Err(UnquoteError(format!("unknown escape sequence \\{e}"))),
        };
        let mut value = if radix == 8 { e as u32 - '0' as u32 } else { 0 };
        for _ in 0..count {
            let digit = chars
                .next()
                .and_then(|(_, d)| d.to_digit(radix))
                .ok_or_else(|| UnquoteError("invalid escape sequence".into()))?;
            value = value * radix + digit;
        }
        if is_byte {
            let byte =
                u8::try_from(value).map_err(|_| UnquoteError("octal escape value > 255".into()))?;
            out.push(byte);
        } else {
            let c = char::from_u32(value)
                .ok_or_else(|| UnquoteError("invalid Unicode code point".into()))?;
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    Ok(out)
}

/// Double-quotes `bytes` with Go-style escapes; invalid UTF-8 bytes become `\xNN`.
pub fn quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\u{07}' => out.push_str("\\a"),
                '\u{08}' => out.push_str("\\b"),
                '\u{0c}' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{0b}' => out.push_str("\\v"),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    out.push_str(&format!("\\x{:02x}", c as u32));
                }
                c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquotes_go_escapes() {
        assert_eq!(unquote(r#""a\tb\"c""#).as_deref(), Ok(&b"a\tb\"c"[..]));
        assert_eq!(unquote(r"'it\'s'").as_deref(), Ok(&b"it's"[..]));
        assert_eq!(
            unquote(r#""\x41\101\u00e9\U0001F600""#).as_deref(),
            Ok("AAé😀".as_bytes())
        );
        assert_eq!(unquote(r#""a\xc5z""#).as_deref(), Ok(&b"a\xc5z"[..]));
        assert_eq!(
            unquote(r"`raw \string`").as_deref(),
            Ok(&b"raw \\string"[..])
        );
        assert!(unquote(r#""\q""#).is_err());
        assert!(unquote(r#""\400""#).is_err());
    }

    #[test]
    fn quote_round_trips() {
        for s in [
            &b"plain"[..],
            b"tab\there",
            b"quote\"back\\",
            b"a\xc5z",
            b"\x01\x7f",
            "é😀".as_bytes(),
        ] {
            let q = quote(s);
            assert_eq!(unquote(&q).as_deref(), Ok(s), "{q}");
        }
        assert_eq!(quote(b"a\xc5z"), r#""a\xc5z""#);
    }
}
