//! Persistent blocks: one immutable directory per time range, in Prometheus' layout.
//!
//! ```text
//! <ulid>/meta.json    identity, time range [minTime, maxTime), stats, compaction lineage
//! <ulid>/index        series, labels and chunk references (see `index`)
//! <ulid>/chunks/      chunk segments (see `chunks`)
//! <ulid>/tombstones   deleted intervals (see `tombstones`)
//! ```
//!
//! [`write_block`] streams series (sorted by labels) into `<ulid>.tmp-for-creation/`, syncs
//! every file and the directory, and renames it into place, so a crash leaves either no block
//! or a complete one (temporary directories are removed when the database opens).
//! [`Block`] opens a block with memory-mapped index and chunks; [`BlockQuerier`] implements
//! `storage::Querier` over it, decoding series and chunks lazily while the caller iterates and
//! hiding samples covered by tombstones.

use crate::chunkenc::{ENCODING_XOR, XorAppender, XorIterator};
use crate::chunks::{ChunkReader, ChunkWriter};
use crate::encoding::{FormatError, fsync_dir};
use crate::index::{ChunkMeta, IndexReader, IndexWriter};
use crate::tombstones::Tombstones;
use model::histogram::FloatHistogram;
use model::labels::Labels;
use model::matcher::Matcher;
use model::sample::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use storage::{Querier, SampleIterator, SelectHints, Series, SeriesSet, StorageError, ValueKind};

pub const META_FILE: &str = "meta.json";
pub const INDEX_FILE: &str = "index";
pub const CHUNKS_DIR: &str = "chunks";
/// Suffix of a block directory being written.
pub const TMP_CREATION_SUFFIX: &str = ".tmp-for-creation";
/// Suffix of a block directory being deleted.
pub const TMP_DELETION_SUFFIX: &str = ".tmp-for-deletion";

/// `meta.json` (Prometheus' field names; unknown fields are ignored when reading).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockMeta {
    pub ulid: String,
    #[serde(rename = "minTime")]
    pub min_time: i64,
    /// Exclusive.
    #[serde(rename = "maxTime")]
    pub max_time: i64,
    #[serde(default)]
    pub stats: BlockStats,
    #[serde(default)]
    pub compaction: Compaction,
    pub version: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BlockStats {
    #[serde(rename = "numSamples", default)]
    pub num_samples: u64,
    #[serde(rename = "numSeries", default)]
    pub num_series: u64,
    #[serde(rename = "numChunks", default)]
    pub num_chunks: u64,
    #[serde(rename = "numTombstones", default, skip_serializing_if = "is_zero")]
    pub num_tombstones: u64,
}

fn is_zero(x: &u64) -> bool {
    *x == 0
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Compaction {
    #[serde(default)]
    pub level: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<BlockDesc>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deletable: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockDesc {
    pub ulid: String,
    #[serde(rename = "minTime")]
    pub min_time: i64,
    #[serde(rename = "maxTime")]
    pub max_time: i64,
}

impl BlockMeta {
    pub fn read(dir: &Path) -> Result<BlockMeta, FormatError> {
        let b = fs::read(dir.join(META_FILE)).map_err(|e| {
            FormatError::new(format!("reading {}: {e}", dir.join(META_FILE).display()))
        })?;
        let m: BlockMeta = serde_json::from_slice(&b).map_err(|e| {
            FormatError::new(format!("parsing {}: {e}", dir.join(META_FILE).display()))
        })?;
        if m.version != 1 {
            return Err(FormatError::new(format!(
                "{}: unsupported meta.json version {}",
                dir.display(),
                m.version
            )));
        }
        Ok(m)
    }

    /// Writes `meta.json` atomically inside `dir`.
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        let tmp = dir.join(format!("{META_FILE}.tmp"));
        let b = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        let f = fs::File::create(&tmp)?;
        io::Write::write_all(&mut &f, &b)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, dir.join(META_FILE))?;
        fsync_dir(dir)
    }

    pub fn desc(&self) -> BlockDesc {
        BlockDesc {
            ulid: self.ulid.clone(),
            min_time: self.min_time,
            max_time: self.max_time,
        }
    }
}

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A new ULID: 48 bits of milliseconds since the epoch and 80 random bits, in Crockford base32.
pub fn new_ulid(now_ms: u64) -> String {
    let mut rnd = [0u8; 10];
    let ok = fs::File::open("/dev/urandom")
        .and_then(|mut f| io::Read::read_exact(&mut f, &mut rnd))
        .is_ok();
    if !ok {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(now_ms);
        h.write_u32(std::process::id());
        let a = h.finish();
        rnd[..8].copy_from_slice(&a.to_le_bytes());
        rnd[8..].copy_from_slice(&(a.rotate_left(17) as u16).to_le_bytes());
    }
    let mut v: u128 = u128::from(now_ms & 0xFFFF_FFFF_FFFF) << 80;
    for (i, b) in rnd.iter().enumerate() {
        v |= u128::from(*b) << (72 - 8 * i);
    }
    (0..26)
        .map(|i| CROCKFORD[((v >> (125 - 5 * i)) & 31) as usize] as char)
        .collect()
}

