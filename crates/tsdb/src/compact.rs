//! Block compaction: choosing which blocks to merge and merging them into one.
//!
//! [`plan`] follows Prometheus' leveled compactor: overlapping blocks are merged first
//! (vertical compaction); otherwise, leaving the newest block alone, the first group of
//! blocks that falls within one window of the next larger range (2h → 6h → 18h …) and either
//! spans the whole window or lies entirely before the newest remaining block is merged.
//!
//! [`compact_blocks`] streams: it merges the blocks' sorted series lists, and for each output
//! series copies the chunks straight from the memory-mapped sources when they neither overlap
//! in time nor are touched by tombstones; otherwise it decodes that one series' samples,
//! removes deleted and duplicate timestamps, and re-encodes them. Memory holds the label sets
//! and one series' samples at a time, never the blocks' data.

use crate::block::{self, Block, BlockDesc, BlockMeta, BlockSpec, ChunkData};
use crate::chunkenc::{ENCODING_XOR, XorAppender};
use crate::index::ChunkMeta;
use model::labels::Labels;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::Path;
use std::sync::Arc;

/// Whether any two of `blocks` (sorted by min time) overlap in time.
pub fn overlapping(blocks: &[Arc<Block>]) -> bool {
    let mut max = i64::MIN;
    blocks.iter().any(|b| {
        let o = b.meta().min_time < max;
        max = max.max(b.meta().max_time);
        o
    })
}

/// The next group of blocks to merge, if any. `blocks` are sorted by min time; `ranges` are
/// the block ranges, smallest (the head's) first.
pub fn plan(blocks: &[Arc<Block>], ranges: &[i64]) -> Option<Vec<Arc<Block>>> {
    // Overlaps first.
    let mut group: Vec<Arc<Block>> = Vec::new();
    let mut group_max = i64::MIN;
    for b in blocks {
        if !group.is_empty() && b.meta().min_time < group_max {
            group.push(b.clone());
            group_max = group_max.max(b.meta().max_time);
            continue;
        }
        if group.len() > 1 {
            return Some(group);
        }
        group = vec![b.clone()];
        group_max = b.meta().max_time;
    }
    if group.len() > 1 {
        return Some(group);
    }

    if blocks.len() < 2 {
        return None;
    }
    let candidates = &blocks[..blocks.len() - 1];
    let high_time = candidates.last()?.meta().min_time;
    for &r in ranges.iter().skip(1) {
        if r <= 0 {
            continue;
        }
        let mut windows: BTreeMap<i64, Vec<Arc<Block>>> = BTreeMap::new();
        for b in candidates {
            let start = b.meta().min_time.div_euclid(r) * r;
            if b.meta().max_time <= start.saturating_add(r) {
                windows.entry(start).or_default().push(b.clone());
            }
        }
        for (_, p) in windows {
            if p.len() < 2 {
                continue;
            }
            let mint = p[0].meta().min_time;
            let maxt = p.iter().map(|b| b.meta().max_time).max().unwrap_or(mint);
            if maxt - mint == r || maxt <= high_time {
                return Some(p);
            }
        }
    }
    None
}

