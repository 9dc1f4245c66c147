//! One series in the head: its labels (as symbol ids), its open chunk, and references to its
//! full chunks on disk.
//!
//! Appending checks order against the last sample, cuts the open chunk when it holds 120
//! samples or would cross the chunk-range boundary (so chunks line up with future blocks), and
//! writes the full chunk to the chunk files.

use crate::chunkenc::{ENCODING_XOR, SAMPLES_PER_CHUNK, XorAppender};
use crate::chunks_head::{ChunkDiskMapper, ChunkRef};
use model::sample::Timestamp;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use storage::AppendError;

/// A full chunk: on disk normally, in memory when writing it to disk failed.
#[derive(Debug, Clone)]
pub enum FullChunk {
    Disk {
        r: ChunkRef,
        min_t: Timestamp,
        max_t: Timestamp,
    },
    Memory {
        bytes: Box<[u8]>,
        min_t: Timestamp,
        max_t: Timestamp,
    },
}

impl FullChunk {
    pub fn time_range(&self) -> (Timestamp, Timestamp) {
        match self {
            FullChunk::Disk { min_t, max_t, .. } | FullChunk::Memory { min_t, max_t, .. } => {
                (*min_t, *max_t)
            }
        }
    }
}

/// The mutable part of a series.
pub struct SeriesData {
    /// The open chunk's bytes (empty before the first sample).
    pub open: Vec<u8>,
    pub app: XorAppender,
    pub open_min_t: Timestamp,
    pub full: Vec<FullChunk>,
}

/// A series of the head.
pub struct MemSeries {
    pub id: u32,
    /// Label ids as `[name, value, name, value, ...]`, sorted by name string.
    pub labels: Box<[u32]>,
    pub data: Mutex<SeriesData>,
    /// Whether a WAL series record for this series has been written.
    pub wal_logged: AtomicBool,
}

/// Why a committed sample was not stored (counted, never fatal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    OutOfOrder,
    Duplicate,
}

impl SeriesData {
    pub fn new() -> Self {
        SeriesData {
            open: Vec::new(),
            app: XorAppender::new(),
            open_min_t: 0,
            full: Vec::new(),
        }
    }

    /// The last sample's timestamp and value bits, if any.
    pub fn last(&self) -> Option<(Timestamp, u64)> {
        (self.app.num_samples() > 0)
            .then(|| (self.app.last_timestamp(), self.app.last_value().to_bits()))
    }

    /// Checks that `(t, v)` may follow the last sample: `Ok(true)` to store it, `Ok(false)` for
    /// an exact repeat (accepted and ignored, as Prometheus does).
    pub fn check(
        last: Option<(Timestamp, u64)>,
        t: Timestamp,
        v: f64,
    ) -> Result<bool, AppendError> {
        storage::check_append_order(last, t, v)
    }

    /// Stores a sample that passed [`SeriesData::check`] at commit time (order is re-checked:
    /// another batch may have committed a newer sample in between).
    pub fn append(
        &mut self,
        series_id: u32,
        t: Timestamp,
        v: f64,
        chunk_range: i64,
        mapper: &ChunkDiskMapper,
    ) -> Result<bool, Rejected> {
        match Self::check(self.last(), t, v) {
            Err(AppendError::DuplicateTimestamp) => return Err(Rejected::Duplicate),
            Err(_) => return Err(Rejected::OutOfOrder),
            Ok(false) => return Ok(false),
            Ok(true) => {}
        }
        if self.app.num_samples() > 0 {
            let range_end =
                (self.open_min_t.div_euclid(chunk_range) + 1).saturating_mul(chunk_range);
            if self.app.num_samples() >= SAMPLES_PER_CHUNK || t >= range_end {
                self.cut(series_id, mapper);
            }
        }
        if self.app.num_samples() == 0 {
            self.open_min_t = t;
        }
        self.app.append(&mut self.open, t, v);
        Ok(true)
    }

    /// Moves the open chunk to disk. When the write fails the chunk stays in memory (and the
    /// error is logged): memory grows, data is never lost.
    fn cut(&mut self, series_id: u32, mapper: &ChunkDiskMapper) {
        let min_t = self.open_min_t;
        let max_t = self.app.last_timestamp();
        let bytes = std::mem::take(&mut self.open);
        match mapper.write_chunk(u64::from(series_id), min_t, max_t, ENCODING_XOR, &bytes) {
            Ok(r) => self.full.push(FullChunk::Disk { r, min_t, max_t }),
            Err(e) => {
                tracing::error!(err = %e, series = series_id, "cannot write a full chunk to disk; keeping it in memory");
                self.full.push(FullChunk::Memory {
                    bytes: bytes.into_boxed_slice(),
                    min_t,
                    max_t,
                });
            }
        }
        // The caller appends the next sample right away, so the order check never sees an
        // empty series between chunks.
        self.app = XorAppender::new();
    }
}
