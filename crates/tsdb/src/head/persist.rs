//! Moving the head's oldest block range to a persistent block, then forgetting it.
//!
//! The order makes every crash recoverable without loss or duplication:
//! 1. [`Head::write_block`] raises the head's floor (nothing older than the cut is accepted
//!    any more) and streams the range's chunks, series by series in label order, into a new
//!    block (written to a temporary directory, synced, renamed).
//! 2. The caller makes the block visible to queries.
//! 3. [`Head::truncate`] drops chunks older than the cut from memory, removes series left
//!    without data, deletes head chunk files that only held old chunks, and checkpoints the
//!    WAL (series still alive, samples at or after the cut) before deleting the covered
//!    segments.
//!
//! A crash before the rename leaves only a temporary directory (removed at start-up); a crash
//! after it leaves a complete block and a WAL that still holds its samples, which replay skips
//! because the database opens the head with the newest block's end as its floor.

use super::series::FullChunk;
use super::{Head, HeadInner};
use crate::block::{BlockMeta, BlockSpec, ChunkData, write_block};
use crate::chunkenc::{ENCODING_XOR, XorAppender, XorIterator};
use crate::wal;
use model::labels::Labels;
use model::sample::Timestamp;
use std::borrow::Cow;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// What a truncation removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TruncateStats {
    pub chunks_removed: u64,
    pub series_removed: u64,
    pub chunk_files_removed: u64,
    pub checkpoint: Option<wal::checkpoint::CheckpointStats>,
}

impl Head {
    /// The block range `[mint, maxt)` to persist next, when the head spans more than one and a
    /// half block ranges (as Prometheus decides).
    pub fn compactable_range(&self, block_range: i64) -> Option<(Timestamp, Timestamp)> {
        let (min, max) = self.time_range()?;
        if max.saturating_sub(min) <= block_range / 2 * 3 {
            return None;
        }
        let mint = min.div_euclid(block_range) * block_range;
        Some((mint, mint + block_range))
    }

    /// The floor below which samples are rejected (the end of persisted data).
    pub fn min_valid_floor(&self) -> Timestamp {
        self.inner.min_valid_floor.load(Ordering::Acquire)
    }

    /// Writes the head's samples in `[mint, maxt)` as a level-1 block in `parent`, after
    /// raising the floor to `maxt`, merging chunks up to `max_chunk_samples` (see
    /// [`BlockSpec::max_chunk_samples`]). `None` when the range holds no samples.
    pub fn write_block(
        &self,
        parent: &Path,
        mint: Timestamp,
        maxt: Timestamp,
        max_chunk_samples: u16,
    ) -> io::Result<Option<BlockMeta>> {
        let inner = &self.inner;
        inner.min_valid_floor.fetch_max(maxt, Ordering::AcqRel);
        // Commits validated before the floor moved apply under the WAL lock: taking it once
        // waits for them.
        drop(inner.wal.lock().unwrap_or_else(|e| e.into_inner()));
        self.write_block_snapshot(parent, mint, maxt, max_chunk_samples)
    }

    /// Writes the head's samples in `[mint, maxt)` as a block without changing the head
    /// (snapshots).
    pub fn write_block_snapshot(
        &self,
        parent: &Path,
        mint: Timestamp,
        maxt: Timestamp,
        max_chunk_samples: u16,
    ) -> io::Result<Option<BlockMeta>> {
        let inner = &self.inner;

        let all: Vec<Arc<super::series::MemSeries>> = inner
            .series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .flatten()
            .cloned()
            .collect();
        let mut selected: Vec<(Labels, Arc<super::series::MemSeries>)> = Vec::new();
        for s in all {
            let overlaps = {
                let d = s.data.lock().unwrap_or_else(|e| e.into_inner());
                d.full.iter().any(|c| {
                    let (a, b) = c.time_range();
                    a < maxt && b >= mint
                }) || (d.app.num_samples() > 0
                    && d.open_min_t < maxt
                    && d.app.last_timestamp() >= mint)
            };
            if overlaps {
                selected.push((inner.labels_of(&s), s));
            }
        }
        selected.sort_by(|a, b| a.0.cmp(&b.0));
        let labels: Vec<Labels> = selected.iter().map(|(l, _)| l.clone()).collect();
        let spec = BlockSpec {
            min_time: mint,
            max_time: maxt,
            level: 1,
            max_chunk_samples,
            ..Default::default()
        };
        write_block(parent, &spec, &labels, |i, out| {
            let Some((_, s)) = selected.get(i) else {
                return Ok(());
            };
            series_chunks(inner, s, mint, maxt, out)
        })
    }