/// Whether `s` is a well-formed ULID (as block directory names are).
pub fn is_ulid(s: &str) -> bool {
    s.len() == 26
        && s.as_bytes()[0] <= b'7'
        && s.bytes()
            .all(|b| CROCKFORD.contains(&b.to_ascii_uppercase()))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One chunk handed to [`write_block`].
#[derive(Debug, Clone)]
pub struct ChunkData<'a> {
    pub encoding: u8,
    pub data: std::borrow::Cow<'a, [u8]>,
    pub min_t: i64,
    pub max_t: i64,
}

/// What to write: the block's time range and lineage.
#[derive(Debug, Clone, Default)]
pub struct BlockSpec {
    pub min_time: i64,
    /// Exclusive.
    pub max_time: i64,
    pub level: u32,
    /// ULIDs of the level-1 blocks this one derives from (empty for a new level-1 block).
    pub sources: Vec<String>,
    pub parents: Vec<BlockDesc>,
    /// Consecutive XOR chunks of a series are merged up to this many samples (0 keeps the
    /// chunks as given). Fewer, longer chunks save the per-chunk header, framing and index
    /// entry; Prometheus reads chunks of any length.
    pub max_chunk_samples: u16,
}

/// The default for [`BlockSpec::max_chunk_samples`]: 2 h of 15 s scrapes in one chunk.
pub const DEFAULT_MAX_CHUNK_SAMPLES: u16 = 480;

fn num_samples(c: &ChunkData<'_>) -> u16 {
    match c.data.get(..2) {
        Some(n) => u16::from_be_bytes([n[0], n[1]]),
        None => 0,
    }
}

/// Re-encodes a series' XOR chunks for a block: consecutive, non-overlapping chunks are
/// merged while the result holds at most `max` samples, and values are written with the
/// compact window choice ([`XorAppender::new_compact`]). Chunks that already hold `max`
/// samples, and chunks of other encodings, are kept as they are.
pub fn rechunk<'a>(chunks: Vec<ChunkData<'a>>, max: u16) -> io::Result<Vec<ChunkData<'a>>> {
    if max == 0 {
        return Ok(chunks);
    }
    let bad = |e: crate::chunkenc::ChunkError| io::Error::other(e.to_string());
    let mut out: Vec<ChunkData<'a>> = Vec::with_capacity(chunks.len());
    // The chunk being built: bytes, encoder, time range.
    let mut cur: Option<(Vec<u8>, XorAppender, i64, i64)> = None;
    let flush = |cur: &mut Option<(Vec<u8>, XorAppender, i64, i64)>,
                 out: &mut Vec<ChunkData<'a>>| {
        if let Some((bytes, _, min_t, max_t)) = cur.take() {
            out.push(ChunkData {
                encoding: ENCODING_XOR,
                data: std::borrow::Cow::Owned(bytes),
                min_t,
                max_t,
            });
        }
    };
    for c in chunks {
        let n = num_samples(&c);
        if c.encoding != ENCODING_XOR || n == 0 || n >= max {
            flush(&mut cur, &mut out);
            out.push(c);
            continue;
        }
        let fits = cur.as_ref().is_some_and(|(_, app, _, max_t)| {
            u32::from(app.num_samples()) + u32::from(n) <= u32::from(max) && c.min_t > *max_t
        });
        if !fits {
            flush(&mut cur, &mut out);
            cur = Some((Vec::new(), XorAppender::new_compact(), c.min_t, c.max_t));
        }
        if let Some((bytes, app, _, max_t)) = cur.as_mut() {
            let mut it = XorIterator::new(&c.data).map_err(bad)?;
            while it.next_sample().map_err(bad)? {
                let (t, v) = it.at();
                app.append(bytes, t, v);
            }
            *max_t = c.max_t;
        }
    }
    flush(&mut cur, &mut out);
    Ok(out)
}

