//! Reading the head: matchers → series ids → chunk snapshots → decoded samples.
//!
//! A select holds a pointer per matching series and nothing else; when the caller reaches a
//! series, it copies under that series' lock only what it needs: references to full chunks
//! overlapping the range and a copy of the open chunk's bytes. Decoding happens while the
//! caller iterates, one chunk at a time, skipping chunks that `seek` jumps over. Memory for
//! reading every series of a large head is therefore one pointer per series plus the series
//! being read.

use super::HeadInner;
use super::readers::ReadGuard;
use super::series::{FullChunk, MemSeries};
use model::histogram::FloatHistogram;
use model::matcher::Matcher;
use model::sample::Timestamp;
use std::cmp::Ordering;
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use storage::{Querier, SampleIterator, SelectHints, Series, SeriesSet, StorageError, ValueKind};

/// A querier over `[mint, maxt]` of the head.
pub struct HeadQuerier {
    head: Arc<HeadInner>,
    mint: Timestamp,
    maxt: Timestamp,
}

impl HeadQuerier {
    pub(super) fn new(head: Arc<HeadInner>, mint: Timestamp, maxt: Timestamp) -> Self {
        HeadQuerier { head, mint, maxt }
    }

    fn ids(&self, matchers: &[Matcher]) -> Vec<u32> {
        let postings = self.head.postings.read().unwrap_or_else(|e| e.into_inner());
        postings.for_matchers(matchers, &self.head.symbols)
    }
}

/// Where one chunk of a selected series is.
enum Source {
    Disk(crate::chunks_head::ChunkRef),
    Bytes(Arc<[u8]>),
}

/// How many series one sorted run holds: the symbol table's read lock is held while a run is
/// sorted, so a run bounds how long a new series' interning can wait.
const SORT_RUN: usize = 1 << 14;

/// Compares two series' label sets as `Labels` orders them (name, then value, pair by pair; a
/// prefix first), reading the strings in place.
fn cmp_labels<'s>(resolve: &dyn Fn(u32) -> &'s str, a: &MemSeries, b: &MemSeries) -> Ordering {
    for (x, y) in a.labels.iter().zip(b.labels.iter()) {
        if x != y {
            match resolve(*x).cmp(resolve(*y)) {
                Ordering::Equal => {}
                o => return o,
            }
        }
    }
    a.labels.len().cmp(&b.labels.len())
}

