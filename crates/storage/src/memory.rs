//! A complete in-memory storage, for tests and for the PromQL conformance runner.
//!
//! Same contract as the TSDB (ordering errors, atomic commits, matcher semantics, exemplar
//! validation) without durability or compression. Series are kept in a vector indexed by
//! [`SeriesRef`]; each keeps its newest [`MAX_EXEMPLARS_PER_SERIES`] exemplars.

use crate::series::{Series, SeriesSet, Value, VecSampleIterator};
use crate::{
    AppendError, Appendable, Appender, Exemplar, ExemplarQueryResult, ExemplarQueryable, Querier,
    Queryable, SelectHints, SeriesRef, StorageError, validate_exemplar,
};
use model::labels::Labels;
use model::matcher::{Matcher, matches_all};
use model::sample::Timestamp;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

#[derive(Default)]
struct Inner {
    series: Vec<MemSeries>,
    by_labels: HashMap<Labels, SeriesRef>,
}

/// Exemplars kept per series; older ones are dropped.
pub const MAX_EXEMPLARS_PER_SERIES: usize = 1000;

struct MemSeries {
    labels: Labels,
    samples: Vec<(Timestamp, Value)>,
    /// Oldest first.
    exemplars: Vec<Exemplar>,
}

/// The in-memory storage. Cloning shares the data.
#[derive(Clone, Default)]
pub struct MemStorage {
    inner: Arc<RwLock<Inner>>,
}

impl MemStorage {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops every series.
    pub fn clear(&self) {
        *self.write() = Inner::default();
    }

    /// Number of series with at least one sample.
    pub fn series_count(&self) -> usize {
        self.read()
            .series
            .iter()
            .filter(|s| !s.samples.is_empty())
            .count()
    }

    /// Merges samples into a series regardless of order; a sample at an existing timestamp
    /// replaces the old one. For loading test data, not for ingestion.
    pub fn insert_samples(
        &self,
        labels: &Labels,
        samples: impl IntoIterator<Item = (Timestamp, Value)>,
    ) {
        let mut inner = self.write();
        let r = series_ref(&mut inner, labels);
        let s = &mut inner.series[r as usize].samples;
        for (t, v) in samples {
            match s.binary_search_by_key(&t, |(st, _)| *st) {
                Ok(i) => s[i].1 = v,
                Err(i) => s.insert(i, (t, v)),
            }
        }
    }
}

fn series_ref(inner: &mut Inner, labels: &Labels) -> SeriesRef {
    if let Some(r) = inner.by_labels.get(labels) {
        return *r;
    }
    let r = inner.series.len() as SeriesRef;
    inner.series.push(MemSeries {
        labels: labels.clone(),
        samples: Vec::new(),
        exemplars: Vec::new(),
    });
    inner.by_labels.insert(labels.clone(), r);
    r
}

impl Appendable for MemStorage {
    fn appender(&self) -> Box<dyn Appender> {
        Box::new(MemAppender {
            storage: self.clone(),
            pending: Vec::new(),
            last: HashMap::new(),
            exemplars: Vec::new(),
        })
    }
}

/// Buffers a batch; `commit` applies it under one write lock.
struct MemAppender {
    storage: MemStorage,
    pending: Vec<(SeriesRef, Timestamp, f64)>,
    /// Last (timestamp, value bits) per series within this batch.
    last: HashMap<SeriesRef, (Timestamp, u64)>,
    /// Exemplars of the batch, in append order.
    exemplars: Vec<(SeriesRef, Exemplar)>,
}

impl Appender for MemAppender {
    fn append(
        &mut self,
        series: Option<SeriesRef>,
        labels: &Labels,
        t: Timestamp,
        v: f64,
    ) -> Result<SeriesRef, AppendError> {
        if labels.is_empty() {
            return Err(AppendError::InvalidLabels("empty label set".into()));
        }
        let r = {
            let mut inner = self.storage.write();
            match series {
                Some(r)
                    if inner
                        .series
                        .get(r as usize)
                        .is_some_and(|s| &s.labels == labels) =>
                {
                    r
                }
                _ => series_ref(&mut inner, labels),
            }
        };
        let last = match self.last.get(&r) {
            Some(l) => Some(*l),
            None => {
                let inner = self.storage.read();
                inner.series[r as usize].samples.last().map(|(lt, lv)| {
                    let bits = match lv {
                        Value::Float(f) => f.to_bits(),
                        Value::Histogram(_) => u64::MAX,
                    };
                    (*lt, bits)
                })
            }
        };
        if !crate::check_append_order(last, t, v)? {
            return Ok(r);
        }
        self.pending.push((r, t, v));
        self.last.insert(r, (t, v.to_bits()));
        Ok(r)
    }

