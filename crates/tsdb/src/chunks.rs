//! A block's `chunks/` directory: segment files `000001`, `000002`, ... in Prometheus' block
//! chunk format (see `tsdb/docs/format/chunks.md`).
//!
//! Each file starts with magic `0x85BD40DD`, version 1 and three padding bytes, then chunks:
//! uvarint data length, encoding byte, data, CRC32C (big-endian) of encoding and data. A
//! chunk reference is `segment sequence (0-based) << 32 | offset in file`. Files are at most
//! 512 MiB. The writer appends and syncs; the reader memory-maps every file and checks each
//! chunk's bounds and checksum when it is read.

use crate::encoding::{Decbuf, FormatError, crc32};
use crate::index::Bytes;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

pub const MAGIC_CHUNKS: u32 = 0x85BD_40DD;
const HEADER_LEN: u64 = 8;
/// Maximum size of one segment file.
pub const DEFAULT_SEGMENT_SIZE: u64 = 512 * 1024 * 1024;

/// The file name of segment `seq` (0-based): `000001` for the first.
pub fn segment_file_name(seq: u32) -> String {
    format!("{:06}", u64::from(seq) + 1)
}

/// Appends chunks to a block's chunk segments.
pub struct ChunkWriter {
    dir: PathBuf,
    seq: u32,
    f: Option<BufWriter<File>>,
    pos: u64,
    segment_size: u64,
    /// Bytes written over all segments.
    pub written: u64,
}

impl ChunkWriter {
    /// Starts writing segments into `dir` (created when missing).
    pub fn create(dir: &Path) -> io::Result<ChunkWriter> {
        Self::with_segment_size(dir, DEFAULT_SEGMENT_SIZE)
    }

    pub fn with_segment_size(dir: &Path, segment_size: u64) -> io::Result<ChunkWriter> {
        fs::create_dir_all(dir)?;
        Ok(ChunkWriter {
            dir: dir.to_path_buf(),
            seq: 0,
            f: None,
            pos: 0,
            segment_size,
            written: 0,
        })
    }

    fn finish_segment(&mut self) -> io::Result<()> {
        if let Some(mut f) = self.f.take() {
            f.flush()?;
            f.get_ref().sync_all()?;
            self.seq += 1;
        }
        Ok(())
    }

    /// Writes one chunk and returns its reference.
    pub fn write_chunk(&mut self, encoding: u8, data: &[u8]) -> io::Result<u64> {
        let mut len_buf = [0u8; 10];
        let n = crate::chunkenc::put_uvarint(&mut len_buf, data.len() as u64);
        let total = n as u64 + 1 + data.len() as u64 + 4;
        if self.f.is_some() && self.pos + total > self.segment_size {
            self.finish_segment()?;
        }
        if self.f.is_none() {
            let f = File::create(self.dir.join(segment_file_name(self.seq)))?;
            let mut f = BufWriter::with_capacity(1 << 20, f);
            let mut hdr = [0u8; HEADER_LEN as usize];
            hdr[..4].copy_from_slice(&MAGIC_CHUNKS.to_be_bytes());
            hdr[4] = 1;
            f.write_all(&hdr)?;
            self.f = Some(f);
            self.pos = HEADER_LEN;
            self.written += HEADER_LEN;
        }
        let r = (u64::from(self.seq) << 32) | self.pos;
        let Some(f) = self.f.as_mut() else {
            return Err(io::Error::other("chunk segment not open"));
        };
        f.write_all(&len_buf[..n])?;
        f.write_all(&[encoding])?;
        f.write_all(data)?;
        let mut h = crc32c::crc32c(&[encoding]);
        h = crc32c::crc32c_append(h, data);
        f.write_all(&h.to_be_bytes())?;
        self.pos += total;
        self.written += total;
        Ok(r)
    }

    /// Flushes and syncs the last segment.
    pub fn finish(mut self) -> io::Result<()> {
        self.finish_segment()
    }
}

/// Reads chunks of a block through memory maps.
pub struct ChunkReader {
    segments: Vec<Bytes>,
    size: u64,
}

impl ChunkReader {
    /// Opens every segment in `dir` (files named by digits, in order).
    pub fn open(dir: &Path) -> Result<ChunkReader, FormatError> {
        let ioerr = |e: io::Error| FormatError::new(format!("chunks {}: {e}", dir.display()));
        let mut names: Vec<(u64, PathBuf)> = Vec::new();
        for e in fs::read_dir(dir).map_err(ioerr)? {
            let e = e.map_err(ioerr)?;
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_digit())
                && let Ok(n) = name.parse::<u64>()
            {
                names.push((n, e.path()));
            }
        }
        names.sort();
        let mut segments = Vec::with_capacity(names.len());
        let mut size = 0;
        for (_, p) in names {
            let b = Bytes::map(&p).map_err(ioerr)?;
            let mut d = Decbuf::new(&b, "chunk segment header");
            if d.be32()? != MAGIC_CHUNKS {
                return Err(FormatError::new(format!(
                    "chunk segment {}: invalid magic number",
                    p.display()
                )));
            }
            let v = d.byte()?;
            if v != 1 {
                return Err(FormatError::new(format!(
                    "chunk segment {}: unsupported version {v}",
                    p.display()
                )));
            }
            size += b.len() as u64;
            segments.push(b);
        }
        Ok(ChunkReader { segments, size })
    }

    /// Total bytes of the segment files.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The encoding and data of the chunk at `r`, checked against its CRC.
    pub fn chunk(&self, r: u64) -> Result<(u8, &[u8]), FormatError> {
        let seq = (r >> 32) as usize;
        let at = (r & 0xffff_ffff) as usize;
        let bad = |what: &str| FormatError::new(format!("chunk reference {r:#x}: {what}"));
        let seg = self
            .segments
            .get(seq)
            .ok_or_else(|| bad("no such segment"))?;
        if at < HEADER_LEN as usize {
            return Err(bad("offset inside the header"));
        }
        let rest = seg.get(at..).ok_or_else(|| bad("offset beyond the file"))?;
        let mut d = Decbuf::new(rest, "chunk");
        let n = usize::try_from(d.uvarint()?).map_err(|_| bad("length overflows"))?;
        let body = d.take(n.checked_add(1).ok_or_else(|| bad("length overflows"))?)?;
        let crc = d.be32()?;
        if crc32(body) != crc {
            return Err(bad("checksum mismatch"));
        }
        Ok((body[0], &body[1..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_and_cut_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ChunkWriter::with_segment_size(dir.path(), 300).unwrap();
        let mut refs = Vec::new();
        for i in 0..20u8 {
            let data = vec![i; 40 + usize::from(i)];
            refs.push((w.write_chunk(1, &data).unwrap(), data));
        }
        w.finish().unwrap();
        assert!(dir.path().join("000002").exists());
        let r = ChunkReader::open(dir.path()).unwrap();
        for (cr, data) in &refs {
            let (enc, got) = r.chunk(*cr).unwrap();
            assert_eq!(enc, 1);
            assert_eq!(got, &data[..]);
        }
        assert!(r.chunk(refs[0].0 + 1).is_err());
        assert!(r.chunk(99 << 32 | 8).is_err());
        assert!(r.chunk(0).is_err());
        assert!(r.chunk(u64::from(u32::MAX)).is_err());
    }
}
