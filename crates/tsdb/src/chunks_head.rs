//! Full head chunks on disk, memory-mapped (`chunks_head/` in the data directory).
//!
//! When a series' open chunk is full it is written here and only a 24-byte reference stays in
//! memory, so the heap holds one open chunk per series. The layout is Prometheus' head chunk
//! file format: files `000001`, `000002`, ... of at most 128 MiB, each starting with an 8-byte
//! header (magic `0x0130BC91`, version 1, three zero bytes) followed by entries of series id
//! (`u64`), min and max time (`i64`), encoding (`u8`), data length (uvarint), data, and a CRC32C
//! of all of that (big-endian). A reference is `file index << 32 | offset`.
//!
//! Files are created at their full size (sparse) and mapped once; entries are written with
//! `pwrite`, which the shared mapping sees at once, so readers never wait for writers beyond
//! the moment a file is added.

use memmap2::Mmap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

const MAGIC: u32 = 0x0130_BC91;
const VERSION: u8 = 1;
const FILE_HEADER: u64 = 8;
/// Maximum size of one file.
pub const MAX_FILE_SIZE: u64 = 128 * 1024 * 1024;

/// Where a chunk is: file index and offset.
pub type ChunkRef = u64;

struct Writer {
    file: File,
    index: u32,
    offset: u64,
}

/// Writes full chunks to files and reads them back through memory maps.
pub struct ChunkDiskMapper {
    dir: PathBuf,
    writer: Mutex<Option<Writer>>,
    /// Mapped files by index (index 1 is `maps[0]`); `None` once the file is deleted.
    maps: RwLock<Vec<Option<Arc<Mmap>>>>,
    /// Newest chunk end time per file (same indexing as `maps`).
    max_times: Mutex<Vec<i64>>,
    /// The cut of the previous truncation: files are deleted one truncation late, so that a
    /// query that took chunk references just before a truncation can still read them.
    prev_cut: Mutex<i64>,
    first_index: u32,
}

/// A chunk's bytes inside a mapped file.
#[derive(Clone)]
pub struct MappedChunk {
    map: Arc<Mmap>,
    start: usize,
    len: usize,
}

impl MappedChunk {
    pub fn bytes(&self) -> &[u8] {
        &self.map[self.start..self.start + self.len]
    }
}

/// A chunk file entry that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ChunkReadError {
    #[error("no chunk file for reference {0:#x}")]
    NoFile(ChunkRef),
    #[error("corrupt chunk entry at reference {0:#x}")]
    Corrupt(ChunkRef),
}

impl ChunkDiskMapper {
    /// Opens `dir`, removing chunk files left by an earlier run (the head rebuilds its chunks
    /// from the WAL on start-up).
    pub fn open(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        for e in fs::read_dir(dir)? {
            let e = e?;
            if e.file_type()?.is_file() {
                fs::remove_file(e.path())?;
            }
        }
        Ok(ChunkDiskMapper {
            dir: dir.to_path_buf(),
            writer: Mutex::new(None),
            maps: RwLock::new(Vec::new()),
            max_times: Mutex::new(Vec::new()),
            prev_cut: Mutex::new(i64::MIN),
            first_index: 1,
        })
    }