    fn append_exemplar(
        &mut self,
        series: Option<SeriesRef>,
        labels: &Labels,
        exemplar: &Exemplar,
    ) -> Result<SeriesRef, AppendError> {
        let r = {
            let inner = self.storage.read();
            let by_ref = series.filter(|r| {
                inner
                    .series
                    .get(*r as usize)
                    .is_some_and(|s| &s.labels == labels)
            });
            match by_ref.or_else(|| inner.by_labels.get(labels).copied()) {
                Some(r) => r,
                None => return Err(AppendError::ExemplarForUnknownSeries(labels.to_string())),
            }
        };
        let newest = match self.exemplars.iter().rev().find(|(s, _)| *s == r) {
            Some((_, e)) => Some(e.clone()),
            None => self.storage.read().series[r as usize]
                .exemplars
                .last()
                .cloned(),
        };
        match validate_exemplar(newest.as_ref(), exemplar) {
            Ok(()) => {}
            Err(AppendError::DuplicateExemplar) => return Ok(r),
            Err(e) => return Err(e),
        }
        self.exemplars.push((r, exemplar.clone()));
        Ok(r)
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        let mut inner = self.storage.write();
        for (r, t, v) in self.pending.drain(..) {
            inner.series[r as usize].samples.push((t, Value::Float(v)));
        }
        for (r, e) in self.exemplars.drain(..) {
            let list = &mut inner.series[r as usize].exemplars;
            // Another batch may have stored newer exemplars since this one was validated.
            if validate_exemplar(list.last(), &e).is_err() {
                continue;
            }
            if list.len() >= MAX_EXEMPLARS_PER_SERIES {
                list.remove(0);
            }
            list.push(e);
        }
        self.last.clear();
        Ok(())
    }

    fn rollback(&mut self) -> Result<(), StorageError> {
        self.pending.clear();
        self.last.clear();
        self.exemplars.clear();
        Ok(())
    }
}

impl ExemplarQueryable for MemStorage {
    fn select_exemplars(
        &self,
        start: Timestamp,
        end: Timestamp,
        matcher_sets: &[Vec<Matcher>],
    ) -> Result<Vec<ExemplarQueryResult>, StorageError> {
        let inner = self.read();
        let mut out: Vec<ExemplarQueryResult> = inner
            .series
            .iter()
            .filter(|s| matcher_sets.iter().any(|m| matches_all(m, &s.labels)))
            .filter_map(|s| {
                let exemplars: Vec<Exemplar> = s
                    .exemplars
                    .iter()
                    .filter(|e| e.ts >= start && e.ts <= end)
                    .cloned()
                    .collect();
                (!exemplars.is_empty()).then(|| ExemplarQueryResult {
                    series_labels: s.labels.clone(),
                    exemplars,
                })
            })
            .collect();
        out.sort_by(|a, b| a.series_labels.cmp(&b.series_labels));
        Ok(out)
    }
}

impl Queryable for MemStorage {
    fn querier(&self, mint: Timestamp, maxt: Timestamp) -> Result<Box<dyn Querier>, StorageError> {
        Ok(Box::new(MemQuerier {
            storage: self.clone(),
            mint,
            maxt,
        }))
    }
}

struct MemQuerier {
    storage: MemStorage,
    mint: Timestamp,
    maxt: Timestamp,
}

impl MemQuerier {
    /// Series matching `matchers` that have samples in range, as (labels, samples in range).
    fn matching(&self, matchers: &[Matcher]) -> Vec<(Labels, Vec<(Timestamp, Value)>)> {
        let inner = self.storage.read();
        inner
            .series
            .iter()
            .filter(|s| matches_all(matchers, &s.labels))
            .filter_map(|s| {
                let lo = s.samples.partition_point(|(t, _)| *t < self.mint);
                let hi = s.samples.partition_point(|(t, _)| *t <= self.maxt);
                (lo < hi).then(|| (s.labels.clone(), s.samples[lo..hi].to_vec()))
            })
            .collect()
    }
}

