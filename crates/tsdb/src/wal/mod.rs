//! The write-ahead log, in Prometheus' WAL format.
//!
//! A WAL is a directory of numbered segment files (`00000000`, `00000001`, ...), each at most
//! `segment_size` bytes (128 MiB by default) and written in 32 KiB pages. A record is split
//! into fragments that fit the page: each fragment has a 7-byte header (type, big-endian `u16`
//! length, big-endian CRC32C of the data) and the type says whether it is a full record or
//! the first/middle/last part of one (bit 3 set when the record is snappy-compressed). Records
//! never span segments. A page whose remaining space is smaller than a header is padded with
//! zeros, which is also how a torn write is recognised: garbage or zeros where a header must be.
//!
//! Durability: [`Wal::log`] hands the records to the kernel (`write(2)`) before it returns, so a
//! committed batch survives the process being killed at any moment. Surviving a power loss
//! needs the data on the device: segments are `fsync`ed when they are completed and on
//! [`Wal::sync`] / [`Wal::close`]; the head calls `sync` periodically (see ARCHITECTURE.md).
//!
//! Reading ([`WalReader`]) streams record by record with one page of buffer. A corrupt or torn
//! record stops the reader with its position; [`repair`] then truncates the WAL there (dropping
//! later segments) and reports how much was lost, so start-up never fails on a bad tail.

pub mod checkpoint;
pub mod record;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub const PAGE_SIZE: usize = 32 * 1024;
pub const DEFAULT_SEGMENT_SIZE: usize = 128 * 1024 * 1024;
const HEADER_SIZE: usize = 7;

const FRAG_PAGE_TERM: u8 = 0;
const FRAG_FULL: u8 = 1;
const FRAG_FIRST: u8 = 2;
const FRAG_MIDDLE: u8 = 3;
const FRAG_LAST: u8 = 4;
const SNAPPY_FLAG: u8 = 1 << 3;
const ZSTD_FLAG: u8 = 1 << 4;
const FRAG_TYPE_MASK: u8 = SNAPPY_FLAG - 1;

/// Records shorter than this are stored uncompressed (compression would not pay).
const MIN_COMPRESS: usize = 256;

/// The file name of segment `index`.
pub fn segment_name(index: u32) -> String {
    format!("{index:08}")
}

/// Segment indexes present in `dir`, sorted.
pub fn list_segments(dir: &Path) -> io::Result<Vec<u32>> {
    let mut v: Vec<u32> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name();
            let name = name.to_str()?;
            (name.len() >= 6 && name.bytes().all(|b| b.is_ascii_digit()))
                .then(|| name.parse().ok())?
        })
        .collect();
    v.sort_unstable();
    Ok(v)
}

/// The segmented log writer.
pub struct Wal {
    dir: PathBuf,
    segment_size: usize,
    file: File,
    index: u32,
    /// Bytes of the current segment written, in whole pages plus the current page's flushed part.
    done_pages: usize,
    page: Box<[u8; PAGE_SIZE]>,
    /// Bytes of the page in use.
    alloc: usize,
    /// Bytes of the page already handed to the kernel.
    flushed: usize,
    compress: bool,
    scratch: Vec<u8>,
}

