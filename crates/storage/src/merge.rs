//! Combining several queriers into one (the head and persisted blocks, local and remote data).
//!
//! Each querier is asked for sorted series; series with equal label sets are merged into one
//! whose iterator walks all of them in timestamp order. When two sources have a sample at the
//! same timestamp, the one from the earlier querier wins (callers list the most authoritative
//! source first).

use crate::series::{SampleIterator, Series, SeriesSet, ValueKind};
use crate::{Querier, SelectHints, StorageError};
use model::histogram::FloatHistogram;
use model::matcher::Matcher;
use model::sample::Timestamp;
use std::collections::BTreeSet;
use std::iter::Peekable;
use std::sync::Arc;

/// A querier over the union of several queriers.
pub struct MergeQuerier {
    queriers: Vec<Box<dyn Querier>>,
}

impl MergeQuerier {
    pub fn new(queriers: Vec<Box<dyn Querier>>) -> Self {
        MergeQuerier { queriers }
    }
}

impl Querier for MergeQuerier {
    fn select(
        &self,
        sorted: bool,
        hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<SeriesSet, StorageError> {
        if self.queriers.len() == 1 {
            return self.queriers[0].select(sorted, hints, matchers);
        }
        let mut sets = Vec::with_capacity(self.queriers.len());
        for q in &self.queriers {
            sets.push(q.select(true, hints, matchers)?.peekable());
        }
        Ok(Box::new(MergeSeriesSet { sets }))
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut all = BTreeSet::new();
        for q in &self.queriers {
            all.extend(q.label_values(name, matchers)?);
        }
        Ok(all.into_iter().collect())
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut all = BTreeSet::new();
        for q in &self.queriers {
            all.extend(q.label_names(matchers)?);
        }
        Ok(all.into_iter().collect())
    }
}

/// K-way merge of sorted series sets.
struct MergeSeriesSet {
    sets: Vec<Peekable<SeriesSet>>,
}

impl Iterator for MergeSeriesSet {
    type Item = Result<Series, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        // Surface errors first; then find the smallest label set among the heads.
        let mut smallest: Option<model::labels::Labels> = None;
        for set in &mut self.sets {
            match set.peek() {
                Some(Err(_)) => return set.next(),
                Some(Ok(s)) if smallest.as_ref().is_none_or(|m| s.labels < *m) => {
                    smallest = Some(s.labels.clone());
                }
                _ => {}
            }
        }
        let labels = smallest?;
        let mut parts = Vec::new();
        for set in &mut self.sets {
            if matches!(set.peek(), Some(Ok(s)) if s.labels == labels)
                && let Some(Ok(s)) = set.next()
            {
                parts.push(s.samples);
            }
        }
        let samples: Box<dyn SampleIterator> = if parts.len() == 1 {
            parts.pop()?
        } else {
            Box::new(MergeSampleIterator::new(parts))
        };
        Some(Ok(Series { labels, samples }))
    }
}

/// Walks several iterators of one series in timestamp order, dropping duplicate timestamps
/// (the earliest iterator in the list wins).
pub struct MergeSampleIterator {
    iters: Vec<Box<dyn SampleIterator>>,
    /// Whether the sources have been advanced to their first samples.
    started: bool,
    /// Index of the iterator whose sample is current.
    cur: Option<usize>,
    err: Option<StorageError>,
}

impl MergeSampleIterator {
    pub fn new(iters: Vec<Box<dyn SampleIterator>>) -> Self {
        MergeSampleIterator {
            iters,
            started: false,
            cur: None,
            err: None,
        }
    }

    /// Picks the iterator with the smallest current timestamp (lowest index on ties) and
    /// advances the others past that timestamp.
    fn pick(&mut self) -> Option<ValueKind> {
        let mut best: Option<(usize, Timestamp)> = None;
        for (i, it) in self.iters.iter().enumerate() {
            if it.current_kind().is_some() {
                let t = it.at_t();
                if best.is_none_or(|(_, bt)| t < bt) {
                    best = Some((i, t));
                }
            } else if self.err.is_none() {
                self.err = it.err();
            }
        }
        let (i, t) = best?;
        for (j, it) in self.iters.iter_mut().enumerate() {
            if j != i && it.current_kind().is_some() && it.at_t() == t {
                it.next();
            }
        }
        self.cur = Some(i);
        self.iters[i].current_kind()
    }
}