    fn new_file(&self, index: u32) -> io::Result<Writer> {
        let path = self.dir.join(format!("{index:06}"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        let mut header = [0u8; FILE_HEADER as usize];
        header[..4].copy_from_slice(&MAGIC.to_be_bytes());
        header[4] = VERSION;
        file.write_all_at(&header, 0)?;
        file.set_len(MAX_FILE_SIZE)?;
        // SAFETY: the file is private to this process's data directory (guarded by the DB's
        // lock file) and only ever grows by pwrite below already-mapped offsets; the mapping
        // covers the file's full, fixed length.
        let map = unsafe { Mmap::map(&file)? };
        let mut maps = self.maps.write().unwrap_or_else(|e| e.into_inner());
        maps.push(Some(Arc::new(map)));
        self.max_times
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(i64::MIN);
        Ok(Writer {
            file,
            index,
            offset: FILE_HEADER,
        })
    }

    /// Writes a full chunk and returns its reference.
    pub fn write_chunk(
        &self,
        series_id: u64,
        min_t: i64,
        max_t: i64,
        encoding: u8,
        data: &[u8],
    ) -> io::Result<ChunkRef> {
        let mut entry = Vec::with_capacity(data.len() + 40);
        entry.extend_from_slice(&series_id.to_be_bytes());
        entry.extend_from_slice(&min_t.to_be_bytes());
        entry.extend_from_slice(&max_t.to_be_bytes());
        entry.push(encoding);
        let mut tmp = [0u8; 10];
        let n = crate::chunkenc::put_uvarint(&mut tmp, data.len() as u64);
        entry.extend_from_slice(&tmp[..n]);
        entry.extend_from_slice(data);
        let crc = crc32c::crc32c(&entry);
        entry.extend_from_slice(&crc.to_be_bytes());

        let mut guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let needs_new = match guard.as_ref() {
            None => true,
            Some(w) => w.offset + entry.len() as u64 > MAX_FILE_SIZE,
        };
        if needs_new {
            let index = guard.as_ref().map_or(self.first_index, |w| w.index + 1);
            *guard = Some(self.new_file(index)?);
        }
        let Some(w) = guard.as_mut() else {
            return Err(io::Error::other("chunk file writer missing"));
        };
        w.file.write_all_at(&entry, w.offset)?;
        let r = (u64::from(w.index) << 32) | w.offset;
        w.offset += entry.len() as u64;
        if let Some(m) = self
            .max_times
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut((w.index - self.first_index) as usize)
        {
            *m = (*m).max(max_t);
        }
        Ok(r)
    }

    /// The data of the chunk at `r`, checked against its CRC.
    pub fn chunk(&self, r: ChunkRef) -> Result<MappedChunk, ChunkReadError> {
        let index = (r >> 32) as u32;
        let offset = (r & 0xffff_ffff) as usize;
        let map = {
            let maps = self.maps.read().unwrap_or_else(|e| e.into_inner());
            index
                .checked_sub(self.first_index)
                .and_then(|i| maps.get(i as usize))
                .cloned()
                .flatten()
                .ok_or(ChunkReadError::NoFile(r))?
        };
        let corrupt = || ChunkReadError::Corrupt(r);
        let head = map.get(offset..offset + 25).ok_or_else(corrupt)?;
        let _encoding = head[24];
        let mut len: u64 = 0;
        let mut shift = 0;
        let mut pos = offset + 25;
        loop {
            let b = *map.get(pos).ok_or_else(corrupt)?;
            pos += 1;
            len |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                break;
            }
            shift += 7;
            if shift > 63 {
                return Err(corrupt());
            }
        }
        let len = usize::try_from(len).map_err(|_| corrupt())?;
        let end = pos.checked_add(len).ok_or_else(corrupt)?;
        let crc_bytes = map.get(end..end + 4).ok_or_else(corrupt)?;
        let want = u32::from_be_bytes([crc_bytes[0], crc_bytes[1], crc_bytes[2], crc_bytes[3]]);
        if crc32c::crc32c(&map[offset..end]) != want {
            return Err(corrupt());
        }
        Ok(MappedChunk {
            map,
            start: pos,
            len,
        })
    }

    /// Deletes files (other than the one being written) whose chunks all end before the cut
    /// of the previous call; returns how many were removed. The head calls this after
    /// dropping chunks older than `cut` from memory.
    pub fn truncate_before(&self, cut: i64) -> io::Result<usize> {
        let limit = std::mem::replace(
            &mut *self.prev_cut.lock().unwrap_or_else(|e| e.into_inner()),
            cut,
        );
        let current = self
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|w| w.index);
        let doomed: Vec<u32> = {
            let max_times = self.max_times.lock().unwrap_or_else(|e| e.into_inner());
            let maps = self.maps.read().unwrap_or_else(|e| e.into_inner());
            max_times
                .iter()
                .enumerate()
                .filter(|(i, m)| **m < limit && maps.get(*i).is_some_and(Option::is_some))
                .map(|(i, _)| i as u32 + self.first_index)
                .filter(|idx| Some(*idx) != current)
                .collect()
        };
        for idx in &doomed {
            if let Some(slot) = self
                .maps
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut((idx - self.first_index) as usize)
            {
                *slot = None;
            }
            fs::remove_file(self.dir.join(format!("{idx:06}")))?;
        }
        Ok(doomed.len())
    }

    /// Number of chunk files on disk.
    pub fn num_files(&self) -> usize {
        self.maps
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|m| m.is_some())
            .count()
    }

    /// Total bytes written to chunk files.
    pub fn disk_size(&self) -> u64 {
        let maps = self.num_files() as u64;
        let guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_ref() {
            Some(w) => maps.saturating_sub(1) * MAX_FILE_SIZE + w.offset,
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_and_roll_files() {
        let dir = tempfile::tempdir().unwrap();
        let m = ChunkDiskMapper::open(dir.path()).unwrap();
        let mut refs = Vec::new();
        for i in 0..100u64 {
            let data = vec![i as u8; 100 + i as usize];
            refs.push((
                m.write_chunk(i, i as i64, i as i64 + 10, 1, &data).unwrap(),
                data,
            ));
        }
        for (r, data) in &refs {
            assert_eq!(m.chunk(*r).unwrap().bytes(), &data[..]);
        }
        assert!(m.chunk(refs[0].0 + 1).is_err());
        assert!(m.chunk(5 << 32).is_err());
        // A stale file from an earlier run is removed on open.
        drop(m);
        let m = ChunkDiskMapper::open(dir.path()).unwrap();
        assert!(m.chunk(refs[0].0).is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
