//! The metric exposition formats: Prometheus text 0.0.4 and OpenMetrics 1.0 text.
//!
//! [`Parser`] walks a payload entry by entry without building a vector of everything: names and
//! label values borrow from the input unless they contain escapes. In strict mode it also
//! enforces the OpenMetrics semantic rules (see `validate.rs`); the scrape path parses
//! leniently, as Prometheus does. [`encode`] writes the 0.0.4 format for `/federate` and
//! `/metrics`.

mod encode;
mod float;
mod parser;
mod validate;

pub use encode::{TextEncoder, escape_help, escape_label_value};
pub use float::{float_to_string, format_float, parse_openmetrics_number, parse_text_value};
pub use parser::Parser;

use std::borrow::Cow;
use std::fmt;

/// Which text format a payload is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`
    Text,
    /// `application/openmetrics-text; version=1.0.0`
    OpenMetrics,
}

impl Format {
    /// Picks the format from an HTTP `Content-Type`; anything unrecognised is the text format,
    /// as Prometheus falls back to it.
    pub fn from_content_type(ct: &str) -> Format {
        let media = ct.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }

    /// Guesses the format of a payload without a content type: OpenMetrics when its last line
    /// is `# EOF`, the text format otherwise.
    pub fn detect(payload: &[u8]) -> Format {
        let trimmed = payload.strip_suffix(b"\n").unwrap_or(payload);
        let last = match memchr::memrchr(b'\n', trimmed) {
            Some(p) => &trimmed[p + 1..],
            None => trimmed,
        };
        if last == b"# EOF" {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

/// Metric family types of both formats (0.0.4's `untyped` is `Unknown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    Unknown,
}

impl MetricType {
    /// Parses a `# TYPE` word of the given format.
    pub fn parse(word: &str, format: Format) -> Option<MetricType> {
        Some(match (word, format) {
            ("counter", _) => MetricType::Counter,
            ("gauge", _) => MetricType::Gauge,
            ("histogram", _) => MetricType::Histogram,
            ("summary", _) => MetricType::Summary,
            ("untyped", Format::Text) => MetricType::Unknown,
            ("unknown", Format::OpenMetrics) => MetricType::Unknown,
            ("gaugehistogram", Format::OpenMetrics) => MetricType::GaugeHistogram,
            ("info", Format::OpenMetrics) => MetricType::Info,
            ("stateset", Format::OpenMetrics) => MetricType::StateSet,
            _ => return None,
        })
    }

    /// The word used in the 0.0.4 format (types it lacks are written as `untyped`... except
    /// where Prometheus writes `unknown` in its metadata API; see `as_api_str`).
    pub fn as_text_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Summary => "summary",
            _ => "untyped",
        }
    }

    /// The word Prometheus' metadata API uses.
    pub fn as_api_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }
}

/// What a target says about one metric family (`# TYPE`, `# HELP`, `# UNIT`), as the metadata
/// APIs and remote write carry it. `family` is the name the comment lines use (for an
/// OpenMetrics counter `foo`, whose series is `foo_total`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricMetadata {
    pub family: String,
    pub kind: MetricType,
    pub help: String,
    pub unit: String,
}

/// A label as read from a payload; borrowed unless escapes had to be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelRef<'a> {
    pub name: Cow<'a, str>,
    pub value: Cow<'a, str>,
}

/// An exemplar attached to a sample line (OpenMetrics only).
#[derive(Debug, Clone, PartialEq)]
pub struct ExemplarRef<'a, 'p> {
    pub labels: &'p [LabelRef<'a>],
    pub value: f64,
    /// Milliseconds.
    pub timestamp: Option<i64>,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRef<'a, 'p> {
    /// The series' metric name (with any `_total`/`_bucket`/... suffix, as written).
    pub name: Cow<'a, str>,
    /// The labels between braces, in input order, without the metric name.
    pub labels: &'p [LabelRef<'a>],
    pub value: f64,
    /// Milliseconds (OpenMetrics' seconds are converted).
    pub timestamp: Option<i64>,
    pub exemplar: Option<ExemplarRef<'a, 'p>>,
}

/// One entry of a payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry<'a, 'p> {
    Help {
        name: Cow<'a, str>,
        text: Cow<'a, str>,
    },
    Type {
        name: Cow<'a, str>,
        kind: MetricType,
    },
    Unit {
        name: Cow<'a, str>,
        unit: Cow<'a, str>,
    },
    Sample(SampleRef<'a, 'p>),
}

/// A malformed payload: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: u32,
    /// 1-based byte column within the line.
    pub column: u32,
    pub message: String,
}

/// Writes `s` in double quotes with the escapes Prometheus uses when printing label sets and
/// PromQL strings (`\\`, `\"`, `\n`, `\r`, `\t`, other control characters as `\xNN`).
pub fn write_quoted(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '\\' => f.write_str("\\\\")?,
            '"' => f.write_str("\\\"")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if (c as u32) < 0x20 || c as u32 == 0x7f => write!(f, "\\x{:02x}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_detection() {
        assert_eq!(Format::detect(b"a 1\n# EOF\n"), Format::OpenMetrics);
        assert_eq!(Format::detect(b"a 1\n# EOF"), Format::OpenMetrics);
        assert_eq!(Format::detect(b"a 1\n"), Format::Text);
        assert_eq!(
            Format::from_content_type("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::from_content_type("text/plain; version=0.0.4"),
            Format::Text
        );
    }
}
