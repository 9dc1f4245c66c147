//! A reader of one WAL segment that can start at any record boundary and follow the segment
//! while the TSDB is still writing it.
//!
//! `tsdb::wal::WalReader` reads complete segments from their start; a remote-write queue
//! needs to resume at a saved offset and to stop cleanly where the writer has got to (the
//! last page of a live segment is usually partial, and a record may be half written). This
//! reader never consumes an incomplete record: it reports "nothing more yet" and the caller
//! polls again. The page/fragment format is Prometheus' (see `tsdb::wal`): 32 KiB pages,
//! 7-byte fragment headers (type, big-endian length, big-endian CRC32C), zero padding to the
//! end of a page, bit 3 of the type marking a snappy-compressed record.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use tsdb::wal::PAGE_SIZE;

const HEADER_SIZE: usize = 7;
const FRAG_PAGE_TERM: u8 = 0;
const FRAG_FULL: u8 = 1;
const FRAG_FIRST: u8 = 2;
const FRAG_MIDDLE: u8 = 3;
const FRAG_LAST: u8 = 4;
const SNAPPY_FLAG: u8 = 1 << 3;
const ZSTD_FLAG: u8 = 1 << 4;
const TYPE_MASK: u8 = SNAPPY_FLAG - 1;
/// Bytes read from the file per refill.
const READ_CHUNK: usize = 4 * PAGE_SIZE;
/// A decompressed record larger than this is treated as corrupt (bounds allocations).
const MAX_RECORD: usize = 512 << 20;

/// What [`SegmentTail::next_record`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// A whole record (decompressed) was placed in the output; it started at `offset`.
    Record { offset: u64 },
    /// No complete record after the current offset yet.
    Pending,
    /// The bytes at the current offset cannot be a record (checksum, framing); the offset is
    /// where the broken record starts. Once the segment is known to be complete, this is
    /// corruption; while it is being written it may be a write in progress.
    Broken { offset: u64, reason: String },
}

/// Follows one segment file from a record boundary.
pub struct SegmentTail {
    file: File,
    /// File offset of `buf[0]`.
    buf_start: u64,
    buf: Vec<u8>,
    /// File offset of the next record to parse.
    offset: u64,
    compressed: Vec<u8>,
}

impl SegmentTail {
    /// Opens `path` positioned at `offset` (which must be a record boundary or a page
    /// boundary; 0 for the start).
    pub fn open(path: &Path, offset: u64) -> io::Result<SegmentTail> {
        let file = File::open(path)?;
        Ok(SegmentTail {
            file,
            buf_start: offset,
            buf: Vec::new(),
            offset,
            compressed: Vec::new(),
        })
    }

    /// The offset of the next record.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes the file holds beyond the current offset that could not be parsed into a record
    /// (0 when the reader is at the end of what was written).
    pub fn unread_bytes(&mut self) -> io::Result<u64> {
        let len = self.file.metadata()?.len();
        Ok(len.saturating_sub(self.offset))
    }

