//! The head's appender: buffers a batch (samples and exemplars), writes it to the WAL on
//! commit, then applies it.

use super::HeadInner;
use super::series::{MemSeries, SeriesData};
use crate::wal::record::{self, RefExemplar, RefSample};
use model::labels::Labels;
use model::sample::Timestamp;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use storage::{AppendError, Appender, Exemplar, SeriesRef, StorageError};

/// An exemplar of the batch with its series and the series' labels (the exemplar storage's
/// key).
struct PendingExemplar {
    series: Arc<MemSeries>,
    series_labels: Labels,
    exemplar: Exemplar,
}

/// A batch of samples for the head.
pub struct HeadAppender {
    head: Arc<HeadInner>,
    samples: Vec<(Arc<MemSeries>, Timestamp, f64)>,
    /// Last (timestamp, value bits) per series id within this batch.
    batch_last: HashMap<u32, (Timestamp, u64)>,
    exemplars: Vec<PendingExemplar>,
    buf: Vec<u8>,
}

impl HeadAppender {
    pub(super) fn new(head: Arc<HeadInner>) -> Self {
        HeadAppender {
            head,
            samples: Vec::new(),
            batch_last: HashMap::new(),
            exemplars: Vec::new(),
            buf: Vec::new(),
        }
    }

    fn validate(labels: &Labels) -> Result<(), AppendError> {
        if labels.is_empty() {
            return Err(AppendError::InvalidLabels("empty label set".into()));
        }
        if labels.iter().any(|l| l.name.is_empty()) {
            return Err(AppendError::InvalidLabels("empty label name".into()));
        }
        Ok(())
    }
}

impl Appender for HeadAppender {
    fn append(
        &mut self,
        series: Option<SeriesRef>,
        labels: &Labels,
        t: Timestamp,
        v: f64,
    ) -> Result<SeriesRef, AppendError> {
        let s = match self.hinted(series, t)? {
            Some(s) => s,
            None => {
                Self::validate(labels)?;
                self.head.get_or_create(labels)
            }
        };
        self.append_to(s, t, v)
    }

    fn append_pairs(
        &mut self,
        series: Option<SeriesRef>,
        pairs: &[(&str, &str)],
        t: Timestamp,
        v: f64,
    ) -> Result<SeriesRef, AppendError> {
        if let Some(s) = self.hinted(series, t)? {
            return self.append_to(s, t, v);
        }
        if pairs.is_empty() {
            return Err(AppendError::InvalidLabels("empty label set".into()));
        }
        if pairs.iter().any(|(n, _)| n.is_empty()) {
            return Err(AppendError::InvalidLabels("empty label name".into()));
        }
        // An existing series is found without building a label set.
        let s = match self
            .head
            .find_by_pairs(model::labels::hash_pairs(pairs), pairs)
        {
            Some(s) => s,
            None => {
                let labels = Labels::from_pairs(pairs.iter().copied())
                    .map_err(|e| AppendError::InvalidLabels(e.to_string()))?;
                self.head.get_or_create(&labels)
            }
        };
        self.append_to(s, t, v)
    }