impl Wal {
    /// Opens the WAL in `dir` for writing, starting a new segment after the last existing one
    /// (existing segments are never appended to: their tail may have been repaired).
    pub fn open(dir: &Path, segment_size: usize, compress: bool) -> io::Result<Wal> {
        fs::create_dir_all(dir)?;
        let segment_size = segment_size.max(PAGE_SIZE) / PAGE_SIZE * PAGE_SIZE;
        let next = list_segments(dir)?.last().map_or(0, |i| i + 1);
        let file = create_segment(dir, next)?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            segment_size,
            file,
            index: next,
            done_pages: 0,
            page: Box::new([0; PAGE_SIZE]),
            alloc: 0,
            flushed: 0,
            compress,
            scratch: Vec::new(),
        })
    }

    /// The index of the segment being written.
    pub fn current_segment(&self) -> u32 {
        self.index
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn pages_per_segment(&self) -> usize {
        self.segment_size / PAGE_SIZE
    }

    /// Writes the records and hands them to the kernel before returning.
    pub fn log(&mut self, records: &[&[u8]]) -> io::Result<()> {
        for rec in records {
            self.log_one(rec)?;
        }
        self.flush_page(false)
    }

    fn log_one(&mut self, rec: &[u8]) -> io::Result<()> {
        let mut compressed = false;
        let mut scratch = std::mem::take(&mut self.scratch);
        let data: &[u8] = if self.compress && rec.len() >= MIN_COMPRESS {
            scratch.resize(snap::raw::max_compress_len(rec.len()), 0);
            match snap::raw::Encoder::new().compress(rec, &mut scratch) {
                Ok(n) if n < rec.len() => {
                    scratch.truncate(n);
                    compressed = true;
                    &scratch
                }
                _ => rec,
            }
        } else {
            rec
        };
        let result = self.write_fragments(data, compressed);
        self.scratch = scratch;
        result
    }

    fn write_fragments(&mut self, mut data: &[u8], compressed: bool) -> io::Result<()> {
        if PAGE_SIZE - self.alloc < HEADER_SIZE {
            self.flush_page(true)?;
        }
        // Space left in this segment, in payload bytes; a record never spans segments.
        let left = if self.done_pages < self.pages_per_segment() {
            let left_in_page = PAGE_SIZE - self.alloc - HEADER_SIZE;
            let free_pages = self.pages_per_segment() - self.done_pages - 1;
            left_in_page + free_pages * (PAGE_SIZE - HEADER_SIZE)
        } else {
            0
        };
        if data.len() > left && (self.alloc > 0 || self.done_pages > 0) {
            self.next_segment()?;
        }
        let mut first = true;
        loop {
            let room = PAGE_SIZE - self.alloc - HEADER_SIZE;
            let n = data.len().min(room);
            let (part, rest) = data.split_at(n);
            let kind = match (first, rest.is_empty()) {
                (true, true) => FRAG_FULL,
                (true, false) => FRAG_FIRST,
                (false, false) => FRAG_MIDDLE,
                (false, true) => FRAG_LAST,
            } | if compressed { SNAPPY_FLAG } else { 0 };
            let crc = crc32c::crc32c(part);
            let buf = &mut self.page[self.alloc..];
            buf[0] = kind;
            buf[1..3].copy_from_slice(&(n as u16).to_be_bytes());
            buf[3..7].copy_from_slice(&crc.to_be_bytes());
            buf[HEADER_SIZE..HEADER_SIZE + n].copy_from_slice(part);
            self.alloc += HEADER_SIZE + n;
            data = rest;
            first = false;
            if PAGE_SIZE - self.alloc < HEADER_SIZE {
                self.flush_page(true)?;
            }
            if data.is_empty() {
                return Ok(());
            }
            if self.done_pages >= self.pages_per_segment() {
                // Only a record larger than a whole segment gets here: let the segment grow.
                tracing::warn!(segment = self.index, "WAL record larger than a segment");
            }
        }
    }

    /// Writes the unflushed part of the page; with `clear`, pads it to full and starts a new one.
    fn flush_page(&mut self, clear: bool) -> io::Result<()> {
        let end = if clear { PAGE_SIZE } else { self.alloc };
        if clear {
            self.page[self.alloc..].fill(0);
        }
        if end > self.flushed {
            self.file.write_all(&self.page[self.flushed..end])?;
            self.flushed = end;
        }
        if clear {
            self.page.fill(0);
            self.alloc = 0;
            self.flushed = 0;
            self.done_pages += 1;
        }
        Ok(())
    }

    /// Completes the current segment (padding its last page) and starts the next one.
    pub fn next_segment(&mut self) -> io::Result<()> {
        if self.alloc > 0 {
            self.flush_page(true)?;
        }
        self.file.sync_data()?;
        self.index += 1;
        self.file = create_segment(&self.dir, self.index)?;
        self.done_pages = 0;
        Ok(())
    }

    /// Forces written data to the device.
    pub fn sync(&mut self) -> io::Result<()> {
        self.flush_page(false)?;
        self.file.sync_data()
    }

    /// Flushes and syncs; the WAL can be reopened later.
    pub fn close(mut self) -> io::Result<()> {
        self.sync()
    }
}

fn create_segment(dir: &Path, index: u32) -> io::Result<File> {
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(segment_name(index)))?;
    // Make the new file's directory entry durable too.
    File::open(dir)?.sync_all()?;
    Ok(f)
}

/// Where a WAL stopped making sense.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption {
    pub segment: u32,
    /// Byte offset in the segment where the broken record begins.
    pub offset: u64,
    pub reason: String,
}

impl std::fmt::Display for Corruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "segment {} offset {}: {}",
            segment_name(self.segment),
            self.offset,
            self.reason
        )
    }
}

/// Errors while reading.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("I/O error reading the WAL: {0}")]
    Io(#[from] io::Error),
    #[error("corrupt WAL at {0}")]
    Corrupt(Corruption),
}