/// Writes a block into `parent/` and returns its meta, or `None` when no series has a chunk
/// (no empty blocks are written). `labels` must be sorted and distinct; `fill(i, out)` pushes
/// the chunks of `labels[i]` in time order (it is called once per series, in order, so a
/// caller can stream chunks from its source without holding them all).
pub fn write_block<'a>(
    parent: &Path,
    spec: &BlockSpec,
    labels: &[Labels],
    mut fill: impl FnMut(usize, &mut Vec<ChunkData<'a>>) -> io::Result<()>,
) -> io::Result<Option<BlockMeta>> {
    let ulid = new_ulid(now_ms());
    let tmp = parent.join(format!("{ulid}{TMP_CREATION_SUFFIX}"));
    let result = write_block_dir(&tmp, &ulid, spec, labels, &mut fill);
    match result {
        Ok(Some(meta)) => {
            let dst = parent.join(&ulid);
            fs::rename(&tmp, &dst)?;
            fsync_dir(parent)?;
            Ok(Some(meta))
        }
        Ok(None) => {
            fs::remove_dir_all(&tmp)?;
            Ok(None)
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

fn write_block_dir<'a>(
    dir: &Path,
    ulid: &str,
    spec: &BlockSpec,
    labels: &[Labels],
    fill: &mut dyn FnMut(usize, &mut Vec<ChunkData<'a>>) -> io::Result<()>,
) -> io::Result<Option<BlockMeta>> {
    fs::create_dir_all(dir)?;
    let mut symbols = BTreeSet::new();
    for l in labels {
        for p in l.iter() {
            if !symbols.contains(&*p.name) {
                symbols.insert(p.name.to_string());
            }
            if !symbols.contains(&*p.value) {
                symbols.insert(p.value.to_string());
            }
        }
    }
    let mut cw = ChunkWriter::create(&dir.join(CHUNKS_DIR))?;
    let mut iw = IndexWriter::create(&dir.join(INDEX_FILE), symbols.into_iter().collect())?;
    let mut stats = BlockStats::default();
    let mut chunks = Vec::new();
    let mut metas = Vec::new();
    for (i, l) in labels.iter().enumerate() {
        chunks.clear();
        fill(i, &mut chunks)?;
        if chunks.is_empty() {
            continue;
        }
        if spec.max_chunk_samples > 0 {
            chunks = rechunk(std::mem::take(&mut chunks), spec.max_chunk_samples)?;
        }
        metas.clear();
        for c in chunks.drain(..) {
            let r = cw.write_chunk(c.encoding, &c.data)?;
            if let Some(n) = c.data.get(..2) {
                stats.num_samples += u64::from(u16::from_be_bytes([n[0], n[1]]));
            }
            metas.push(ChunkMeta {
                r,
                min_t: c.min_t,
                max_t: c.max_t,
            });
        }
        stats.num_chunks += metas.len() as u64;
        stats.num_series += 1;
        iw.add_series(l, &metas)?;
    }
    cw.finish()?;
    iw.finish()?;
    if stats.num_series == 0 {
        return Ok(None);
    }
    fsync_dir(&dir.join(CHUNKS_DIR))?;
    Tombstones::default().write(dir)?;
    let meta = BlockMeta {
        ulid: ulid.to_string(),
        min_time: spec.min_time,
        max_time: spec.max_time,
        stats,
        compaction: Compaction {
            level: spec.level.max(1),
            sources: if spec.sources.is_empty() {
                vec![ulid.to_string()]
            } else {
                spec.sources.clone()
            },
            parents: spec.parents.clone(),
            deletable: false,
            failed: false,
        },
        version: 1,
    };
    meta.write(dir)?;
    Ok(Some(meta))
}

/// An open block.
pub struct Block {
    dir: PathBuf,
    meta: BlockMeta,
    index: IndexReader,
    chunks: ChunkReader,
    tombstones: RwLock<Arc<Tombstones>>,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block")
            .field("dir", &self.dir)
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

impl Block {
    /// Opens the block in `dir`, checking its meta, index header/TOC and chunk segment headers.
    pub fn open(dir: &Path) -> Result<Block, FormatError> {
        let meta = BlockMeta::read(dir)?;
        let index = IndexReader::open(&dir.join(INDEX_FILE))?;
        let chunks = ChunkReader::open(&dir.join(CHUNKS_DIR))?;
        let tombstones = Tombstones::read(dir)?;
        Ok(Block {
            dir: dir.to_path_buf(),
            meta,
            index,
            chunks,
            tombstones: RwLock::new(Arc::new(tombstones)),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }
    pub fn index(&self) -> &IndexReader {
        &self.index
    }
    pub fn chunks(&self) -> &ChunkReader {
        &self.chunks
    }
    pub fn tombstones(&self) -> Arc<Tombstones> {
        self.tombstones
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Bytes on disk: index, chunks, tombstones and meta.
    pub fn size(&self) -> u64 {
        let small = [crate::tombstones::FILE_NAME, META_FILE]
            .iter()
            .filter_map(|f| fs::metadata(self.dir.join(f)).ok())
            .map(|m| m.len())
            .sum::<u64>();
        self.index.size() as u64 + self.chunks.size() + small
    }

    /// Whether any sample of the block may fall in `[mint, maxt]` (inclusive).
    pub fn overlaps(&self, mint: Timestamp, maxt: Timestamp) -> bool {
        self.meta.min_time <= maxt && mint < self.meta.max_time
    }

    /// Marks `[mint, maxt]` of every series matching `matchers` as deleted (tombstones).
    pub fn delete(
        &self,
        mint: Timestamp,
        maxt: Timestamp,
        matchers: &[Matcher],
    ) -> io::Result<usize> {
        let refs = self.index.postings_for_matchers(matchers)?;
        let mut t = (*self.tombstones()).clone();
        let mut chunks = Vec::new();
        let mut n = 0;
        for r in refs {
            self.index.series(r, &mut chunks)?;
            if chunks.iter().any(|c| c.min_t <= maxt && c.max_t >= mint) {
                t.add(
                    u64::from(r),
                    mint.max(self.meta.min_time),
                    maxt.min(self.meta.max_time),
                );
                n += 1;
            }
        }
        if n > 0 {
            t.write(&self.dir)?;
            *self.tombstones.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(t);
        }
        Ok(n)
    }

    /// A querier over `[mint, maxt]` of this block.
    pub fn querier(self: &Arc<Self>, mint: Timestamp, maxt: Timestamp) -> BlockQuerier {
        BlockQuerier {
            block: self.clone(),
            mint,
            maxt,
        }
    }
}

/// Reads a block through the storage interface.
pub struct BlockQuerier {
    block: Arc<Block>,
    mint: Timestamp,
    maxt: Timestamp,
}

fn corruption(e: FormatError) -> StorageError {
    StorageError::Corruption(e.0)
}

impl BlockQuerier {
    fn matching_labels(&self, matchers: &[Matcher]) -> Result<Vec<Labels>, StorageError> {
        let refs = self
            .block
            .index
            .postings_for_matchers(matchers)
            .map_err(corruption)?;
        let mut chunks = Vec::new();
        let mut out = Vec::with_capacity(refs.len());
        for r in refs {
            let l = self
                .block
                .index
                .series(r, &mut chunks)
                .map_err(corruption)?;
            if chunks
                .iter()
                .any(|c| c.max_t >= self.mint && c.min_t <= self.maxt)
            {
                out.push(l);
            }
        }
        Ok(out)
    }
}

impl Querier for BlockQuerier {
    fn select(
        &self,
        _sorted: bool,
        _hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<SeriesSet, StorageError> {
        if !self.block.overlaps(self.mint, self.maxt) {
            return Ok(Box::new(std::iter::empty()));
        }
        let refs = self
            .block
            .index
            .postings_for_matchers(matchers)
            .map_err(corruption)?;
        // Series references follow label order, so the set is always sorted.
        Ok(Box::new(BlockSeriesSet {
            block: self.block.clone(),
            tombstones: self.block.tombstones(),
            refs: refs.into_iter(),
            mint: self.mint,
            maxt: self.maxt,
            failed: false,
        }))
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        if matchers.is_empty() {
            return Ok(self
                .block
                .index
                .label_values(name)
                .into_iter()
                .map(str::to_string)
                .collect());
        }
        let mut values = BTreeSet::new();
        for l in self.matching_labels(matchers)? {
            if let Some(v) = l.get(name) {
                values.insert(v.to_string());
            }
        }
        Ok(values.into_iter().collect())
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        if matchers.is_empty() {
            return Ok(self
                .block
                .index
                .label_names()
                .into_iter()
                .map(str::to_string)
                .collect());
        }
        let mut names = BTreeSet::new();
        for l in self.matching_labels(matchers)? {
            for p in l.iter() {
                names.insert(p.name.to_string());
            }
        }
        Ok(names.into_iter().collect())
    }
}

/// Decodes series lazily, one per `next`.
struct BlockSeriesSet {
    block: Arc<Block>,
    tombstones: Arc<Tombstones>,
    refs: std::vec::IntoIter<u32>,
    mint: Timestamp,
    maxt: Timestamp,
    failed: bool,
}

impl Iterator for BlockSeriesSet {
    type Item = Result<Series, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let mut chunks = Vec::new();
        for r in self.refs.by_ref() {
            let labels = match self.block.index.series(r, &mut chunks) {
                Ok(l) => l,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(corruption(e)));
                }
            };
            let deleted = self.tombstones.get(u64::from(r)).to_vec();
            chunks.retain(|c| {
                c.max_t >= self.mint
                    && c.min_t <= self.maxt
                    && !deleted.iter().any(|(a, b)| *a <= c.min_t && c.max_t <= *b)
            });
            if chunks.is_empty() {
                continue;
            }
            return Some(Ok(Series {
                labels,
                samples: Box::new(BlockSampleIterator {
                    block: self.block.clone(),
                    chunks: std::mem::take(&mut chunks),
                    next_chunk: 0,
                    deleted,
                    buf: Vec::new(),
                    pos: 0,
                    current: None,
                    mint: self.mint,
                    maxt: self.maxt,
                    err: None,
                }),
            }));
        }
        None
    }
}

/// Walks one block series' samples in `[mint, maxt]`, decoding a chunk at a time.
pub struct BlockSampleIterator {
    block: Arc<Block>,
    chunks: Vec<ChunkMeta>,
    next_chunk: usize,
    deleted: Vec<(i64, i64)>,
    buf: Vec<(Timestamp, f64)>,
    pos: usize,
    current: Option<(Timestamp, f64)>,
    mint: Timestamp,
    maxt: Timestamp,
    err: Option<StorageError>,
}

/// Decodes an XOR chunk into `buf` (other encodings are reported, not guessed at).
pub(crate) fn decode_chunk(
    encoding: u8,
    data: &[u8],
    buf: &mut Vec<(Timestamp, f64)>,
) -> Result<(), String> {
    if encoding != ENCODING_XOR {
        return Err(format!(
            "chunk encoding {encoding} (native histograms) is not supported in blocks yet"
        ));
    }
    crate::chunkenc::decode_into(data, buf).map_err(|e| e.to_string())
}

impl BlockSampleIterator {
    fn load_next_chunk(&mut self) -> bool {
        let Some(c) = self.chunks.get(self.next_chunk) else {
            return false;
        };
        self.next_chunk += 1;
        self.buf.clear();
        self.pos = 0;
        let res = match self.block.chunks.chunk(c.r) {
            Ok((enc, data)) => decode_chunk(enc, data, &mut self.buf),
            Err(e) => Err(e.0),
        };
        if let Err(e) = res {
            self.err = Some(StorageError::Corruption(format!(
                "block {}: {e}",
                self.block.meta.ulid
            )));
            self.chunks.clear();
            self.buf.clear();
            return false;
        }
        true
    }

    fn is_deleted(&self, t: Timestamp) -> bool {
        self.deleted.iter().any(|(a, b)| *a <= t && t <= *b)
    }
}

impl SampleIterator for BlockSampleIterator {
    fn next(&mut self) -> Option<ValueKind> {
        loop {
            if let Some(&(t, v)) = self.buf.get(self.pos) {
                self.pos += 1;
                if t < self.mint || self.is_deleted(t) {
                    continue;
                }
                if t > self.maxt {
                    self.current = None;
                    self.chunks.clear();
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
        if self
            .buf
            .get(self.pos..)
            .is_none_or(|rest| rest.last().is_none_or(|(lt, _)| *lt < t))
        {
            self.buf.clear();
            self.pos = 0;
            while let Some(c) = self.chunks.get(self.next_chunk) {
                if c.max_t >= t {
                    break;
                }
                self.next_chunk += 1;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn encode(samples: &[(i64, f64)]) -> Vec<u8> {
        let mut b = Vec::new();
        let mut a = XorAppender::new();
        for (t, v) in samples {
            a.append(&mut b, *t, *v);
        }
        b
    }

    #[test]
    fn ulids_are_well_formed_and_ordered_by_time() {
        let a = new_ulid(1_600_000_000_000);
        let b = new_ulid(1_600_000_000_001);
        assert!(is_ulid(&a), "{a}");
        assert!(a < b);
        assert!(!is_ulid("01BKGV7JC0RY8A6MACW02A2PJ"));
        assert!(!is_ulid("8ZZZZZZZZZZZZZZZZZZZZZZZZZ"));
    }

    #[test]
    fn write_open_query_delete() {
        let dir = tempfile::tempdir().unwrap();
        let labels: Vec<Labels> = (0..5)
            .map(|i| {
                Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())]).unwrap()
            })
            .collect();
        let spec = BlockSpec {
            min_time: 0,
            max_time: 10_000,
            ..Default::default()
        };
        let meta = write_block(dir.path(), &spec, &labels, |i, out| {
            if i == 2 {
                return Ok(()); // a series without chunks is left out
            }
            let s1: Vec<(i64, f64)> = (0..120)
                .map(|t| (t * 10, (i * 1000) as f64 + t as f64))
                .collect();
            let s2: Vec<(i64, f64)> = (120..200).map(|t| (t * 10, t as f64)).collect();
            for s in [s1, s2] {
                out.push(ChunkData {
                    encoding: ENCODING_XOR,
                    data: Cow::Owned(encode(&s)),
                    min_t: s[0].0,
                    max_t: s[s.len() - 1].0,
                });
            }
            Ok(())
        })
        .unwrap()
        .unwrap();
        assert_eq!(meta.stats.num_series, 4);
        assert_eq!(meta.stats.num_samples, 800);
        assert_eq!(meta.stats.num_chunks, 8);
        assert_eq!(meta.compaction.sources, vec![meta.ulid.clone()]);
        let bdir = dir.path().join(&meta.ulid);
        let names: BTreeSet<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 1, "no temporary directory left: {names:?}");

        let b = Arc::new(Block::open(&bdir).unwrap());
        assert_eq!(b.meta(), &meta);
        let q = b.querier(50, 1500);
        let got: Vec<Series> = q
            .select(true, None, &[Matcher::equal("__name__", "m")])
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got.len(), 4);
        let mut it = got.into_iter().nth(1).unwrap().samples;
        let mut n = 0;
        while it.next().is_some() {
            let (t, _) = it.at();
            assert!((50..=1500).contains(&t));
            n += 1;
        }
        assert_eq!(n, 146);
        assert_eq!(q.label_values("i", &[]).unwrap(), ["0", "1", "3", "4"]);

        assert_eq!(b.delete(100, 200, &[Matcher::equal("i", "1")]).unwrap(), 1);
        let b = Arc::new(Block::open(&bdir).unwrap());
        let mut s: Vec<Series> = b
            .querier(0, 300)
            .select(true, None, &[Matcher::equal("i", "1")])
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut it = s.remove(0).samples;
        let mut ts = Vec::new();
        while it.next().is_some() {
            ts.push(it.at_t());
        }
        assert_eq!(ts.len(), 31 - 11);
        assert!(!ts.contains(&150));
    }
}