    /// Forgets everything older than `cut` (already persisted in a block): chunks, empty
    /// series, old head chunk files, and the WAL up to the current segment (checkpointed).
    pub fn truncate(&self, cut: Timestamp) -> io::Result<TruncateStats> {
        let inner = &self.inner;
        inner.min_valid_floor.fetch_max(cut, Ordering::AcqRel);
        if !inner.readers.wait_below(cut) {
            tracing::warn!(
                cut,
                readers = inner.readers.len(),
                "head truncation waited {:?} for queries reading the range it drops; going ahead",
                super::readers::MAX_WAIT
            );
        }
        let mut st = TruncateStats::default();
        let all: Vec<Arc<super::series::MemSeries>> = inner
            .series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .flatten()
            .cloned()
            .collect();
        let mut new_min = i64::MAX;
        let mut empty = Vec::new();
        for s in all {
            let mut d = s.data.lock().unwrap_or_else(|e| e.into_inner());
            let before = d.full.len();
            d.full.retain(|c| c.time_range().1 >= cut);
            st.chunks_removed += (before - d.full.len()) as u64;
            if d.app.num_samples() > 0 && d.app.last_timestamp() < cut {
                d.open.clear();
                d.app = XorAppender::new();
                st.chunks_removed += 1;
            }
            if let Some(c) = d.full.first() {
                new_min = new_min.min(c.time_range().0);
            } else if d.app.num_samples() > 0 {
                new_min = new_min.min(d.open_min_t);
            } else {
                empty.push(s.clone());
            }
        }
        for s in empty {
            let id = s.id;
            if inner.remove_series_if_unused(s) {
                st.series_removed += 1;
                inner
                    .tombstones
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .by_series
                    .remove(&u64::from(id));
            }
        }
        inner
            .tombstones
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .by_series
            .retain(|_, ivs| {
                ivs.retain(|(_, b)| *b >= cut);
                !ivs.is_empty()
            });
        if new_min == i64::MAX {
            // Nothing left: the head restarts from its next sample.
            inner.min_t.store(i64::MAX, Ordering::Release);
            inner.max_t.store(i64::MIN, Ordering::Release);
        } else {
            inner.min_t.store(new_min.max(cut), Ordering::Release);
        }
        st.chunk_files_removed = inner.mapper.truncate_before(cut)? as u64;
        inner
            .stats
            .series_removed
            .fetch_add(st.series_removed, Ordering::Relaxed);
        inner.stats.truncations.fetch_add(1, Ordering::Relaxed);

        match self.checkpoint_wal(cut) {
            Ok(c) => {
                inner
                    .stats
                    .checkpoints_created
                    .fetch_add(1, Ordering::Relaxed);
                st.checkpoint = c;
            }
            Err(e) => {
                inner
                    .stats
                    .checkpoints_failed
                    .fetch_add(1, Ordering::Relaxed);
                tracing::error!(err = %e, "WAL checkpoint failed; the WAL keeps its segments");
                return Err(e);
            }
        }
        Ok(st)
    }

    /// Starts a new WAL segment and checkpoints all earlier ones, keeping live series and
    /// samples at or after `cut`; then deletes what the checkpoint covers.
    fn checkpoint_wal(
        &self,
        cut: Timestamp,
    ) -> io::Result<Option<wal::checkpoint::CheckpointStats>> {
        let inner = &self.inner;
        let last = {
            let mut guard = inner.wal.lock().unwrap_or_else(|e| e.into_inner());
            let Some(w) = guard.as_mut() else {
                return Ok(None);
            };
            w.next_segment()?;
            w.current_segment()
        };
        let Some(last) = last.checked_sub(1) else {
            return Ok(None);
        };
        // Segments a WAL reader still needs stay; so does everything after them.
        let floor = inner
            .wal_floor
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let last = match floor.and_then(|f| f()) {
            Some(needed) => match needed.checked_sub(1) {
                Some(before) => last.min(before),
                None => return Ok(None),
            },
            None => last,
        };
        if let Some((done, _)) = wal::checkpoint::last_checkpoint(&inner.wal_dir)?
            && done >= last
        {
            return Ok(None);
        }
        let st = wal::checkpoint::create(
            &inner.wal_dir,
            last,
            |id| {
                u32::try_from(id)
                    .ok()
                    .and_then(|id| inner.get(id))
                    .is_some()
            },
            cut,
            inner.opts.wal_compression,
        )?;
        wal::checkpoint::delete_covered(&inner.wal_dir, last)?;
        Ok(Some(st))
    }
}