/// Streams the records of segments `first..=last` of a WAL directory.
pub struct WalReader {
    dir: PathBuf,
    segments: Vec<u32>,
    /// Position in `segments`.
    seg_pos: usize,
    file: Option<io::BufReader<File>>,
    /// Offset in the current segment.
    offset: u64,
    /// Offset of the current page's start.
    page_start: u64,
    page: Box<[u8; PAGE_SIZE]>,
    /// Valid bytes in `page` (less than a page only at the end of a segment).
    page_len: usize,
    /// Read position within `page`.
    page_pos: usize,
    record_start: (u32, u64),
    compressed: Vec<u8>,
}

impl WalReader {
    /// A reader over the given segments of `dir` (as listed by [`list_segments`]).
    pub fn new(dir: &Path, segments: Vec<u32>) -> WalReader {
        WalReader {
            dir: dir.to_path_buf(),
            segments,
            seg_pos: 0,
            file: None,
            offset: 0,
            page_start: 0,
            page: Box::new([0; PAGE_SIZE]),
            page_len: 0,
            page_pos: 0,
            record_start: (0, 0),
            compressed: Vec::new(),
        }
    }

    /// The segment currently being read.
    pub fn segment(&self) -> Option<u32> {
        self.segments.get(self.seg_pos).copied()
    }

    fn corrupt(&self, reason: impl Into<String>) -> ReadError {
        ReadError::Corrupt(Corruption {
            segment: self.record_start.0,
            offset: self.record_start.1,
            reason: reason.into(),
        })
    }

    /// Loads the next page of the current segment (or opens the next segment). Returns false at
    /// the end of the last segment.
    fn next_page(&mut self) -> Result<bool, ReadError> {
        loop {
            if self.file.is_none() {
                let Some(&seg) = self.segments.get(self.seg_pos) else {
                    return Ok(false);
                };
                let f = File::open(self.dir.join(segment_name(seg)))?;
                self.file = Some(io::BufReader::with_capacity(PAGE_SIZE, f));
                self.offset = 0;
            }
            let Some(f) = self.file.as_mut() else {
                return Ok(false);
            };
            let mut n = 0;
            while n < PAGE_SIZE {
                let got = f.read(&mut self.page[n..])?;
                if got == 0 {
                    break;
                }
                n += got;
            }
            if n == 0 {
                self.file = None;
                self.seg_pos += 1;
                continue;
            }
            self.page_start = self.offset;
            self.offset += n as u64;
            self.page_len = n;
            self.page_pos = 0;
            return Ok(true);
        }
    }

