//! Exemplars: example observations (typically a trace id) attached to a series' samples, and
//! the rules every exemplar storage applies to them, as Prometheus does.
//!
//! An exemplar is accepted for a series when its label set is at most
//! [`MAX_LABEL_SET_LENGTH`] characters long (names and values, counted in Unicode scalar
//! values as OpenMetrics specifies) and it follows the series' newest stored exemplar: an
//! exact repeat is a duplicate (accepted and ignored); an older timestamp, or an equal
//! timestamp with a smaller value, or with equal value and a smaller label hash, is out of
//! order. Equal timestamps with other values or labels are allowed (the buckets of one
//! histogram can carry exemplars of the same moment).
//!
//! [`ExemplarQueryable`] is the read side: the exemplars in a time range of the series
//! matching any of several matcher sets, as `/api/v1/query_exemplars` returns them.

use crate::{AppendError, StorageError};
use model::labels::Labels;
use model::matcher::Matcher;
use model::sample::Timestamp;

/// OpenMetrics' limit on the combined length of an exemplar's label names and values.
pub const MAX_LABEL_SET_LENGTH: usize = 128;

/// One exemplar.
#[derive(Debug, Clone)]
pub struct Exemplar {
    /// Labels of the exemplar itself (not of its series), e.g. `trace_id`.
    pub labels: Labels,
    pub value: f64,
    /// Milliseconds.
    pub ts: Timestamp,
}

impl PartialEq for Exemplar {
    /// Values compare by bits, so that a repeated NaN is recognised as a repeat.
    fn eq(&self, other: &Self) -> bool {
        self.ts == other.ts
            && self.value.to_bits() == other.value.to_bits()
            && self.labels == other.labels
    }
}

/// Checks `e` against the series' newest stored exemplar (`None`: the series has none).
/// `Err(DuplicateExemplar)` means "already stored, ignore it", which callers treat as
/// success.
pub fn validate_exemplar(newest: Option<&Exemplar>, e: &Exemplar) -> Result<(), AppendError> {
    let mut length = 0;
    for l in &e.labels {
        length += l.name.chars().count() + l.value.chars().count();
        if length > MAX_LABEL_SET_LENGTH {
            return Err(AppendError::ExemplarLabelLength);
        }
    }
    let Some(newest) = newest else {
        return Ok(());
    };
    if newest == e {
        return Err(AppendError::DuplicateExemplar);
    }
    let out_of_order = e.ts < newest.ts
        || (e.ts == newest.ts && e.value < newest.value)
        || (e.ts == newest.ts
            && e.value == newest.value
            && e.labels.prometheus_hash() < newest.labels.prometheus_hash());
    if out_of_order {
        return Err(AppendError::OutOfOrderExemplar);
    }
    Ok(())
}

/// The exemplars of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct ExemplarQueryResult {
    pub series_labels: Labels,
    /// Oldest first.
    pub exemplars: Vec<Exemplar>,
}

/// Read access to stored exemplars.
pub trait ExemplarQueryable: Send + Sync {
    /// The exemplars with timestamps in `[start, end]` of every series that matches all
    /// matchers of at least one of `matcher_sets`, sorted by series labels. Series without
    /// exemplars in the range are left out.
    fn select_exemplars(
        &self,
        start: Timestamp,
        end: Timestamp,
        matcher_sets: &[Vec<Matcher>],
    ) -> Result<Vec<ExemplarQueryResult>, StorageError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(trace: &str, value: f64, ts: i64) -> Exemplar {
        Exemplar {
            labels: Labels::from_static(&[("trace_id", trace)]),
            value,
            ts,
        }
    }

    #[test]
    fn order_duplicates_and_length() {
        let newest = ex("a", 1.0, 100);
        assert_eq!(validate_exemplar(None, &newest), Ok(()));
        assert_eq!(
            validate_exemplar(Some(&newest), &ex("a", 1.0, 100)),
            Err(AppendError::DuplicateExemplar)
        );
        assert_eq!(
            validate_exemplar(Some(&newest), &ex("a", 1.0, 99)),
            Err(AppendError::OutOfOrderExemplar)
        );
        assert_eq!(
            validate_exemplar(Some(&newest), &ex("a", 0.5, 100)),
            Err(AppendError::OutOfOrderExemplar)
        );
        assert_eq!(validate_exemplar(Some(&newest), &ex("a", 2.0, 100)), Ok(()));
        assert_eq!(validate_exemplar(Some(&newest), &ex("b", 1.0, 101)), Ok(()));
        // Same time and value, other labels: the label hash decides, one way or the other.
        let other = ex("b", 1.0, 100);
        let forward = validate_exemplar(Some(&newest), &other);
        let backward = validate_exemplar(Some(&other), &newest);
        assert!(
            forward.is_ok() != backward.is_ok(),
            "{forward:?} {backward:?}"
        );
        // 128 characters of names and values are fine, 129 are not; characters, not bytes.
        let fits = Exemplar {
            labels: Labels::from_static(&[("t", &"é".repeat(127))]),
            value: 1.0,
            ts: 1,
        };
        assert_eq!(validate_exemplar(None, &fits), Ok(()));
        let too_long = Exemplar {
            labels: Labels::from_static(&[("tr", &"x".repeat(127))]),
            value: 1.0,
            ts: 1,
        };
        assert_eq!(
            validate_exemplar(None, &too_long),
            Err(AppendError::ExemplarLabelLength)
        );
        // A repeated NaN is a duplicate, not a new exemplar.
        let nan = ex("n", f64::NAN, 5);
        assert_eq!(
            validate_exemplar(Some(&nan), &ex("n", f64::NAN, 5)),
            Err(AppendError::DuplicateExemplar)
        );
    }
}
