//! The scrape cache of one target (Prometheus' `scrapeCache`): what each exposed series line
//! became last time, keyed by its raw bytes (`name{labels}` as written), so that an unchanged
//! line costs a hash lookup instead of label parsing, relabeling and label hashing.
//!
//! It also remembers lines that metric relabeling dropped, comment lines already validated
//! (with the metadata they carry), and, per series, in which scrape ("iteration") it was last
//! seen: series seen in the previous scrape but not in this one get staleness markers.
//!
//! Metadata (`# TYPE`, `# HELP`, `# UNIT` per metric family) lives in a [`MetadataStore`]
//! shared with the scrape manager, which answers the metadata APIs and feeds remote write. As
//! in Prometheus, an entry is kept for 10 successful scrapes after its family was last seen,
//! and a failed scrape changes nothing but what it already read.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};

use model::exposition::{MetricMetadata, MetricType};
use model::labels::Labels;
use storage::SeriesRef;

/// Successful scrapes a family's metadata outlives its last appearance (Prometheus' value).
const METADATA_KEEP_SCRAPES: u64 = 10;

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

/// What a metadata comment line sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MetaField {
    Type(MetricType),
    Help(Box<str>),
    Unit(Box<str>),
}

/// A `# TYPE`/`# HELP`/`# UNIT` line, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MetaLine {
    pub family: Box<str>,
    pub field: MetaField,
}

/// A comment line known to be valid.
#[derive(Debug, Clone)]
pub(crate) struct CommentEntry {
    /// The last scrape that saw it.
    pub last_iter: u64,
    pub meta: Option<MetaLine>,
}

#[derive(Debug, Clone)]
struct MetaEntry {
    kind: MetricType,
    help: String,
    unit: String,
    /// The successful-scrape count when the family was last seen.
    last_seen: u64,
}

/// The metadata of one target's metric families.
#[derive(Debug, Default)]
pub struct MetadataStore {
    entries: HashMap<String, MetaEntry>,
}

impl MetadataStore {
    fn set(&mut self, line: &MetaLine, now: u64) {
        let e = match self.entries.get_mut(&*line.family) {
            Some(e) => e,
            None => self
                .entries
                .entry(line.family.to_string())
                .or_insert(MetaEntry {
                    kind: MetricType::Unknown,
                    help: String::new(),
                    unit: String::new(),
                    last_seen: now,
                }),
        };
        match &line.field {
            MetaField::Type(t) => e.kind = *t,
            MetaField::Help(h) if *e.help != **h => e.help = h.to_string(),
            MetaField::Unit(u) if *e.unit != **u => e.unit = u.to_string(),
            _ => {}
        }
        e.last_seen = now;
    }

    /// Every family, sorted by name.
    pub fn list(&self) -> Vec<MetricMetadata> {
        let mut out: Vec<MetricMetadata> = self
            .entries
            .iter()
            .map(|(family, e)| MetricMetadata {
                family: family.clone(),
                kind: e.kind,
                help: e.help.clone(),
                unit: e.unit.clone(),
            })
            .collect();
        out.sort();
        out
    }

    /// One family, by the name its comment lines use.
    pub fn get(&self, family: &str) -> Option<MetricMetadata> {
        self.entries.get(family).map(|e| MetricMetadata {
            family: family.to_string(),
            kind: e.kind,
            help: e.help.clone(),
            unit: e.unit.clone(),
        })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The memory the metadata takes, estimated as Prometheus does: the lengths of each
    /// family's help, unit and type (its name is not counted).
    pub fn size_bytes(&self) -> usize {
        self.entries
            .values()
            .map(|e| e.help.len() + e.unit.len() + e.kind.as_api_str().len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A target's metadata, shared between its loop and the manager.
pub type SharedMetadata = Arc<Mutex<MetadataStore>>;

/// The cache of one target; it moves from loop to loop when a reload keeps the target.
#[derive(Default)]
pub struct ScrapeCache {
    pub(crate) series: BytesMap<SeriesEntry>,
    /// Lines metric relabeling dropped, with the last scrape that saw them.
    pub(crate) dropped: BytesMap<u64>,
    /// Comment lines (`# HELP`, `# TYPE`, ...) known to be valid.
    pub(crate) comments: BytesMap<CommentEntry>,
    /// The current scrape's number; starts at 1 with the first scrape.
    pub(crate) iter: u64,
    /// Successful scrapes so far (Prometheus' cache iteration, which metadata ages by).
    successful: u64,
    /// Entries (series, dropped and comment lines) after the last successful scrape.
    size_after_success: usize,
    metadata: SharedMetadata,
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

    /// The target's metadata (shared: it stays current as the loop scrapes).
    pub fn metadata(&self) -> SharedMetadata {
        Arc::clone(&self.metadata)
    }

    /// A comment line seen in this scrape: remembered (with the metadata it carries, which
    /// is applied).
    pub(crate) fn add_comment(&mut self, line: &[u8], meta: Option<MetaLine>) {
        if let Some(m) = &meta {
            self.metadata
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .set(m, self.successful);
        }
        self.comments.insert(
            line.into(),
            CommentEntry {
                last_iter: self.iter,
                meta,
            },
        );
    }

    /// A comment line seen again: marked and its metadata applied again; false when the
    /// line is not known yet.
    pub(crate) fn comment_seen(&mut self, line: &[u8]) -> bool {
        let Some(c) = self.comments.get_mut(line) else {
            return false;
        };
        c.last_iter = self.iter;
        if let Some(m) = &c.meta {
            self.metadata
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .set(m, self.successful);
        }
        true
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
            successful: self.successful,
            size_after_success: self.size_after_success,
            metadata: self.metadata,
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
    /// successful scrape. Failing scrapes still add the lines they read, so a target whose
    /// labels vary while its scrapes keep failing would grow the cache without bound: once it
    /// holds more than twice its size after the last success plus 1000 entries (Prometheus'
    /// rule), whatever the last successful scrape did not see is dropped. Returns whether
    /// that flush happened.
    pub(crate) fn undo_scrape(&mut self) -> bool {
        // A walk over all entries, but only on failures: successful scrapes pay nothing.
        for entry in self.series.values_mut() {
            if entry.last_iter == self.iter {
                entry.last_iter = entry.prev_iter;
            }
        }
        let size = self.series.len() + self.dropped.len() + self.comments.len();
        if size <= self.size_after_success * 2 + 1000 {
            return false;
        }
        // The series of the last successful scrape stay (they still need staleness markers);
        // lines only failed scrapes read go.
        let last_success = self
            .series
            .values()
            .map(|e| e.last_iter)
            .filter(|i| *i < self.iter)
            .max()
            .unwrap_or(0);
        self.series
            .retain(|_, e| e.last_iter == last_success && last_success > 0);
        self.dropped.clear();
        self.comments.clear();
        true
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
    /// and alternative spellings would otherwise grow the cache forever), and metadata of
    /// families not seen for more than 10 successful scrapes.
    pub(crate) fn flush_unseen(&mut self) {
        let iter = self.iter;
        self.series.retain(|_, e| e.last_iter == iter);
        self.dropped.retain(|_, last| *last == iter);
        self.comments.retain(|_, c| c.last_iter == iter);
        self.size_after_success = self.series.len() + self.dropped.len() + self.comments.len();
        let now = self.successful;
        self.metadata
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entries
            .retain(|_, e| now - e.last_seen.min(now) <= METADATA_KEEP_SCRAPES);
        self.successful += 1;
    }
}
