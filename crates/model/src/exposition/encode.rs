//! Writer for the text format 0.0.4, as `/federate` and `/metrics` serve it.
//!
//! Escaping follows the format: label values escape `\`, `"` and newline; HELP text escapes
//! `\` and newline. Names outside the legacy character set use Prometheus 3's quoted form
//! (`{"my.metric", "label.name"="v"}`). Numbers use Go's shortest formatting (`float.rs`).

use super::MetricType;
use super::float::format_float;
use crate::labels::{Labels, METRIC_NAME};
use crate::names::{is_valid_legacy_label_name, is_valid_legacy_metric_name};

/// Appends the 0.0.4 format to a byte buffer.
pub struct TextEncoder<'b> {
    out: &'b mut Vec<u8>,
}

impl<'b> TextEncoder<'b> {
    pub fn new(out: &'b mut Vec<u8>) -> Self {
        TextEncoder { out }
    }

    fn name(&mut self, name: &str) {
        if is_valid_legacy_metric_name(name) {
            self.out.extend_from_slice(name.as_bytes());
        } else {
            self.quoted(name);
        }
    }

    fn quoted(&mut self, s: &str) {
        self.out.push(b'"');
        escape_label_value(s, self.out);
        self.out.push(b'"');
    }

    /// Appends text already in the exposition format (families rendered elsewhere).
    pub fn raw(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
    }

    /// `# HELP name text`
    pub fn help(&mut self, name: &str, text: &str) {
        self.out.extend_from_slice(b"# HELP ");
        self.name(name);
        self.out.push(b' ');
        escape_help(text, self.out);
        self.out.push(b'\n');
    }

    /// `# TYPE name type` (types the format lacks are written as `untyped`).
    pub fn metric_type(&mut self, name: &str, kind: MetricType) {
        self.out.extend_from_slice(b"# TYPE ");
        self.name(name);
        self.out.push(b' ');
        self.out.extend_from_slice(kind.as_text_str().as_bytes());
        self.out.push(b'\n');
    }

    /// One sample line for a series whose labels include `__name__`.
    pub fn sample(&mut self, labels: &Labels, value: f64, timestamp: Option<i64>) {
        let name = labels.metric_name().unwrap_or("");
        self.sample_parts(
            name,
            labels
                .iter()
                .filter(|l| l.name.as_str() != METRIC_NAME)
                .map(|l| (l.name.as_str(), l.value.as_str())),
            value,
            timestamp,
        );
    }

    /// One sample line from its parts; `labels` must not contain the metric name.
    pub fn sample_parts<'l>(
        &mut self,
        name: &str,
        labels: impl IntoIterator<Item = (&'l str, &'l str)>,
        value: f64,
        timestamp: Option<i64>,
    ) {
        let legacy_name = is_valid_legacy_metric_name(name);
        let mut open = false;
        if legacy_name {
            self.out.extend_from_slice(name.as_bytes());
        } else {
            self.out.push(b'{');
            self.quoted(name);
            open = true;
        }
        for (n, v) in labels {
            self.out.push(if open { b',' } else { b'{' });
            open = true;
            if is_valid_legacy_label_name(n) {
                self.out.extend_from_slice(n.as_bytes());
            } else {
                self.quoted(n);
            }
            self.out.extend_from_slice(b"=\"");
            escape_label_value(v, self.out);
            self.out.push(b'"');
        }
        if open {
            self.out.push(b'}');
        }
        self.out.push(b' ');
        format_float(value, self.out);
        if let Some(t) = timestamp {
            self.out.push(b' ');
            let mut b = itoa::Buffer::new();
            self.out.extend_from_slice(b.format(t).as_bytes());
        }
        self.out.push(b'\n');
    }
}

/// Escapes a label value: `\` → `\\`, `"` → `\"`, newline → `\n`.
pub fn escape_label_value(s: &str, out: &mut Vec<u8>) {
    let b = s.as_bytes();
    let mut start = 0;
    for i in memchr::memchr3_iter(b'\\', b'"', b'\n', b) {
        out.extend_from_slice(&b[start..i]);
        out.extend_from_slice(match b[i] {
            b'\\' => b"\\\\",
            b'"' => b"\\\"",
            _ => b"\\n",
        });
        start = i + 1;
    }
    out.extend_from_slice(&b[start..]);
}

/// Escapes HELP text: `\` → `\\`, newline → `\n`.
pub fn escape_help(s: &str, out: &mut Vec<u8>) {
    let b = s.as_bytes();
    let mut start = 0;
    for i in memchr::memchr2_iter(b'\\', b'\n', b) {
        out.extend_from_slice(&b[start..i]);
        out.extend_from_slice(if b[i] == b'\\' { b"\\\\" } else { b"\\n" });
        start = i + 1;
    }
    out.extend_from_slice(&b[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_prometheus_text() {
        let mut out = Vec::new();
        let mut e = TextEncoder::new(&mut out);
        e.help("up", "1 if \\ up\nelse 0");
        e.metric_type("up", MetricType::Counter);
        e.sample(
            &Labels::from_static(&[("__name__", "up"), ("job", "a\"b\\c\nd")]),
            1.0,
            Some(1_700_000_000_000),
        );
        e.sample(&Labels::from_static(&[("__name__", "x")]), 1234567.0, None);
        e.sample(
            &Labels::from_static(&[("__name__", "my.metric"), ("service.name", "s")]),
            f64::NEG_INFINITY,
            None,
        );
        e.metric_type("i", MetricType::Info);
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            "# HELP up 1 if \\\\ up\\nelse 0\n# TYPE up counter\n\
             up{job=\"a\\\"b\\\\c\\nd\"} 1 1700000000000\n\
             x 1.234567e+06\n\
             {\"my.metric\",\"service.name\"=\"s\"} -Inf\n\
             # TYPE i untyped\n"
        );
    }
}