/// Merges `blocks` into one new block in `dir` (or rewrites a single block without its
/// deleted samples). Returns `None` when nothing remains. The sources are not deleted here.
pub fn compact_blocks(
    dir: &Path,
    blocks: &[Arc<Block>],
    max_chunk_samples: u16,
) -> io::Result<Option<BlockMeta>> {
    let metas: Vec<&BlockMeta> = blocks.iter().map(|b| b.meta()).collect();
    let min_time = metas.iter().map(|m| m.min_time).min().unwrap_or(0);
    let max_time = metas.iter().map(|m| m.max_time).max().unwrap_or(0);
    let max_level = metas.iter().map(|m| m.compaction.level).max().unwrap_or(1);
    let sources: BTreeSet<String> = metas
        .iter()
        .flat_map(|m| {
            if m.compaction.sources.is_empty() {
                vec![m.ulid.clone()]
            } else {
                m.compaction.sources.clone()
            }
        })
        .collect();
    let spec = BlockSpec {
        min_time,
        max_time,
        level: if blocks.len() == 1 {
            max_level
        } else {
            max_level + 1
        },
        sources: sources.into_iter().collect(),
        parents: metas.iter().map(|m| m.desc()).collect::<Vec<BlockDesc>>(),
        max_chunk_samples,
    };

    // Union of the series, in label order, with where each comes from.
    let mut series: BTreeMap<Labels, Vec<(usize, u32)>> = BTreeMap::new();
    let mut scratch = Vec::new();
    for (bi, b) in blocks.iter().enumerate() {
        for r in b.index().all_postings()? {
            let l = b.index().series(r, &mut scratch)?;
            series.entry(l).or_default().push((bi, r));
        }
    }
    let (labels, sources): (Vec<Labels>, Vec<Vec<(usize, u32)>>) = series.into_iter().unzip();
    let tombstones: Vec<_> = blocks.iter().map(|b| b.tombstones()).collect();
    let meta = block::write_block(dir, &spec, &labels, |i, out| {
        let Some(src) = sources.get(i) else {
            return Ok(());
        };
        merge_series(blocks, &tombstones, src, max_chunk_samples, out)
    })?;
    if let Some(m) = &meta {
        tracing::info!(
            ulid = %m.ulid,
            mint = m.min_time,
            maxt = m.max_time,
            sources = blocks.len(),
            "compact blocks"
        );
    }
    Ok(meta)
}

/// Deleted intervals of one source series.
type Deleted = Vec<(i64, i64)>;

fn merge_series<'a>(
    blocks: &'a [Arc<Block>],
    tombstones: &[Arc<crate::tombstones::Tombstones>],
    src: &[(usize, u32)],
    max_chunk_samples: u16,
    out: &mut Vec<ChunkData<'a>>,
) -> io::Result<()> {
    let mut metas: Vec<(usize, ChunkMeta, Deleted)> = Vec::new();
    let mut scratch = Vec::new();
    for &(bi, r) in src {
        let b = blocks
            .get(bi)
            .ok_or_else(|| io::Error::other("block index out of range"))?;
        b.index().series(r, &mut scratch)?;
        let deleted = tombstones
            .get(bi)
            .map(|t| t.get(u64::from(r)).to_vec())
            .unwrap_or_default();
        for c in &scratch {
            metas.push((bi, *c, deleted.clone()));
        }
    }
    metas.sort_by_key(|(_, c, _)| (c.min_t, c.max_t));
    let touched = metas
        .iter()
        .any(|(_, c, d)| d.iter().any(|(a, b)| *a <= c.max_t && *b >= c.min_t));
    let overlapping = metas.windows(2).any(|w| w[1].1.min_t <= w[0].1.max_t);
    if !touched && !overlapping {
        for (bi, c, _) in &metas {
            let (encoding, data) = blocks[*bi].chunks().chunk(c.r)?;
            out.push(ChunkData {
                encoding,
                data: Cow::Borrowed(data),
                min_t: c.min_t,
                max_t: c.max_t,
            });
        }
        return Ok(());
    }
    // Decode, drop deleted samples and duplicate timestamps (the first source wins), re-encode.
    let mut samples: Vec<(i64, usize, f64)> = Vec::new();
    let mut buf = Vec::new();
    for (bi, c, deleted) in &metas {
        let (encoding, data) = blocks[*bi].chunks().chunk(c.r)?;
        buf.clear();
        block::decode_chunk(encoding, data, &mut buf).map_err(io::Error::other)?;
        for &(t, v) in &buf {
            if !deleted.iter().any(|(a, b)| *a <= t && t <= *b) {
                samples.push((t, *bi, v));
            }
        }
    }
    samples.sort_by_key(|(t, bi, _)| (*t, *bi));
    samples.dedup_by_key(|(t, _, _)| *t);
    let per_chunk = if max_chunk_samples == 0 {
        usize::from(crate::chunkenc::SAMPLES_PER_CHUNK)
    } else {
        usize::from(max_chunk_samples)
    };
    for part in samples.chunks(per_chunk) {
        let mut bytes = Vec::new();
        let mut app = XorAppender::new_compact();
        for (t, _, v) in part {
            app.append(&mut bytes, *t, *v);
        }
        let (Some(first), Some(last)) = (part.first(), part.last()) else {
            continue;
        };
        out.push(ChunkData {
            encoding: ENCODING_XOR,
            data: Cow::Owned(bytes),
            min_t: first.0,
            max_t: last.0,
        });
    }
    Ok(())
}