    /// Makes sure `buf` holds the file's bytes up to `end` (exclusive) if they exist. Returns
    /// false when the file is shorter.
    fn fill_to(&mut self, end: u64) -> io::Result<bool> {
        let have = self.buf_start + self.buf.len() as u64;
        if end <= have {
            return Ok(true);
        }
        // Drop what was consumed before reading more.
        let consumed = (self.offset - self.buf_start) as usize;
        if consumed > 0 && consumed <= self.buf.len() {
            self.buf.drain(..consumed);
            self.buf_start = self.offset;
        }
        let have = self.buf_start + self.buf.len() as u64;
        let want = ((end - have) as usize).max(READ_CHUNK);
        self.file.seek(SeekFrom::Start(have))?;
        let old = self.buf.len();
        self.buf.resize(old + want, 0);
        let mut n = 0;
        while n < want {
            match self.file.read(&mut self.buf[old + n..]) {
                Ok(0) => break,
                Ok(got) => n += got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        }
        self.buf.truncate(old + n);
        Ok(self.buf_start + self.buf.len() as u64 >= end)
    }

    fn byte_at(&self, pos: u64) -> u8 {
        self.buf[(pos - self.buf_start) as usize]
    }

    fn slice(&self, from: u64, len: usize) -> &[u8] {
        let start = (from - self.buf_start) as usize;
        &self.buf[start..start + len]
    }

    /// Reads the next complete record into `out`.
    pub fn next_record(&mut self, out: &mut Vec<u8>) -> io::Result<Next> {
        out.clear();
        self.compressed.clear();
        let mut pos = self.offset;
        let mut record_start: Option<u64> = None;
        let mut compressed = false;
        loop {
            let in_page = (pos % PAGE_SIZE as u64) as usize;
            if in_page + HEADER_SIZE > PAGE_SIZE {
                // Too little room for a header: the rest of the page is padding.
                pos += (PAGE_SIZE - in_page) as u64;
                if record_start.is_none() {
                    self.offset = pos;
                }
                continue;
            }
            if !self.fill_to(pos + 1)? {
                return Ok(Next::Pending);
            }
            let kind_byte = self.byte_at(pos);
            let kind = kind_byte & TYPE_MASK;
            if kind == FRAG_PAGE_TERM {
                if let Some(start) = record_start {
                    return Ok(Next::Broken {
                        offset: start,
                        reason: "padding inside a record".into(),
                    });
                }
                // Zeros to the end of the page (checked lazily: a non-zero byte there would
                // be read as a header on the next page boundary anyway).
                let page_end = pos - in_page as u64 + PAGE_SIZE as u64;
                if !self.fill_to(page_end)? {
                    // The padding is not all there: the writer has not closed the page.
                    return Ok(Next::Pending);
                }
                let rest = self.slice(pos, (page_end - pos) as usize);
                if rest.iter().any(|b| *b != 0) {
                    return Ok(Next::Broken {
                        offset: record_start.unwrap_or(pos),
                        reason: "non-zero bytes in page padding".into(),
                    });
                }
                pos = page_end;
                if record_start.is_none() {
                    self.offset = pos;
                }
                continue;
            }
            let start = record_start.unwrap_or(pos);
            if kind_byte & ZSTD_FLAG != 0 {
                return Ok(Next::Broken {
                    offset: start,
                    reason: "zstd-compressed WAL records are not supported".into(),
                });
            }
            if !self.fill_to(pos + HEADER_SIZE as u64)? {
                return Ok(Next::Pending);
            }
            let header = self.slice(pos, HEADER_SIZE);
            let len = usize::from(u16::from_be_bytes([header[1], header[2]]));
            let crc = u32::from_be_bytes([header[3], header[4], header[5], header[6]]);
            if in_page + HEADER_SIZE + len > PAGE_SIZE {
                return Ok(Next::Broken {
                    offset: start,
                    reason: "fragment runs past the end of its page".into(),
                });
            }
            let data_pos = pos + HEADER_SIZE as u64;
            if !self.fill_to(data_pos + len as u64)? {
                return Ok(Next::Pending);
            }
            let data = self.slice(data_pos, len);
            if crc32c::crc32c(data) != crc {
                return Ok(Next::Broken {
                    offset: start,
                    reason: "checksum mismatch".into(),
                });
            }
            match (kind, record_start.is_some()) {
                (FRAG_FULL | FRAG_FIRST, false) => {
                    compressed = kind_byte & SNAPPY_FLAG != 0;
                    record_start = Some(pos);
                }
                (FRAG_MIDDLE | FRAG_LAST, true) => {}
                _ => {
                    return Ok(Next::Broken {
                        offset: start,
                        reason: format!("fragment of type {kind} out of order"),
                    });
                }
            }
            if compressed {
                let data = self.slice(data_pos, len).to_vec();
                self.compressed.extend_from_slice(&data);
            } else {
                let data = self.slice(data_pos, len);
                out.extend_from_slice(data);
            }
            pos = data_pos + len as u64;
            if kind == FRAG_FULL || kind == FRAG_LAST {
                if compressed {
                    let n = match snap::raw::decompress_len(&self.compressed) {
                        Ok(n) if n <= MAX_RECORD => n,
                        Ok(_) => {
                            return Ok(Next::Broken {
                                offset: start,
                                reason: "implausible decompressed record length".into(),
                            });
                        }
                        Err(e) => {
                            return Ok(Next::Broken {
                                offset: start,
                                reason: format!("snappy: {e}"),
                            });
                        }
                    };
                    out.resize(n, 0);
                    if let Err(e) = snap::raw::Decoder::new().decompress(&self.compressed, out) {
                        return Ok(Next::Broken {
                            offset: start,
                            reason: format!("snappy: {e}"),
                        });
                    }
                }
                self.offset = pos;
                return Ok(Next::Record { offset: start });
            }
        }
    }

    /// Moves past a broken region to the next page boundary (used once a segment is known to
    /// be complete and a record in it is corrupt).
    pub fn skip_to_next_page(&mut self) {
        let in_page = self.offset % PAGE_SIZE as u64;
        self.offset += PAGE_SIZE as u64 - in_page;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tsdb::wal::{Wal, segment_name};

    #[test]
    fn follows_a_segment_while_it_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut wal = Wal::open(dir.path(), 1 << 20, true).expect("wal");
        let path = dir.path().join(segment_name(0));
        let mut tail = SegmentTail::open(&path, 0).expect("open");
        let mut out = Vec::new();
        assert_eq!(tail.next_record(&mut out).expect("read"), Next::Pending);
        // Small, large (multi-page, compressible) and random-ish records.
        let small = vec![7u8; 10];
        let large: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let noisy: Vec<u8> = (0..70_000u64)
            .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8)
            .collect();
        let mut expected = Vec::new();
        for round in 0..5 {
            wal.log(&[&small, &large]).expect("log");
            expected.push(small.clone());
            expected.push(large.clone());
            if round % 2 == 0 {
                wal.log(&[&noisy]).expect("log");
                expected.push(noisy.clone());
            }
            // Read everything written so far, then find nothing more.
            while !expected.is_empty() {
                match tail.next_record(&mut out).expect("read") {
                    Next::Record { .. } => assert_eq!(out, expected.remove(0)),
                    other => panic!("expected a record, got {other:?}"),
                }
            }
            assert_eq!(tail.next_record(&mut out).expect("read"), Next::Pending);
        }
        // Resuming at a saved offset continues with the following record.
        let saved = tail.offset();
        wal.log(&[&small]).expect("log");
        let mut resumed = SegmentTail::open(&path, saved).expect("open");
        assert!(matches!(
            resumed.next_record(&mut out).expect("read"),
            Next::Record { .. }
        ));
        assert_eq!(out, small);
    }
}
