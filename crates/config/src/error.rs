//! Owns [`ConfigError`], the one error type of this crate, and the internal
//! [`FieldError`] that decoding and validation produce before the file name is
//! known to them.
//!
//! Every error names the file, and where the YAML allows it the line, the
//! column and the field path: `prometheus.yml:12:5: scrape_configs[0].scrape_timeout: ...`.

use std::fmt;
use std::path::{Path, PathBuf};

/// A 1-based line and column in a YAML file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub line: u64,
    pub column: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Why a configuration could not be loaded.
///
/// Displayed as `file:line:column: field.path: message`. The position is
/// missing for errors that are not about one place in the YAML (a file that
/// cannot be read). For YAML syntax errors and duplicate keys the field path
/// is the nearest field by indentation, and missing when there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the error is in: the main configuration file or one of its
    /// `scrape_config_files`.
    pub file: PathBuf,
    pub position: Option<Position>,
    /// Path of the offending field, e.g. `scrape_configs[0].relabel_configs[1].regex`.
    pub field: Option<String>,
    /// What is wrong, worded like Prometheus' own message where there is one.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(position) = self.position {
            write!(f, ":{position}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// An error about a whole file, such as failing to read it.
    pub(crate) fn file(file: &Path, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            position: None,
            field: None,
            message: message.into(),
        }
    }
}

/// An error found while decoding or validating one YAML document, before it
/// is tied to a file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldError {
    pub position: Option<Position>,
    /// Empty when no field can be named (e.g. a syntax error on line 1).
    pub path: String,
    pub message: String,
}

impl FieldError {
    pub(crate) fn new(position: Position, path: &str, message: impl Into<String>) -> Self {
        FieldError {
            position: Some(position),
            path: path.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn in_file(self, file: &Path) -> ConfigError {
        ConfigError {
            file: file.to_path_buf(),
            position: self.position,
            field: (!self.path.is_empty()).then_some(self.path),
            message: self.message,
        }
    }
}

pub(crate) type DecodeResult<T> = Result<T, FieldError>;