    /// Reads the next record into `out` (decompressed). `Ok(false)` at the end of the WAL.
    pub fn next_record(&mut self, out: &mut Vec<u8>) -> Result<bool, ReadError> {
        out.clear();
        let mut in_record = false;
        let mut compressed = false;
        self.compressed.clear();
        loop {
            // Move to a page position where a header fits.
            if self.page_pos + HEADER_SIZE > self.page_len || self.page_len == 0 {
                // The rest of a full page must be zero padding.
                let seg_before = self.segment();
                if self.page_len == PAGE_SIZE && self.page[self.page_pos..].iter().any(|b| *b != 0)
                {
                    self.record_start = (
                        seg_before.unwrap_or(0),
                        self.page_start + self.page_pos as u64,
                    );
                    return Err(self.corrupt("unexpected non-zero bytes in page padding"));
                }
                if self.page_len > 0 && self.page_len < PAGE_SIZE && self.page_pos < self.page_len {
                    // A partial page ends a segment; leftovers shorter than a header are torn.
                    if self.page[self.page_pos..self.page_len]
                        .iter()
                        .any(|b| *b != 0)
                    {
                        self.record_start = (
                            seg_before.unwrap_or(0),
                            self.page_start + self.page_pos as u64,
                        );
                        return Err(self.corrupt("torn record header at the end of a segment"));
                    }
                }
                if !self.next_page()? {
                    if in_record {
                        return Err(self.corrupt("the WAL ends inside a record"));
                    }
                    return Ok(false);
                }
                if in_record && self.segment() != Some(self.record_start.0) {
                    return Err(self.corrupt("record continues past the end of its segment"));
                }
                continue;
            }
            let pos = self.page_pos;
            let kind_byte = self.page[pos];
            let kind = kind_byte & FRAG_TYPE_MASK;
            if !in_record {
                self.record_start = (self.segment().unwrap_or(0), self.page_start + pos as u64);
            }
            if kind == FRAG_PAGE_TERM {
                // Zero padding to the end of the page.
                if self.page[pos..self.page_len].iter().any(|b| *b != 0) {
                    return Err(self.corrupt("unexpected non-zero bytes in page padding"));
                }
                self.page_pos = self.page_len;
                if self.page_len < PAGE_SIZE {
                    // Zeros to the end of a short page: the segment ends here.
                    self.page_pos = self.page_len;
                }
                continue;
            }
            if kind_byte & ZSTD_FLAG != 0 {
                return Err(self.corrupt("zstd-compressed WAL records are not supported"));
            }
            let len = usize::from(u16::from_be_bytes([self.page[pos + 1], self.page[pos + 2]]));
            let crc = u32::from_be_bytes([
                self.page[pos + 3],
                self.page[pos + 4],
                self.page[pos + 5],
                self.page[pos + 6],
            ]);
            let start = pos + HEADER_SIZE;
            if start + len > self.page_len {
                return Err(self.corrupt(if self.page_len < PAGE_SIZE {
                    "torn record: the segment ends inside a fragment"
                } else {
                    "fragment runs past the end of its page"
                }));
            }
            let data = &self.page[start..start + len];
            if crc32c::crc32c(data) != crc {
                return Err(self.corrupt("checksum mismatch"));
            }
            match (kind, in_record) {
                (FRAG_FULL, false) | (FRAG_FIRST, false) => {
                    compressed = kind_byte & SNAPPY_FLAG != 0;
                }
                (FRAG_MIDDLE, true) | (FRAG_LAST, true) => {}
                (k, _) if k > FRAG_LAST => {
                    return Err(self.corrupt(format!("invalid fragment type {k}")));
                }
                _ => return Err(self.corrupt("fragments out of order")),
            }
            if compressed {
                self.compressed.extend_from_slice(data);
            } else {
                out.extend_from_slice(data);
            }
            self.page_pos = start + len;
            match kind {
                FRAG_FULL | FRAG_LAST => {
                    if compressed {
                        let n = snap::raw::decompress_len(&self.compressed)
                            .map_err(|e| self.corrupt(format!("snappy: {e}")))?;
                        // The declared length is bounded by what a record can hold.
                        if n > DEFAULT_SEGMENT_SIZE * 4 {
                            return Err(self.corrupt("implausible decompressed record length"));
                        }
                        out.resize(n, 0);
                        snap::raw::Decoder::new()
                            .decompress(&self.compressed, out)
                            .map_err(|e| self.corrupt(format!("snappy: {e}")))?;
                    }
                    return Ok(true);
                }
                _ => in_record = true,
            }
        }
    }
}

/// What a repair removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairReport {
    pub corruption: Corruption,
    /// Bytes cut from the corrupt segment plus the sizes of the deleted later segments.
    pub bytes_dropped: u64,
    pub segments_deleted: usize,
}