impl Querier for HeadQuerier {
    /// Selection holds one pointer per matching series; a series' labels and chunk references
    /// are taken only when the caller reaches it, and dropped when it moves on. With `sorted`,
    /// the matches are sorted in runs of [`SORT_RUN`] and the runs merged while iterating, so
    /// the first series comes out before the last is compared.
    fn select(
        &self,
        sorted: bool,
        _hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<SeriesSet, StorageError> {
        let ids = self.ids(matchers);
        let mut runs: Vec<Vec<Arc<MemSeries>>> = Vec::new();
        for part in ids.chunks(if sorted { SORT_RUN } else { usize::MAX }) {
            let mut run = self.head.get_many(part);
            if sorted {
                self.head
                    .symbols
                    .with_str(|resolve| run.sort_unstable_by(|a, b| cmp_labels(resolve, a, b)));
            }
            if !run.is_empty() {
                run.reverse(); // taken from the back
                runs.push(run);
            }
        }
        // Runs ordered by their next series; the first is the smallest.
        let mut order: Vec<usize> = (0..runs.len()).collect();
        if sorted && runs.len() > 1 {
            self.head.symbols.with_str(|resolve| {
                order.sort_by(|&a, &b| cmp_labels(resolve, last(&runs[a]), last(&runs[b])))
            });
        }
        Ok(Box::new(LazySeries {
            guard: self.head.readers.register(self.mint),
            head: self.head.clone(),
            mint: self.mint,
            maxt: self.maxt,
            sorted,
            runs,
            order,
        }))
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut values = BTreeSet::new();
        if matchers.is_empty() {
            let Some(name_id) = self.head.symbols.lookup(name) else {
                return Ok(Vec::new());
            };
            let postings = self.head.postings.read().unwrap_or_else(|e| e.into_inner());
            self.head.symbols.with(|resolve| {
                for v in postings.values(name_id) {
                    values.insert(resolve(v).to_string());
                }
            });
        } else {
            let Some(name_id) = self.head.symbols.lookup(name) else {
                return Ok(Vec::new());
            };
            let series = self.head.get_many(&self.ids(matchers));
            let ids: HashSet<u32> = series
                .iter()
                .filter_map(|s| {
                    s.labels
                        .chunks_exact(2)
                        .find(|p| p[0] == name_id)
                        .map(|p| p[1])
                })
                .collect();
            self.head.symbols.with_str(|resolve| {
                values.extend(ids.iter().map(|&v| resolve(v).to_string()));
            });
        }
        Ok(values.into_iter().collect())
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut names = BTreeSet::new();
        if matchers.is_empty() {
            let postings = self.head.postings.read().unwrap_or_else(|e| e.into_inner());
            self.head.symbols.with(|resolve| {
                for n in postings.names() {
                    names.insert(resolve(n).to_string());
                }
            });
        } else {
            let series = self.head.get_many(&self.ids(matchers));
            let ids: HashSet<u32> = series
                .iter()
                .flat_map(|s| s.labels.chunks_exact(2).map(|p| p[0]))
                .collect();
            self.head.symbols.with_str(|resolve| {
                names.extend(ids.iter().map(|&n| resolve(n).to_string()));
            });
        }
        Ok(names.into_iter().collect())
    }
}

fn last(run: &[Arc<MemSeries>]) -> &MemSeries {
    // Runs in `order` are never empty.
    &run[run.len() - 1]
}

/// The selected series, turned into [`Series`] one at a time.
struct LazySeries {
    /// Keeps truncation away from `[mint, ..]` until this and every iterator are dropped.
    guard: Arc<ReadGuard>,
    head: Arc<HeadInner>,
    mint: Timestamp,
    maxt: Timestamp,
    sorted: bool,
    /// Sorted runs, each in descending order so the next series is at the end.
    runs: Vec<Vec<Arc<MemSeries>>>,
    /// Indices of the non-empty runs, ordered by their next series.
    order: Vec<usize>,
}

impl LazySeries {
    /// The next matching series in order, whether or not it has samples in range.
    fn next_match(&mut self) -> Option<Arc<MemSeries>> {
        let &first = self.order.first()?;
        let s = self.runs[first].pop()?;
        if self.runs[first].is_empty() {
            self.order.remove(0);
        } else if self.sorted && self.order.len() > 1 {
            // Put the run back where its new next series belongs among the others.
            let runs = &self.runs;
            let rest = &self.order[1..];
            let at = self.head.symbols.with_str(|resolve| {
                let next = last(&runs[first]);
                rest.partition_point(|&r| cmp_labels(resolve, last(&runs[r]), next).is_le())
            });
            self.order.remove(0);
            self.order.insert(at, first);
        }
        Some(s)
    }

    /// What a reader of `s` needs: its labels and the chunks overlapping the range, copied
    /// under the series' lock; `None` when nothing of it lies in the range.
    fn open(&self, s: &MemSeries) -> Option<Series> {
        let mut sources: Vec<(Source, Timestamp, Timestamp)> = Vec::new();
        {
            let data = s.data.lock().unwrap_or_else(|e| e.into_inner());
            for c in &data.full {
                let (min_t, max_t) = c.time_range();
                if max_t < self.mint || min_t > self.maxt {
                    continue;
                }
                let src = match c {
                    FullChunk::Disk { r, .. } => Source::Disk(*r),
                    FullChunk::Memory { bytes, .. } => Source::Bytes(Arc::from(&bytes[..])),
                };
                sources.push((src, min_t, max_t));
            }
            if data.app.num_samples() > 0 {
                let (min_t, max_t) = (data.open_min_t, data.app.last_timestamp());
                if max_t >= self.mint && min_t <= self.maxt {
                    sources.push((Source::Bytes(Arc::from(&data.open[..])), min_t, max_t));
                }
            }
        }
        let deleted = self.head.deleted(s.id);
        if !deleted.is_empty() {
            sources.retain(|(_, a, b)| !deleted.iter().any(|(x, y)| x <= a && b <= y));
        }
        if sources.is_empty() {
            return None;
        }
        Some(Series {
            labels: self.head.labels_of(s),
            samples: Box::new(HeadSampleIterator {
                _guard: self.guard.clone(),
                head: self.head.clone(),
                sources,
                next_source: 0,
                buf: Vec::new(),
                pos: 0,
                current: None,
                mint: self.mint,
                maxt: self.maxt,
                deleted,
                err: None,
            }),
        })
    }
}

impl Iterator for LazySeries {
    type Item = Result<Series, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let s = self.next_match()?;
            if let Some(series) = self.open(&s) {
                return Some(Ok(series));
            }
        }
    }
}