/// Pushes the chunks of `s` that hold samples in `[mint, maxt)`; a chunk reaching outside the
/// range (only possible when the block range is not a multiple of the chunk range) is
/// re-encoded with just the samples inside.
fn series_chunks(
    inner: &HeadInner,
    s: &super::series::MemSeries,
    mint: Timestamp,
    maxt: Timestamp,
    out: &mut Vec<ChunkData<'static>>,
) -> io::Result<()> {
    let deleted = inner.deleted(s.id);
    let d = s.data.lock().unwrap_or_else(|e| e.into_inner());
    let mut push = |bytes: &[u8], a: Timestamp, b: Timestamp| -> io::Result<()> {
        if b < mint || a >= maxt {
            return Ok(());
        }
        let touched = deleted.iter().any(|(x, y)| *x <= b && *y >= a);
        if a >= mint && b < maxt && !touched {
            out.push(ChunkData {
                encoding: ENCODING_XOR,
                data: Cow::Owned(bytes.to_vec()),
                min_t: a,
                max_t: b,
            });
            return Ok(());
        }
        let mut it = XorIterator::new(bytes).map_err(|e| io::Error::other(e.to_string()))?;
        let mut buf = Vec::new();
        let mut app = XorAppender::new();
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        while it
            .next_sample()
            .map_err(|e| io::Error::other(e.to_string()))?
        {
            let (t, v) = it.at();
            if t >= mint && t < maxt && !deleted.iter().any(|(x, y)| *x <= t && t <= *y) {
                app.append(&mut buf, t, v);
                lo = lo.min(t);
                hi = hi.max(t);
            }
        }
        if app.num_samples() > 0 {
            out.push(ChunkData {
                encoding: ENCODING_XOR,
                data: Cow::Owned(buf),
                min_t: lo,
                max_t: hi,
            });
        }
        Ok(())
    };
    for c in &d.full {
        let (a, b) = c.time_range();
        match c {
            FullChunk::Disk { r, .. } => {
                if b < mint || a >= maxt {
                    continue;
                }
                let m = inner
                    .mapper
                    .chunk(*r)
                    .map_err(|e| io::Error::other(e.to_string()))?;
                push(m.bytes(), a, b)?;
            }
            FullChunk::Memory { bytes, .. } => push(bytes, a, b)?,
        }
    }
    if d.app.num_samples() > 0 {
        let (a, b) = (d.open_min_t, d.app.last_timestamp());
        push(&d.open, a, b)?;
    }
    Ok(())
}

impl HeadInner {
    /// Removes a series without data from the index, unless an appender holds it (it is about
    /// to receive a sample). Returns whether it was removed.
    fn remove_series_if_unused(&self, s: Arc<super::series::MemSeries>) -> bool {
        let labels = self.labels_of(&s);
        let hash = labels.hash64();
        let mut shard = self.shard(hash).lock().unwrap_or_else(|e| e.into_inner());
        {
            let mut series = self.series.write().unwrap_or_else(|e| e.into_inner());
            // References: the series table and ours. Any other holder is an appender.
            if Arc::strong_count(&s) > 2 {
                return false;
            }
            {
                let d = s.data.lock().unwrap_or_else(|e| e.into_inner());
                if !d.full.is_empty() || d.app.num_samples() > 0 {
                    return false;
                }
            }
            if let Some(slot) = series.get_mut(s.id as usize - 1) {
                *slot = None;
            }
        }
        let remove_hash = match shard.get_mut(&hash) {
            Some(super::SmallIds::One(id)) => *id == s.id,
            Some(super::SmallIds::Many(v)) => {
                v.retain(|id| *id != s.id);
                v.is_empty()
            }
            None => false,
        };
        if remove_hash {
            shard.remove(&hash);
        }
        drop(shard);
        self.postings
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(s.id, &s.labels);
        true
    }
}