impl Querier for MemQuerier {
    fn select(
        &self,
        sorted: bool,
        _hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<SeriesSet, StorageError> {
        let mut found = self.matching(matchers);
        if sorted {
            found.sort_by(|a, b| a.0.cmp(&b.0));
        }
        Ok(Box::new(found.into_iter().map(|(labels, samples)| {
            Ok(Series {
                labels,
                samples: Box::new(VecSampleIterator::from_vec(samples)),
            })
        })))
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let set: BTreeSet<String> = self
            .matching(matchers)
            .iter()
            .filter_map(|(l, _)| l.get(name).map(str::to_string))
            .collect();
        Ok(set.into_iter().collect())
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let set: BTreeSet<String> = self
            .matching(matchers)
            .iter()
            .flat_map(|(l, _)| l.iter().map(|l| l.name.to_string()).collect::<Vec<_>>())
            .collect();
        Ok(set.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::matcher::MatchOp;

    fn lbl(name: &str, job: &str) -> Labels {
        Labels::from_static(&[("__name__", name), ("job", job)])
    }

    #[test]
    fn append_commit_select() {
        let s = MemStorage::new();
        let mut app = s.appender();
        let r = app.append(None, &lbl("up", "a"), 10, 1.0).unwrap();
        app.append(Some(r), &lbl("up", "a"), 20, 2.0).unwrap();
        app.append(None, &lbl("up", "b"), 10, 5.0).unwrap();
        app.append(None, &lbl("down", "a"), 10, 5.0).unwrap();
        // Nothing visible before commit.
        let q = s.querier(0, 100).unwrap();
        assert_eq!(
            q.select(true, None, &[Matcher::equal("__name__", "up")])
                .unwrap()
                .count(),
            0
        );
        app.commit().unwrap();
        let q = s.querier(15, 100).unwrap();
        let set: Vec<Series> = q
            .select(true, None, &[Matcher::equal("__name__", "up")])
            .unwrap()
            .map(|s| s.unwrap())
            .collect();
        assert_eq!(set.len(), 1, "series b has no sample in range");
        let mut it = set.into_iter().next().unwrap().samples;
        assert!(it.next().is_some());
        assert_eq!(it.at(), (20, 2.0));
        assert_eq!(q.label_values("job", &[]).unwrap(), vec!["a".to_string()]);
        let q = s.querier(0, 100).unwrap();
        assert_eq!(
            q.label_values("job", &[]).unwrap(),
            vec!["a".to_string(), "b".to_string()]
        );
        assert_eq!(
            q.label_names(&[Matcher::new(MatchOp::RegexMatch, "job", "b").unwrap()])
                .unwrap(),
            vec!["__name__", "job"]
        );
    }

    #[test]
    fn exemplars_commit_dedupe_and_query() {
        let s = MemStorage::new();
        let ex = |trace: &str, ts| Exemplar {
            labels: Labels::from_static(&[("trace_id", trace)]),
            value: 1.0,
            ts,
        };
        let mut app = s.appender();
        let r = app.append(None, &lbl("up", "a"), 10, 1.0).unwrap();
        assert!(matches!(
            app.append_exemplar(None, &lbl("up", "zzz"), &ex("t", 10)),
            Err(AppendError::ExemplarForUnknownSeries(_))
        ));
        app.append_exemplar(Some(r), &lbl("up", "a"), &ex("t1", 10))
            .unwrap();
        // A repeat within the batch is ignored; an older one is refused.
        app.append_exemplar(None, &lbl("up", "a"), &ex("t1", 10))
            .unwrap();
        assert_eq!(
            app.append_exemplar(None, &lbl("up", "a"), &ex("t0", 5)),
            Err(AppendError::OutOfOrderExemplar)
        );
        let all = [vec![Matcher::equal("__name__", "up")]];
        assert!(s.select_exemplars(0, 100, &all).unwrap().is_empty());
        app.commit().unwrap();
        let mut app = s.appender();
        app.append_exemplar(None, &lbl("up", "a"), &ex("t2", 20))
            .unwrap();
        app.rollback().unwrap();
        let mut app = s.appender();
        app.append_exemplar(None, &lbl("up", "a"), &ex("t3", 30))
            .unwrap();
        app.commit().unwrap();
        let got = s.select_exemplars(0, 100, &all).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].series_labels, lbl("up", "a"));
        assert_eq!(got[0].exemplars, vec![ex("t1", 10), ex("t3", 30)]);
        assert_eq!(
            s.select_exemplars(11, 100, &all).unwrap()[0]
                .exemplars
                .len(),
            1
        );
        assert!(s.select_exemplars(31, 100, &all).unwrap().is_empty());
    }

    #[test]
    fn ordering_errors_and_rollback() {
        let s = MemStorage::new();
        let mut app = s.appender();
        app.append(None, &lbl("x", "a"), 10, 1.0).unwrap();
        assert_eq!(
            app.append(None, &lbl("x", "a"), 5, 1.0),
            Err(AppendError::OutOfOrder)
        );
        assert_eq!(
            app.append(None, &lbl("x", "a"), 10, 2.0),
            Err(AppendError::DuplicateTimestamp)
        );
        assert!(
            app.append(None, &lbl("x", "a"), 10, 1.0).is_ok(),
            "same value again is fine"
        );
        app.commit().unwrap();
        let mut app = s.appender();
        assert_eq!(
            app.append(None, &lbl("x", "a"), 9, 1.0),
            Err(AppendError::OutOfOrder)
        );
        app.append(None, &lbl("x", "a"), 11, 1.0).unwrap();
        app.rollback().unwrap();
        let q = s.querier(0, 100).unwrap();
        let mut series = q.select(false, None, &[]).unwrap();
        let mut it = series.next().unwrap().unwrap().samples;
        let mut n = 0;
        while it.next().is_some() {
            n += 1;
        }
        assert_eq!(n, 1);
    }
}