/// Iterates a head series' samples within `[mint, maxt]`, decoding chunk by chunk.
struct HeadSampleIterator {
    _guard: Arc<ReadGuard>,
    head: Arc<HeadInner>,
    sources: Vec<(Source, Timestamp, Timestamp)>,
    next_source: usize,
    /// Decoded samples of the current chunk.
    buf: Vec<(Timestamp, f64)>,
    /// Index of the next sample in `buf`.
    pos: usize,
    current: Option<(Timestamp, f64)>,
    mint: Timestamp,
    maxt: Timestamp,
    /// Deleted intervals (tombstones) to skip.
    deleted: Vec<(Timestamp, Timestamp)>,
    err: Option<StorageError>,
}

impl HeadSampleIterator {
    /// Decodes the next chunk into `buf`; false when there is none (or on error).
    fn load_next_chunk(&mut self) -> bool {
        let Some((src, _, _)) = self.sources.get(self.next_source) else {
            return false;
        };
        self.next_source += 1;
        self.buf.clear();
        self.pos = 0;
        let decoded = match src {
            Source::Disk(r) => match self.head.mapper.chunk(*r) {
                Ok(c) => decode_into(c.bytes(), &mut self.buf),
                Err(e) => Err(e.to_string()),
            },
            Source::Bytes(b) => decode_into(b, &mut self.buf),
        };
        if let Err(e) = decoded {
            self.err = Some(StorageError::Corruption(e));
            self.sources.clear();
            return false;
        }
        true
    }
}

fn decode_into(bytes: &[u8], buf: &mut Vec<(Timestamp, f64)>) -> Result<(), String> {
    crate::chunkenc::decode_into(bytes, buf).map_err(|e| e.to_string())
}

impl SampleIterator for HeadSampleIterator {
    fn next(&mut self) -> Option<ValueKind> {
        loop {
            if let Some(&(t, v)) = self.buf.get(self.pos) {
                self.pos += 1;
                if t < self.mint || self.deleted.iter().any(|(a, b)| *a <= t && t <= *b) {
                    continue;
                }
                if t > self.maxt {
                    self.current = None;
                    self.sources.clear();
                    self.buf.clear();
                    return None;
                }
                self.current = Some((t, v));
                return Some(ValueKind::Float);
            }
            if !self.load_next_chunk() {
                self.current = None;
                return None;
            }
        }
    }

    fn seek(&mut self, t: Timestamp) -> Option<ValueKind> {
        if let Some((ct, _)) = self.current
            && ct >= t
        {
            return Some(ValueKind::Float);
        }
        // Skip whole chunks that end before `t` without decoding them.
        if self
            .buf
            .get(self.pos..)
            .is_none_or(|rest| rest.last().is_none_or(|(lt, _)| *lt < t))
        {
            self.buf.clear();
            self.pos = 0;
            while let Some((_, _, max_t)) = self.sources.get(self.next_source) {
                if *max_t >= t {
                    break;
                }
                self.next_source += 1;
            }
        }
        if self.pos < self.buf.len() {
            self.pos += self.buf[self.pos..].partition_point(|(st, _)| *st < t);
        }
        loop {
            let k = self.next()?;
            if self.at_t() >= t {
                return Some(k);
            }
        }
    }

    fn current_kind(&self) -> Option<ValueKind> {
        self.current.map(|_| ValueKind::Float)
    }

    fn at_t(&self) -> Timestamp {
        self.current.map_or(i64::MIN, |(t, _)| t)
    }

    fn at(&self) -> (Timestamp, f64) {
        self.current.unwrap_or((i64::MIN, f64::NAN))
    }

    fn at_histogram(&self) -> Option<(Timestamp, Arc<FloatHistogram>)> {
        None
    }

    fn err(&self) -> Option<StorageError> {
        self.err.clone()
    }
}