impl SampleIterator for MergeSampleIterator {
    fn next(&mut self) -> Option<ValueKind> {
        if !self.started {
            self.started = true;
            for it in &mut self.iters {
                it.next();
            }
        } else if let Some(i) = self.cur {
            self.iters[i].next();
        } else {
            return None;
        }
        let k = self.pick();
        if k.is_none() {
            self.cur = None;
        }
        k
    }

    fn seek(&mut self, t: Timestamp) -> Option<ValueKind> {
        if let Some(k) = self.current_kind()
            && self.at_t() >= t
        {
            return Some(k);
        }
        if self.started && self.cur.is_none() {
            return None;
        }
        self.started = true;
        for it in &mut self.iters {
            it.seek(t);
        }
        let k = self.pick();
        if k.is_none() {
            self.cur = None;
        }
        k
    }

    fn current_kind(&self) -> Option<ValueKind> {
        self.cur.and_then(|i| self.iters[i].current_kind())
    }

    fn at_t(&self) -> Timestamp {
        self.cur.map_or(i64::MIN, |i| self.iters[i].at_t())
    }

    fn at(&self) -> (Timestamp, f64) {
        self.cur
            .map_or((i64::MIN, f64::NAN), |i| self.iters[i].at())
    }

    fn at_histogram(&self) -> Option<(Timestamp, Arc<FloatHistogram>)> {
        self.cur.and_then(|i| self.iters[i].at_histogram())
    }

    fn err(&self) -> Option<StorageError> {
        self.err.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Queryable;
    use crate::memory::MemStorage;
    use crate::series::Value;
    use model::labels::Labels;

    fn collect(mut it: Box<dyn SampleIterator>) -> Vec<(i64, f64)> {
        let mut v = Vec::new();
        while it.next().is_some() {
            v.push(it.at());
        }
        v
    }

    #[test]
    fn merges_equal_series_and_prefers_the_first_source() {
        let a = MemStorage::new();
        let b = MemStorage::new();
        let x = Labels::from_static(&[("__name__", "x")]);
        let y = Labels::from_static(&[("__name__", "y")]);
        a.insert_samples(&x, [(1, Value::Float(1.0)), (3, Value::Float(3.0))]);
        b.insert_samples(
            &x,
            [
                (2, Value::Float(20.0)),
                (3, Value::Float(30.0)),
                (4, Value::Float(40.0)),
            ],
        );
        b.insert_samples(&y, [(1, Value::Float(7.0))]);
        let q = MergeQuerier::new(vec![a.querier(0, 10).unwrap(), b.querier(0, 10).unwrap()]);
        let series: Vec<Series> = q
            .select(true, None, &[])
            .unwrap()
            .map(|s| s.unwrap())
            .collect();
        assert_eq!(series.len(), 2);
        let mut it = series.into_iter();
        let sx = it.next().unwrap();
        assert_eq!(sx.labels, x);
        assert_eq!(
            collect(sx.samples),
            vec![(1, 1.0), (2, 20.0), (3, 3.0), (4, 40.0)]
        );
        let sy = it.next().unwrap();
        assert_eq!(collect(sy.samples), vec![(1, 7.0)]);
        assert_eq!(q.label_values("__name__", &[]).unwrap(), vec!["x", "y"]);
    }

    #[test]
    fn merged_seek() {
        let a = MemStorage::new();
        let b = MemStorage::new();
        let x = Labels::from_static(&[("__name__", "x")]);
        a.insert_samples(&x, (0..10).map(|t| (t * 10, Value::Float(t as f64))));
        b.insert_samples(&x, (0..10).map(|t| (t * 10 + 5, Value::Float(-(t as f64)))));
        let q = MergeQuerier::new(vec![
            a.querier(0, 1000).unwrap(),
            b.querier(0, 1000).unwrap(),
        ]);
        let mut s = q
            .select(true, None, &[])
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .samples;
        assert!(s.seek(42).is_some());
        assert_eq!(s.at(), (45, -4.0));
        assert!(s.seek(40).is_some(), "seek never goes back");
        assert_eq!(s.at_t(), 45);
        assert!(s.next().is_some());
        assert_eq!(s.at_t(), 50);
        assert!(s.seek(1000).is_none());
    }
}
