//! The head's exemplar storage (Prometheus' `CircularExemplarStorage`): one ring buffer of at
//! most `max_exemplars` exemplars shared by all series, the oldest overwritten first, and an
//! index from series labels to the oldest and newest of that series' exemplars, which are
//! chained oldest to newest through the ring.
//!
//! Exemplars are keyed by series labels, not series ids, so they outlive their series in the
//! head (as in Prometheus) and a resize or replay needs no id mapping. Validation follows
//! `storage::validate_exemplar` against the series' newest exemplar. Capacity 0 disables the
//! storage: nothing is kept, and appenders do not even log exemplars to the WAL.
//!
//! The ring grows to its capacity as exemplars arrive instead of being allocated up front.

use model::labels::Labels;
use model::matcher::{Matcher, matches_all};
use model::sample::Timestamp;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use storage::{AppendError, Exemplar, ExemplarQueryResult, validate_exemplar};

/// Prometheus' `max_exemplars` default when exemplar storage is enabled.
pub const DEFAULT_MAX_EXEMPLARS: usize = 100_000;

struct Entry {
    exemplar: Exemplar,
    series: Labels,
    /// The next (newer) exemplar of the same series.
    next: Option<usize>,
}

#[derive(Clone, Copy)]
struct SeriesSlots {
    oldest: usize,
    newest: usize,
}

#[derive(Default)]
struct Ring {
    capacity: usize,
    /// At most `capacity` long; full once it is.
    entries: Vec<Entry>,
    /// Where the next exemplar goes once the ring is full (the oldest entry).
    next: usize,
    index: HashMap<Labels, SeriesSlots>,
}

impl Ring {
    fn with_capacity(capacity: usize) -> Ring {
        Ring {
            capacity,
            ..Ring::default()
        }
    }

    fn newest(&self, series: &Labels) -> Option<&Exemplar> {
        self.index
            .get(series)
            .and_then(|s| self.entries.get(s.newest))
            .map(|e| &e.exemplar)
    }

    /// Stores `e` without validation, overwriting the oldest entry when full.
    fn push(&mut self, series: &Labels, e: Exemplar) {
        if self.capacity == 0 {
            return;
        }
        let slot = if self.entries.len() < self.capacity {
            self.entries.push(Entry {
                exemplar: e.clone(),
                series: series.clone(),
                next: None,
            });
            self.entries.len() - 1
        } else {
            let slot = self.next;
            // The overwritten entry is its series' oldest.
            let old = &self.entries[slot];
            match old.next {
                None => {
                    self.index.remove(&old.series);
                }
                Some(n) => {
                    if let Some(s) = self.index.get_mut(&old.series) {
                        s.oldest = n;
                    }
                }
            }
            self.next = (slot + 1) % self.capacity;
            slot
        };
        match self.index.get_mut(series) {
            Some(s) => {
                let prev = s.newest;
                s.newest = slot;
                if prev != slot
                    && let Some(p) = self.entries.get_mut(prev)
                {
                    p.next = Some(slot);
                }
            }
            None => {
                self.index.insert(
                    series.clone(),
                    SeriesSlots {
                        oldest: slot,
                        newest: slot,
                    },
                );
            }
        }
        let entry = &mut self.entries[slot];
        entry.exemplar = e;
        entry.series = series.clone();
        entry.next = None;
    }

    /// Entries from oldest to newest.
    fn in_order(&self) -> impl Iterator<Item = &Entry> {
        let split = if self.entries.len() < self.capacity {
            0
        } else {
            self.next
        };
        self.entries[split..].iter().chain(&self.entries[..split])
    }
}

/// Counters and gauges under Prometheus' `prometheus_tsdb_exemplar_*` names.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct ExemplarStats {
    /// `prometheus_tsdb_exemplar_exemplars_appended_total`.
    pub appended: u64,
    /// `prometheus_tsdb_exemplar_out_of_order_exemplars_total`.
    pub out_of_order: u64,
    /// `prometheus_tsdb_exemplar_exemplars_in_storage`.
    pub in_storage: usize,
    /// `prometheus_tsdb_exemplar_series_with_exemplars_in_storage`.
    pub series: usize,
    /// `prometheus_tsdb_exemplar_max_exemplars`.
    pub max: usize,
    /// `prometheus_tsdb_exemplar_last_exemplars_timestamp_seconds` in milliseconds: the
    /// oldest stored exemplar's timestamp (0 when empty).
    pub oldest_ts: Timestamp,
}

