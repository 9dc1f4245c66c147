//! The storage interfaces every writer and reader programs against.
//!
//! Writers (scrape loops, the remote-write receiver, rule evaluation) get an [`Appender`] from
//! an [`Appendable`], add samples, and commit or roll back the batch. Readers (the PromQL
//! engine, the HTTP API, `/federate`, remote read) get a [`Querier`] for a time range from a
//! [`Queryable`] and select series by label matchers; each series yields its samples through a
//! [`SampleIterator`]. The TSDB implements these; [`memory::MemStorage`] is a small complete
//! implementation for tests; [`merge::MergeQuerier`] combines several queriers into one.
//! Exemplars go in through the same appenders and come out through [`ExemplarQueryable`]
//! (see [`exemplar`]).
//!
//! Errors keep Prometheus' wording (`out of order sample`, `duplicate sample for timestamp`,
//! `out of bounds`) because clients match on it.

pub mod exemplar;
pub mod memory;
pub mod merge;
mod series;

pub use exemplar::{Exemplar, ExemplarQueryResult, ExemplarQueryable, validate_exemplar};

pub use series::{SampleIterator, Series, SeriesSet, Value, ValueKind, VecSampleIterator};

use model::labels::Labels;
use model::matcher::Matcher;
use model::sample::Timestamp;

/// A handle to a series inside one storage, valid for that storage's lifetime. Passing it back
/// on the next append skips the label lookup.
pub type SeriesRef = u64;

/// Why one sample was not accepted. The batch stays usable: other samples can still be
/// appended and committed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    #[error("out of order sample")]
    OutOfOrder,
    #[error("duplicate sample for timestamp")]
    DuplicateTimestamp,
    #[error("out of bounds")]
    OutOfBounds,
    #[error("too old sample")]
    TooOld,
    #[error("invalid labels: {0}")]
    InvalidLabels(String),
    #[error("out of order exemplar")]
    OutOfOrderExemplar,
    /// Already stored: callers treat it as success.
    #[error("duplicate exemplar")]
    DuplicateExemplar,
    #[error(
        "label length for exemplar exceeds maximum of {} UTF-8 characters",
        exemplar::MAX_LABEL_SET_LENGTH
    )]
    ExemplarLabelLength,
    /// An exemplar for a series the storage does not have (exemplars never create series).
    #[error("unknown series when trying to add exemplar: {0}")]
    ExemplarForUnknownSeries(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Decides whether a sample `(t, v)` may follow a series' last sample `last` (timestamp and
/// value bits): `Ok(true)` to store it, `Ok(false)` for an exact repeat (accepted and ignored,
/// as Prometheus does), or the ordering error.
pub fn check_append_order(
    last: Option<(Timestamp, u64)>,
    t: Timestamp,
    v: f64,
) -> Result<bool, AppendError> {
    match last {
        Some((lt, _)) if t < lt => Err(AppendError::OutOfOrder),
        Some((lt, bits)) if t == lt => {
            if bits == v.to_bits() {
                Ok(false)
            } else {
                Err(AppendError::DuplicateTimestamp)
            }
        }
        _ => Ok(true),
    }
}

/// A failure of the storage itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    #[error("I/O error: {0}")]
    Io(String),
    #[error("corruption: {0}")]
    Corruption(String),
    #[error("storage is closed")]
    Closed,
    #[error("{0}")]
    Other(String),
}

impl From<std::io::Error> for StorageError {
    fn from(e: std::io::Error) -> Self {
        StorageError::Io(e.to_string())
    }
}

/// A batch of samples to add atomically: nothing is visible before [`Appender::commit`], and
/// after a successful commit everything is (and, for durable storages, survives a crash).
pub trait Appender: Send {
    /// Adds a float sample. `series` is a reference returned by an earlier append to the same
    /// storage (it is only a hint: a stale one falls back to `labels`). `labels` must be a valid
    /// set including `__name__` when the series has a metric name.
    fn append(
        &mut self,
        series: Option<SeriesRef>,
        labels: &Labels,
        t: Timestamp,
        v: f64,
    ) -> Result<SeriesRef, AppendError>;

    /// Like [`Appender::append`], with the labels as pairs borrowed from the input, already
    /// normalized by [`model::labels::normalize_pairs`] (names non-empty is the caller's
    /// check). A storage that can find an existing series from the pairs overrides this to
    /// skip building a `Labels`; this default builds one.
    fn append_pairs(
        &mut self,
        series: Option<SeriesRef>,
        pairs: &[(&str, &str)],
        t: Timestamp,
        v: f64,
    ) -> Result<SeriesRef, AppendError> {
        let labels = Labels::from_pairs(pairs.iter().copied())
            .map_err(|e| AppendError::InvalidLabels(e.to_string()))?;
        self.append(series, &labels, t, v)
    }

    /// Adds an exemplar to an existing series (`series` and `labels` as for [`append`]);
    /// visible and durable with the batch. A duplicate of the series' newest exemplar, and
    /// any exemplar while the storage keeps none, is accepted and ignored.
    ///
    /// [`append`]: Appender::append
    fn append_exemplar(
        &mut self,
        series: Option<SeriesRef>,
        labels: &Labels,
        exemplar: &Exemplar,
    ) -> Result<SeriesRef, AppendError>;

    /// Makes the batch visible (and durable, where the storage is).
    fn commit(&mut self) -> Result<(), StorageError>;

    /// Discards the batch.
    fn rollback(&mut self) -> Result<(), StorageError>;
}

/// Something that hands out appenders.
pub trait Appendable: Send + Sync {
    fn appender(&self) -> Box<dyn Appender>;
}

/// What the reader intends to do with the selected series; a storage may use it to read less.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectHints {
    /// First and last timestamp the reader needs, inclusive.
    pub start: Timestamp,
    pub end: Timestamp,
    /// Query resolution step in milliseconds (0 for instant queries).
    pub step: i64,
    /// Range of the enclosing range selector in milliseconds, 0 for instant selectors.
    pub range: i64,
    /// The function applied to the selection, when known (e.g. `rate`, `series` for metadata).
    pub func: Option<String>,
}

/// Read access to a time range `[mint, maxt]` of a storage.
pub trait Querier: Send + Sync {
    /// The series matching all `matchers`, with samples limited to the querier's range.
    /// With `sorted`, series come in label-set order (needed for merging).
    fn select(
        &self,
        sorted: bool,
        hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<SeriesSet, StorageError>;

    /// Sorted, distinct values of label `name` over series matching `matchers` (all series when
    /// empty).
    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError>;

    /// Sorted, distinct label names over series matching `matchers` (all series when empty).
    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError>;
}

/// Something that hands out queriers.
pub trait Queryable: Send + Sync {
    fn querier(&self, mint: Timestamp, maxt: Timestamp) -> Result<Box<dyn Querier>, StorageError>;
}
