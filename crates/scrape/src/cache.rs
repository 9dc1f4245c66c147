//! The scrape cache of one target (Prometheus' `scrapeCache`): what each exposed series line
//! became last time, keyed by its raw bytes (`name{labels}` as written), so that an unchanged
//! line costs a hash lookup instead of label parsing, relabeling and label hashing.
//!
//! It also remembers lines that metric relabeling dropped, comment lines already validated,
//! and, per series, in which scrape ("iteration") it was last seen: series seen in the
//! previous scrape but not in this one get staleness markers.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use model::labels::Labels;
use storage::SeriesRef;

/// What one series line maps to.
#[derive(Debug, Clone)]
pub(crate) struct SeriesEntry {
    pub series_ref: Option<SeriesRef>,
    /// The final labels (target labels attached, metric relabeling applied).
    pub labels: Labels,
    pub hash: u64,
    /// The last scrape that saw this series (0: never in a successful one).
    pub last_iter: u64,
    /// `last_iter` before the current scrape touched it, to undo a failed scrape.
    pub prev_iter: u64,
    /// False for series with an explicit (honored) timestamp: Prometheus does not mark them
    /// stale unless `track_timestamps_staleness` is set.
    pub track_staleness: bool,
}

/// Hashes byte-string keys with one xxh3 call instead of SipHash's byte-at-a-time rounds.
#[derive(Clone, Copy, Default)]
pub(crate) struct BytesHasherBuilder;

#[derive(Default)]
pub(crate) struct BytesHasher(u64);

impl Hasher for BytesHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0 = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.0);
    }

    fn write_usize(&mut self, n: usize) {
        // The length prefix of slice keys: fold it in cheaply.
        self.0 ^= (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl BuildHasher for BytesHasherBuilder {
    type Hasher = BytesHasher;
    fn build_hasher(&self) -> BytesHasher {
        BytesHasher::default()
    }
}

pub(crate) type BytesMap<V> = HashMap<Box<[u8]>, V, BytesHasherBuilder>;

/// The cache of one target; it moves from loop to loop when a reload keeps the target.
#[derive(Default)]
pub struct ScrapeCache {
    pub(crate) series: BytesMap<SeriesEntry>,
    /// Lines metric relabeling dropped, with the last scrape that saw them.
    pub(crate) dropped: BytesMap<u64>,
    /// Comment lines (`# HELP`, `# TYPE`, ...) known to be valid, with the last scrape.
    pub(crate) comments: BytesMap<u64>,
    /// The current scrape's number; starts at 1 with the first scrape.
    pub(crate) iter: u64,
}

impl ScrapeCache {
    pub fn new() -> ScrapeCache {
        ScrapeCache::default()
    }

    /// Number of series lines cached.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// The cache for a loop whose settings changed what series are stored as: no line maps
    /// to its old labels any more, but the series of the last scrape are kept under their
    /// label sets, so that the next scrape marks the ones it no longer produces as stale
    /// (Prometheus drops the cache, and with it those markers).
    pub fn invalidated(self) -> ScrapeCache {
        let series = self
            .series
            .into_values()
            .map(|entry| (crate::append::rendered_key(&entry.labels), entry))
            .collect();
        ScrapeCache {
            series,
            dropped: BytesMap::default(),
            comments: BytesMap::default(),
            iter: self.iter,
        }
    }

    /// Starts a scrape.
    pub(crate) fn begin(&mut self) {
        self.iter += 1;
    }

    /// Records that `entry` was seen in scrape `iter`; false when it already was.
    pub(crate) fn mark_seen(entry: &mut SeriesEntry, iter: u64, track: bool) -> bool {
        if entry.last_iter == iter {
            // A repeated line within one scrape.
            entry.track_staleness |= track;
            return false;
        }
        entry.prev_iter = entry.last_iter;
        entry.last_iter = iter;
        entry.track_staleness = track;
        true
    }

    /// Undoes what a failed scrape recorded, so that staleness is judged against the last
    /// successful scrape.
    pub(crate) fn undo_scrape(&mut self) {
        // A walk over all entries, but only on failures: successful scrapes pay nothing.
        for entry in self.series.values_mut() {
            if entry.last_iter == self.iter {
                entry.last_iter = entry.prev_iter;
            }
        }
    }

    /// The series seen by the previous scrape and not by this one, which need staleness
    /// markers. A label set reached through two different lines counts as seen if either was.
    pub(crate) fn vanished(&self) -> Vec<(Option<SeriesRef>, Labels)> {
        let previous = self.iter.saturating_sub(1);
        if previous == 0 {
            return Vec::new();
        }
        let mut vanished: Vec<&SeriesEntry> = self
            .series
            .values()
            .filter(|e| e.last_iter == previous && e.track_staleness)
            .collect();
        if vanished.is_empty() {
            return Vec::new();
        }
        let seen_now: std::collections::HashSet<u64> = self
            .series
            .values()
            .filter(|e| e.last_iter == self.iter)
            .map(|e| e.hash)
            .collect();
        vanished.retain(|e| !seen_now.contains(&e.hash));
        vanished.sort_by_key(|e| e.hash);
        vanished.dedup_by_key(|e| e.hash);
        vanished
            .into_iter()
            .map(|e| (e.series_ref, e.labels.clone()))
            .collect()
    }

    /// After a successful scrape: forgets everything this scrape did not see (series churn
    /// and alternative spellings would otherwise grow the cache forever).
    pub(crate) fn flush_unseen(&mut self) {
        let iter = self.iter;
        self.series.retain(|_, e| e.last_iter == iter);
        self.dropped.retain(|_, last| *last == iter);
        self.comments.retain(|_, last| *last == iter);
    }
}
