//! Reading the head: matchers → series ids → chunk snapshots → decoded samples.
//!
//! A select copies, under each series' lock, only what it needs: references to full chunks
//! overlapping the range and a copy of the open chunk's bytes. Decoding happens while the
//! caller iterates, one chunk at a time, skipping chunks that `seek` jumps over.

use super::HeadInner;
use super::series::FullChunk;
use model::histogram::FloatHistogram;
use model::matcher::Matcher;
use model::sample::Timestamp;
use std::collections::BTreeSet;
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

impl Querier for HeadQuerier {
    fn select(
        &self,
        sorted: bool,
        _hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<SeriesSet, StorageError> {
        let ids = self.ids(matchers);
        let mut out: Vec<Series> = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(s) = self.head.get(id) else { continue };
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
            let deleted = self.head.deleted(id);
            if !deleted.is_empty() {
                sources.retain(|(_, a, b)| !deleted.iter().any(|(x, y)| x <= a && b <= y));
            }
            if sources.is_empty() {
                continue;
            }
            out.push(Series {
                labels: self.head.labels_of(&s),
                samples: Box::new(HeadSampleIterator {
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
            });
        }
        if sorted {
            out.sort_by(|a, b| a.labels.cmp(&b.labels));
        }
        Ok(Box::new(out.into_iter().map(Ok)))
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
            for id in self.ids(matchers) {
                if let Some(s) = self.head.get(id)
                    && let Some(v) = self.head.labels_of(&s).get(name)
                {
                    values.insert(v.to_string());
                }
            }
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
            for id in self.ids(matchers) {
                if let Some(s) = self.head.get(id) {
                    for l in self.head.labels_of(&s).iter() {
                        names.insert(l.name.to_string());
                    }
                }
            }
        }
        Ok(names.into_iter().collect())
    }
}

/// Iterates a head series' samples within `[mint, maxt]`, decoding chunk by chunk.
struct HeadSampleIterator {
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