/// The exemplar storage of a head.
pub struct ExemplarStorage {
    ring: Mutex<Ring>,
    appended: AtomicU64,
    out_of_order: AtomicU64,
}

impl ExemplarStorage {
    pub fn new(capacity: usize) -> ExemplarStorage {
        ExemplarStorage {
            ring: Mutex::new(Ring::with_capacity(capacity)),
            appended: AtomicU64::new(0),
            out_of_order: AtomicU64::new(0),
        }
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// False when the capacity is 0.
    pub fn enabled(&self) -> bool {
        self.ring().capacity > 0
    }

    /// The series' newest exemplar.
    pub fn newest(&self, series: &Labels) -> Option<Exemplar> {
        self.ring().newest(series).cloned()
    }

    /// Validates and stores `e` for `series`. A duplicate of the newest is `Ok` (nothing
    /// stored); an out-of-order exemplar is counted.
    pub fn add(&self, series: &Labels, e: Exemplar) -> Result<(), AppendError> {
        let mut ring = self.ring();
        if ring.capacity == 0 {
            return Ok(());
        }
        match validate_exemplar(ring.newest(series), &e) {
            Ok(()) => {}
            Err(AppendError::DuplicateExemplar) => return Ok(()),
            Err(err) => {
                if err == AppendError::OutOfOrderExemplar {
                    self.out_of_order.fetch_add(1, Ordering::Relaxed);
                }
                return Err(err);
            }
        }
        ring.push(series, e);
        drop(ring);
        self.appended.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Changes the capacity, keeping the newest exemplars that fit; returns how many were
    /// kept. 0 disables the storage and drops everything.
    pub fn resize(&self, capacity: usize) -> usize {
        let mut ring = self.ring();
        if capacity == ring.capacity {
            return 0;
        }
        let old = std::mem::take(&mut *ring);
        let keep = old.entries.len().min(capacity);
        let skip = old.entries.len() - keep;
        let mut new = Ring::with_capacity(capacity);
        for e in old.in_order().skip(skip) {
            new.push(&e.series, e.exemplar.clone());
        }
        *ring = new;
        keep
    }

    /// The exemplars in `[start, end]` of the series matching any of `matcher_sets`, sorted
    /// by series labels.
    pub fn select(
        &self,
        start: Timestamp,
        end: Timestamp,
        matcher_sets: &[Vec<Matcher>],
    ) -> Vec<ExemplarQueryResult> {
        let ring = self.ring();
        let mut out = Vec::new();
        for (series, slots) in &ring.index {
            if !matcher_sets.iter().any(|m| matches_all(m, series)) {
                continue;
            }
            let mut exemplars = Vec::new();
            let mut at = Some(slots.oldest);
            while let Some(i) = at {
                let Some(e) = ring.entries.get(i) else { break };
                if e.exemplar.ts > end {
                    break;
                }
                if e.exemplar.ts >= start {
                    exemplars.push(e.exemplar.clone());
                }
                // A chain never revisits its start; stop there should it ever loop.
                at = e.next.filter(|n| *n != slots.oldest);
            }
            if !exemplars.is_empty() {
                out.push(ExemplarQueryResult {
                    series_labels: series.clone(),
                    exemplars,
                });
            }
        }
        drop(ring);
        out.sort_by(|a, b| a.series_labels.cmp(&b.series_labels));
        out
    }

    pub fn stats(&self) -> ExemplarStats {
        let ring = self.ring();
        ExemplarStats {
            appended: self.appended.load(Ordering::Relaxed),
            out_of_order: self.out_of_order.load(Ordering::Relaxed),
            in_storage: ring.entries.len(),
            series: ring.index.len(),
            max: ring.capacity,
            oldest_ts: ring.in_order().next().map_or(0, |e| e.exemplar.ts),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(n: &str) -> Labels {
        Labels::from_static(&[("__name__", n)])
    }

    fn ex(trace: &str, ts: i64) -> Exemplar {
        Exemplar {
            labels: Labels::from_static(&[("trace_id", trace)]),
            value: ts as f64,
            ts,
        }
    }

    fn all() -> Vec<Vec<Matcher>> {
        vec![vec![
            Matcher::new(model::matcher::MatchOp::RegexMatch, "__name__", ".+").unwrap(),
        ]]
    }

    fn traces(s: &ExemplarStorage, start: i64, end: i64) -> Vec<(String, Vec<i64>)> {
        s.select(start, end, &all())
            .into_iter()
            .map(|r| {
                (
                    r.series_labels.get_or_empty("__name__").to_string(),
                    r.exemplars.iter().map(|e| e.ts).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn ring_overwrites_the_oldest_and_keeps_chains() {
        let s = ExemplarStorage::new(3);
        s.add(&series("a"), ex("1", 1)).unwrap();
        s.add(&series("b"), ex("2", 2)).unwrap();
        s.add(&series("a"), ex("3", 3)).unwrap();
        assert_eq!(
            traces(&s, 0, 100),
            vec![("a".into(), vec![1, 3]), ("b".into(), vec![2])]
        );
        // Overwrites a@1, then b@2 (b's only one: b disappears), then a@3.
        s.add(&series("a"), ex("4", 4)).unwrap();
        s.add(&series("c"), ex("5", 5)).unwrap();
        assert_eq!(
            traces(&s, 0, 100),
            vec![("a".into(), vec![3, 4]), ("c".into(), vec![5])]
        );
        s.add(&series("c"), ex("6", 6)).unwrap();
        assert_eq!(
            traces(&s, 0, 100),
            vec![("a".into(), vec![4]), ("c".into(), vec![5, 6])]
        );
        assert_eq!(traces(&s, 5, 5), vec![("c".into(), vec![5])]);
        let st = s.stats();
        assert_eq!(
            (st.appended, st.in_storage, st.series, st.max),
            (6, 3, 2, 3)
        );
        assert_eq!(st.oldest_ts, 4);
        // Capacity 1 with one series: its only exemplar is replaced each time.
        let one = ExemplarStorage::new(1);
        for t in 1..=3 {
            one.add(&series("a"), ex("x", t)).unwrap();
        }
        assert_eq!(traces(&one, 0, 10), vec![("a".into(), vec![3])]);
    }

    #[test]
    fn validation_and_counters() {
        let s = ExemplarStorage::new(10);
        s.add(&series("a"), ex("1", 10)).unwrap();
        s.add(&series("a"), ex("1", 10)).unwrap(); // duplicate: ignored
        assert_eq!(
            s.add(&series("a"), ex("0", 5)),
            Err(AppendError::OutOfOrderExemplar)
        );
        let st = s.stats();
        assert_eq!((st.appended, st.out_of_order, st.in_storage), (1, 1, 1));
        let off = ExemplarStorage::new(0);
        assert!(!off.enabled());
        off.add(&series("a"), ex("1", 1)).unwrap();
        assert!(traces(&off, 0, 10).is_empty());
    }

    #[test]
    fn resize_keeps_the_newest() {
        let s = ExemplarStorage::new(4);
        for t in 1..=6 {
            let name = if t % 2 == 0 { "a" } else { "b" };
            s.add(&series(name), ex("x", t)).unwrap();
        }
        assert_eq!(s.resize(3), 3);
        assert_eq!(
            traces(&s, 0, 100),
            vec![("a".into(), vec![4, 6]), ("b".into(), vec![5])]
        );
        assert_eq!(s.resize(10), 3);
        s.add(&series("a"), ex("y", 7)).unwrap();
        assert_eq!(traces(&s, 0, 100)[0].1, vec![4, 6, 7]);
        assert_eq!(s.resize(0), 0);
        assert!(traces(&s, 0, 100).is_empty());
        assert_eq!(s.stats().max, 0);
    }
}
