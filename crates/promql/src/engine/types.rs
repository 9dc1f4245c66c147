//! The values a query returns, its annotations, and its errors.

use crate::ast::Span;
use model::histogram::FloatHistogram;
use model::labels::Labels;
use std::fmt;
use std::sync::Arc;

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    /// Milliseconds.
    pub t: i64,
    pub value: storage::Value,
}

/// One series of a matrix: float points and histogram points, each sorted by time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    pub labels: Labels,
    pub floats: Vec<(i64, f64)>,
    pub histograms: Vec<(i64, Arc<FloatHistogram>)>,
}

/// A query result.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar at a time (ms).
    Scalar {
        t: i64,
        v: f64,
    },
    /// A string at a time (ms).
    String {
        t: i64,
        s: String,
    },
    Vector(Vec<Sample>),
    /// Series sorted by label set.
    Matrix(Vec<Series>),
}

/// Warning or info.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnnotationKind {
    Warning,
    Info,
}

/// A warning or info about a query, tied to the sub-expression it concerns.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Annotation {
    pub kind: AnnotationKind,
    /// The full message, e.g. `PromQL warning: encountered a mix of histograms and floats
    /// for aggregation`.
    pub message: String,
    pub span: Span,
}

impl Annotation {
    /// The text the HTTP API returns: the message and ` (line:column)` of the span's start.
    pub fn render(&self, query: &str) -> String {
        let before = &query.as_bytes()[..self.span.start.min(query.len())];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |p| p + 1);
        let column = self.span.start.min(query.len()) - line_start + 1;
        format!("{} ({line}:{column})", self.message)
    }
}

/// A successful evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub value: Value,
    /// Deduplicated, in the order first raised.
    pub annotations: Vec<Annotation>,
}

/// Why a query failed. `Display` is the plain message (no position), as the API's `error`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// The query does not parse (API error type `bad_data`).
    #[error("{0}")]
    Parse(crate::ParseError),
    /// Invalid parameters (API error type `bad_data`).
    #[error("{0}")]
    BadData(String),
    /// The query ran past `--query.timeout` (API error type `timeout`).
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    /// The caller went away (API error type `canceled`).
    #[error("query was canceled in {0}")]
    Canceled(&'static str),
    /// More samples than `--query.max-samples` (API error type `execution`).
    #[error("query processing would load too many samples into memory in {0}")]
    TooManySamples(&'static str),
    /// An evaluation error such as duplicate series (API error type `execution`).
    #[error("{0}")]
    Execution(String),
    /// The storage failed (API error type `internal`... Prometheus reports `execution`).
    #[error("{0}")]
    Storage(#[from] storage::StorageError),
}

impl QueryError {
    /// The API's `errorType`.
    pub fn error_type(&self) -> &'static str {
        match self {
            QueryError::Parse(_) | QueryError::BadData(_) => "bad_data",
            QueryError::Timeout(_) => "timeout",
            QueryError::Canceled(_) => "canceled",
            QueryError::TooManySamples(_) | QueryError::Execution(_) | QueryError::Storage(_) => {
                "execution"
            }
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Scalar { t, v } => write!(f, "scalar: {v} @[{t}]"),
            Value::String { t, s } => write!(f, "string: {s} @[{t}]"),
            Value::Vector(v) => {
                for s in v {
                    match &s.value {
                        storage::Value::Float(x) => writeln!(f, "{} => {x} @[{}]", s.labels, s.t)?,
                        storage::Value::Histogram(h) => {
                            writeln!(f, "{} => {h:?} @[{}]", s.labels, s.t)?
                        }
                    }
                }
                Ok(())
            }
            Value::Matrix(m) => {
                for s in m {
                    writeln!(f, "{} =>", s.labels)?;
                    for (t, v) in &s.floats {
                        writeln!(f, "  {v} @[{t}]")?;
                    }
                    for (t, h) in &s.histograms {
                        writeln!(f, "  {h:?} @[{t}]")?;
                    }
                }
                Ok(())
            }
        }
    }
}
