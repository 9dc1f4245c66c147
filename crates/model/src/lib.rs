//! Meridian's data model: the vocabulary every other crate speaks.
//!
//! - [`labels`]: label sets (the identity of a series), interning, stable hashing.
//! - [`matcher`]: label matchers with Prometheus semantics, over [`regex`]'s Go-compatible
//!   regexes.
//! - [`sample`]: timestamps, float samples and the staleness marker.
//! - [`histogram`]: the native histogram value type.
//! - [`names`]: metric and label name validation (UTF-8 and legacy schemes).
//! - [`duration`]: Prometheus' duration format (`1h30m`).
//! - [`exposition`]: the text 0.0.4 and OpenMetrics parsers and the text encoder.

pub mod duration;
pub mod exposition;
pub mod histogram;
pub mod labels;
pub mod matcher;
pub mod names;
pub mod regex;
pub mod sample;
pub mod time;

pub use labels::{Label, Labels, LabelsBuilder, Sym};
pub use matcher::{MatchOp, Matcher};
pub use sample::{Sample, Timestamp};