/// Truncates the WAL at a corruption: the corrupt segment is cut where the broken record
/// starts and every later segment is deleted.
pub fn repair(dir: &Path, c: &Corruption) -> io::Result<RepairReport> {
    let mut dropped = 0;
    let mut deleted = 0;
    for seg in list_segments(dir)? {
        if seg > c.segment {
            let p = dir.join(segment_name(seg));
            dropped += fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            fs::remove_file(p)?;
            deleted += 1;
        }
    }
    let p = dir.join(segment_name(c.segment));
    let mut f = OpenOptions::new().write(true).open(&p)?;
    let len = f.seek(SeekFrom::End(0))?;
    if c.offset < len {
        dropped += len - c.offset;
        f.set_len(c.offset)?;
    }
    f.sync_all()?;
    File::open(dir)?.sync_all()?;
    Ok(RepairReport {
        corruption: c.clone(),
        bytes_dropped: dropped,
        segments_deleted: deleted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(n: usize) -> Vec<Vec<u8>> {
        // Sizes from tiny to multi-page; even records compress well, odd ones are random.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..n)
            .map(|i| {
                let len = [1, 10, 300, 5_000, 40_000, 100_000][i % 6] + i;
                (0..len)
                    .map(|j| {
                        if i % 2 == 0 {
                            (j % 7) as u8
                        } else {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            x as u8
                        }
                    })
                    .collect()
            })
            .collect()
    }

    fn read_all(dir: &Path) -> (Vec<Vec<u8>>, Option<Corruption>) {
        let mut r = WalReader::new(dir, list_segments(dir).unwrap());
        let mut out = Vec::new();
        let mut buf = Vec::new();
        loop {
            match r.next_record(&mut buf) {
                Ok(true) => out.push(buf.clone()),
                Ok(false) => return (out, None),
                Err(ReadError::Corrupt(c)) => return (out, Some(c)),
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn write_and_read_back_across_pages_and_segments() {
        let dir = tempfile::tempdir().unwrap();
        let recs = records(60);
        for compress in [false, true] {
            let d = dir.path().join(format!("c{compress}"));
            let mut w = Wal::open(&d, 4 * PAGE_SIZE, compress).unwrap();
            for r in &recs {
                w.log(&[r]).unwrap();
            }
            w.close().unwrap();
            // Incompressible records alone fill more than two 4-page segments.
            let segs = list_segments(&d).unwrap();
            assert!(segs.len() > 2, "{segs:?}");
            let (got, corrupt) = read_all(&d);
            assert_eq!(corrupt, None);
            assert_eq!(got, recs);
            // Reopening starts a new segment; old records stay readable, new ones follow.
            let mut w = Wal::open(&d, 4 * PAGE_SIZE, compress).unwrap();
            w.log(&[b"after reopen"]).unwrap();
            drop(w);
            let (got, corrupt) = read_all(&d);
            assert_eq!(corrupt, None);
            assert_eq!(got.len(), recs.len() + 1);
            assert_eq!(got.last().unwrap(), b"after reopen");
        }
    }

    #[test]
    fn torn_tails_are_detected_and_repaired() {
        let recs = records(20);
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base");
        let mut w = Wal::open(&base, DEFAULT_SEGMENT_SIZE, true).unwrap();
        for r in &recs {
            w.log(&[r]).unwrap();
        }
        drop(w);
        let seg = base.join(segment_name(0));
        let full = fs::read(&seg).unwrap();
        // Cut the segment at many points: every prefix yields a clean prefix of the records after
        // repair, never an error or a panic.
        for cut in (0..full.len())
            .step_by(997)
            .chain([full.len() - 1, full.len() - 3])
        {
            let d = dir.path().join(format!("cut{cut}"));
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join(segment_name(0)), &full[..cut]).unwrap();
            let (got, corrupt) = read_all(&d);
            assert!(got.len() <= recs.len());
            assert_eq!(&recs[..got.len()], &got[..]);
            if let Some(c) = corrupt {
                let report = repair(&d, &c).unwrap();
                assert!(report.bytes_dropped > 0);
                let (again, corrupt) = read_all(&d);
                assert_eq!(corrupt, None, "clean after repair (cut {cut})");
                assert_eq!(again, got);
            }
            fs::remove_dir_all(&d).unwrap();
        }
    }

    #[test]
    fn bit_flips_are_caught_by_checksums() {
        let recs = records(12);
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base");
        let mut w = Wal::open(&base, DEFAULT_SEGMENT_SIZE, false).unwrap();
        for r in &recs {
            w.log(&[r]).unwrap();
        }
        drop(w);
        let full = fs::read(base.join(segment_name(0))).unwrap();
        for pos in (0..full.len()).step_by(1543) {
            let d = dir.path().join(format!("flip{pos}"));
            fs::create_dir_all(&d).unwrap();
            let mut bytes = full.clone();
            bytes[pos] ^= 0x10;
            fs::write(d.join(segment_name(0)), &bytes).unwrap();
            let (got, corrupt) = read_all(&d);
            // Whatever was read before the flip is intact; the flip itself is reported unless it
            // hit padding that is never read as data.
            assert_eq!(&recs[..got.len()], &got[..]);
            if got.len() < recs.len() {
                assert!(corrupt.is_some(), "flip at {pos} went unnoticed");
            }
            fs::remove_dir_all(&d).unwrap();
        }
    }

    #[test]
    fn later_segments_are_dropped_by_repair() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut w = Wal::open(d, 2 * PAGE_SIZE, false).unwrap();
        for r in records(30) {
            w.log(&[&r]).unwrap();
        }
        drop(w);
        let segs = list_segments(d).unwrap();
        assert!(segs.len() >= 4);
        // Corrupt the second segment's first byte.
        let p = d.join(segment_name(segs[1]));
        let mut bytes = fs::read(&p).unwrap();
        bytes[3] ^= 0xff;
        fs::write(&p, &bytes).unwrap();
        let (_, corrupt) = read_all(d);
        let c = corrupt.unwrap();
        assert_eq!(c.segment, segs[1]);
        let report = repair(d, &c).unwrap();
        assert_eq!(report.segments_deleted, segs.len() - 2);
        assert_eq!(list_segments(d).unwrap(), vec![segs[0], segs[1]]);
        assert_eq!(read_all(d).1, None);
    }
}