    fn append_exemplar(
        &mut self,
        series: Option<SeriesRef>,
        labels: &Labels,
        exemplar: &Exemplar,
    ) -> Result<SeriesRef, AppendError> {
        if !self.head.exemplars.enabled() {
            return Ok(series.unwrap_or(0));
        }
        let s = series
            .and_then(|r| u32::try_from(r).ok())
            .and_then(|id| self.head.get(id))
            .or_else(|| self.head.lookup(labels))
            .ok_or_else(|| AppendError::ExemplarForUnknownSeries(labels.to_string()))?;
        let series_labels = self.head.labels_of(&s);
        let newest = match self.exemplars.iter().rev().find(|p| p.series.id == s.id) {
            Some(p) => Some(p.exemplar.clone()),
            None => self.head.exemplars.newest(&series_labels),
        };
        match storage::validate_exemplar(newest.as_ref(), exemplar) {
            Ok(()) => {}
            Err(AppendError::DuplicateExemplar) => return Ok(u64::from(s.id)),
            Err(e) => return Err(e),
        }
        let id = s.id;
        self.exemplars.push(PendingExemplar {
            series: s,
            series_labels,
            exemplar: exemplar.clone(),
        });
        Ok(u64::from(id))
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        if self.samples.is_empty() && self.exemplars.is_empty() {
            return Ok(());
        }
        if self.head.closed.load(Ordering::Acquire) {
            self.rollback()?;
            return Err(StorageError::Closed);
        }
        // WAL first: series records for series never logged, then the samples, then the
        // exemplars.
        self.buf.clear();
        let mut unlogged: Vec<&Arc<MemSeries>> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let batch_series = self
            .samples
            .iter()
            .map(|(s, _, _)| s)
            .chain(self.exemplars.iter().map(|p| &p.series));
        for s in batch_series {
            if !s.wal_logged.load(Ordering::Acquire) && seen.insert(s.id) {
                unlogged.push(s);
            }
        }
        let series_labels: Vec<(u64, Labels)> = unlogged
            .iter()
            .map(|s| (u64::from(s.id), self.head.labels_of(s)))
            .collect();
        let mut series_rec = Vec::new();
        if !series_labels.is_empty() {
            record::encode_series(
                series_labels.iter().map(|(id, l)| (*id, l)),
                &mut series_rec,
            );
        }
        let refs: Vec<RefSample> = self
            .samples
            .iter()
            .map(|(s, t, v)| RefSample {
                id: u64::from(s.id),
                t: *t,
                v: *v,
            })
            .collect();
        record::encode_samples(&refs, &mut self.buf);
        let mut exemplars_rec = Vec::new();
        let ref_exemplars: Vec<RefExemplar> = self
            .exemplars
            .iter()
            .map(|p| RefExemplar {
                id: u64::from(p.series.id),
                t: p.exemplar.ts,
                v: p.exemplar.value,
                labels: p.exemplar.labels.clone(),
            })
            .collect();
        record::encode_exemplars(&ref_exemplars, &mut exemplars_rec);
        // Samples are applied while the WAL lock is held, so memory sees batches in WAL order
        // and a replay reproduces exactly what was accepted live.
        let mut wal = self.head.wal.lock().unwrap_or_else(|e| e.into_inner());
        let Some(w) = wal.as_mut() else {
            drop(wal);
            self.rollback()?;
            return Err(StorageError::Closed);
        };
        let mut records: Vec<&[u8]> = Vec::with_capacity(3);
        for rec in [&series_rec, &self.buf, &exemplars_rec] {
            if !rec.is_empty() {
                records.push(rec);
            }
        }
        if let Err(e) = w.log(&records) {
            drop(wal);
            self.rollback()?;
            return Err(StorageError::Io(format!("writing the WAL: {e}")));
        }
        for s in unlogged {
            s.wal_logged.store(true, Ordering::Release);
        }
        for (s, t, v) in self.samples.drain(..) {
            self.head.apply(&s, t, v);
        }
        for p in self.exemplars.drain(..) {
            // Refusals (another batch stored a newer exemplar since) are counted there.
            let _ = self.head.exemplars.add(&p.series_labels, p.exemplar);
        }
        drop(wal);
        self.batch_last.clear();
        Ok(())
    }

    fn rollback(&mut self) -> Result<(), StorageError> {
        self.samples.clear();
        self.batch_last.clear();
        self.exemplars.clear();
        Ok(())
    }
}

impl HeadAppender {
    /// What every append checks first: `t` within the head's bounds, then the series a
    /// reference from an earlier append names. The reference is trusted (the scrape cache
    /// passes it back), as Prometheus does; an unknown one gives `None`, and the caller falls
    /// back to the labels.
    fn hinted(
        &self,
        series: Option<SeriesRef>,
        t: Timestamp,
    ) -> Result<Option<Arc<MemSeries>>, AppendError> {
        if t < self.head.min_valid_time() {
            self.head
                .stats
                .out_of_bounds
                .fetch_add(1, Ordering::Relaxed);
            return Err(AppendError::OutOfBounds);
        }
        Ok(series
            .and_then(|r| u32::try_from(r).ok())
            .and_then(|id| self.head.get(id)))
    }

    /// Adds a sample to series `s` of this batch, checking order against the series and the
    /// batch.
    fn append_to(
        &mut self,
        s: Arc<MemSeries>,
        t: Timestamp,
        v: f64,
    ) -> Result<SeriesRef, AppendError> {
        let last = match self.batch_last.get(&s.id) {
            Some(l) => Some(*l),
            None => s.data.lock().unwrap_or_else(|e| e.into_inner()).last(),
        };
        match SeriesData::check(last, t, v) {
            Ok(true) => {}
            Ok(false) => return Ok(u64::from(s.id)),
            Err(e) => {
                let counter = match e {
                    AppendError::OutOfOrder => &self.head.stats.out_of_order,
                    _ => &self.head.stats.duplicates,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        }
        self.batch_last.insert(s.id, (t, v.to_bits()));
        let id = s.id;
        self.samples.push((s, t, v));
        Ok(u64::from(id))
    }
}
