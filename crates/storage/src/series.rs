//! Series and their sample iterators.
//!
//! A [`SampleIterator`] walks one series' samples in increasing timestamp order. It follows
//! Prometheus' iterator contract: `next`/`seek` move and report the kind of the current sample,
//! `at`/`at_histogram` read it, and after the end `err` tells whether the end was an error.
//! `seek` never moves backwards, so readers can skip ahead cheaply.

use crate::StorageError;
use model::histogram::FloatHistogram;
use model::labels::Labels;
use model::sample::Timestamp;
use std::sync::Arc;

/// The kind of the sample an iterator stands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Float,
    Histogram,
}

/// One sample value: a float or a native histogram.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Float(f64),
    Histogram(Arc<FloatHistogram>),
}

impl Value {
    pub fn kind(&self) -> ValueKind {
        match self {
            Value::Float(_) => ValueKind::Float,
            Value::Histogram(_) => ValueKind::Histogram,
        }
    }
}

/// Walks one series' samples in increasing timestamp order.
pub trait SampleIterator: Send {
    /// Moves to the next sample; `None` at the end (then check [`SampleIterator::err`]).
    fn next(&mut self) -> Option<ValueKind>;

    /// Moves to the first sample with timestamp `>= t`, staying put when already there; `None`
    /// when there is none. Never moves backwards.
    fn seek(&mut self, t: Timestamp) -> Option<ValueKind> {
        if let Some(kind) = self.current_kind()
            && self.at_t() >= t
        {
            return Some(kind);
        }
        while let Some(kind) = self.next() {
            if self.at_t() >= t {
                return Some(kind);
            }
        }
        None
    }

    /// The kind of the current sample, `None` before the first `next` or after the end.
    fn current_kind(&self) -> Option<ValueKind>;

    /// Timestamp of the current sample.
    fn at_t(&self) -> Timestamp;

    /// The current float sample (only valid when the kind is `Float`).
    fn at(&self) -> (Timestamp, f64);

    /// The current histogram sample (only valid when the kind is `Histogram`).
    fn at_histogram(&self) -> Option<(Timestamp, Arc<FloatHistogram>)>;

    /// The error that ended iteration early, if any.
    fn err(&self) -> Option<StorageError> {
        None
    }
}

/// A series: its labels and a fresh iterator over its samples.
pub struct Series {
    pub labels: Labels,
    pub samples: Box<dyn SampleIterator>,
}

impl std::fmt::Debug for Series {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Series")
            .field("labels", &self.labels)
            .finish_non_exhaustive()
    }
}

/// The result of a select: series one at a time, or an error that ended the selection.
pub type SeriesSet = Box<dyn Iterator<Item = Result<Series, StorageError>> + Send>;

/// An iterator over samples held in memory.
pub struct VecSampleIterator {
    samples: Arc<[(Timestamp, Value)]>,
    start: usize,
    end: usize,
    /// Index of the current sample.
    cur: Option<usize>,
    done: bool,
}

impl VecSampleIterator {
    /// Iterates `samples[start..end]` (which must be sorted by timestamp).
    pub fn new(samples: Arc<[(Timestamp, Value)]>, start: usize, end: usize) -> Self {
        let end = end.min(samples.len());
        VecSampleIterator {
            samples,
            start: start.min(end),
            end,
            cur: None,
            done: false,
        }
    }

    /// Iterates all samples of `v` (sorted by timestamp).
    pub fn from_vec(v: Vec<(Timestamp, Value)>) -> Self {
        let n = v.len();
        Self::new(Arc::from(v), 0, n)
    }

    fn current(&self) -> Option<&(Timestamp, Value)> {
        self.cur.and_then(|i| self.samples.get(i))
    }

    fn move_to(&mut self, i: usize) -> Option<ValueKind> {
        if i >= self.end {
            self.cur = None;
            self.done = true;
            return None;
        }
        self.cur = Some(i);
        self.current().map(|(_, v)| v.kind())
    }
}

impl SampleIterator for VecSampleIterator {
    fn next(&mut self) -> Option<ValueKind> {
        match (self.cur, self.done) {
            (_, true) => None,
            (None, false) => self.move_to(self.start),
            (Some(i), false) => self.move_to(i + 1),
        }
    }

    fn seek(&mut self, t: Timestamp) -> Option<ValueKind> {
        if let Some((ct, v)) = self.current()
            && *ct >= t
        {
            return Some(v.kind());
        }
        if self.done {
            return None;
        }
        let from = self.cur.map_or(self.start, |i| i + 1);
        let idx = from + self.samples[from..self.end].partition_point(|(st, _)| *st < t);
        self.move_to(idx)
    }

    fn current_kind(&self) -> Option<ValueKind> {
        self.current().map(|(_, v)| v.kind())
    }

    fn at_t(&self) -> Timestamp {
        self.current().map_or(i64::MIN, |(t, _)| *t)
    }

    fn at(&self) -> (Timestamp, f64) {
        match self.current() {
            Some((t, Value::Float(v))) => (*t, *v),
            Some((t, Value::Histogram(_))) => (*t, f64::NAN),
            None => (i64::MIN, f64::NAN),
        }
    }

    fn at_histogram(&self) -> Option<(Timestamp, Arc<FloatHistogram>)> {
        match self.current() {
            Some((t, Value::Histogram(h))) => Some((*t, h.clone())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn it(ts: &[i64]) -> VecSampleIterator {
        VecSampleIterator::from_vec(ts.iter().map(|t| (*t, Value::Float(*t as f64))).collect())
    }

    #[test]
    fn next_and_seek() {
        let mut i = it(&[10, 20, 30, 40]);
        assert_eq!(i.current_kind(), None);
        assert_eq!(i.next(), Some(ValueKind::Float));
        assert_eq!(i.at(), (10, 10.0));
        assert_eq!(i.seek(5), Some(ValueKind::Float));
        assert_eq!(i.at_t(), 10, "seek never moves backwards");
        assert_eq!(i.seek(25), Some(ValueKind::Float));
        assert_eq!(i.at_t(), 30);
        assert_eq!(i.seek(30), Some(ValueKind::Float));
        assert_eq!(i.at_t(), 30);
        assert_eq!(i.next(), Some(ValueKind::Float));
        assert_eq!(i.at_t(), 40);
        assert_eq!(i.seek(41), None);
        assert_eq!(i.next(), None);
        assert_eq!(i.current_kind(), None);
    }

    #[test]
    fn seek_before_next() {
        let mut i = it(&[10, 20]);
        assert_eq!(i.seek(15), Some(ValueKind::Float));
        assert_eq!(i.at_t(), 20);
        let mut e = it(&[]);
        assert_eq!(e.seek(0), None);
        assert_eq!(e.next(), None);
    }
}
