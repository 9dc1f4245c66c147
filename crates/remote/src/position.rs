//! The on-disk progress of one remote-write queue, so that a restart resumes exactly where the
//! receiver's acknowledgements got to.
//!
//! Two files in the queue's directory (`<data>/remote/<queue-id>/`):
//!
//! - `position`: a snapshot, replaced atomically (written to `position.tmp`, fsynced, renamed,
//!   directory fsynced). It holds the WAL segment to resume reading at, an offset in that
//!   segment before which records are skipped (only used by a fresh queue, which starts at
//!   the WAL's end), and per series (by the 64-bit hash of its WAL labels) the timestamp of
//!   the newest sample that is *done* — acknowledged by the receiver, or dropped and counted.
//! - `acks`: a journal appended after every acknowledged batch (`write(2)`, no fsync), with
//!   the same per-series timestamps. It makes a killed process resume without resending what
//!   the receiver already has (a Prometheus receiver refuses a whole request when one sample
//!   in it is older than what it stored). A snapshot empties it.
//!
//! Within one series, samples are sent in WAL order and a batch is done before the next one
//! of its shard starts, so "done" is always a prefix of a series' samples: re-reading from the
//! resume segment and skipping every sample at or before the series' done timestamp
//! reproduces exactly the samples not yet done. (Two series whose label hashes collide would
//! share an entry; with 64-bit hashes this is accepted.)
//!
//! Both files carry CRC32C checksums; a torn journal tail is ignored, a damaged snapshot is
//! reported and the queue starts at the WAL's end (logged by the caller).

use crate::encode::FastMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"MRDRWPOS";
const VERSION: u32 = 1;

/// Where to resume and what is done.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Position {
    /// WAL segment to start reading samples at.
    pub segment: u32,
    /// Records of `segment` starting before this offset are skipped.
    pub skip_before: u64,
    /// Series label hash → timestamp of the newest done sample.
    pub done: FastMap<u64, i64>,
}

/// The two files of a queue directory.
pub struct PositionStore {
    dir: PathBuf,
    journal: Option<File>,
}

/// Decodes a snapshot; `None` when it is damaged.
fn decode_snapshot(b: &[u8]) -> Option<Position> {
    if b.len() < 8 + 4 + 4 + 8 + 8 + 4 || &b[..8] != MAGIC {
        return None;
    }
    let (body, crc) = b.split_at(b.len() - 4);
    if crc32c::crc32c(body) != u32::from_be_bytes(crc.try_into().ok()?) {
        return None;
    }
    let version = u32::from_be_bytes(body[8..12].try_into().ok()?);
    if version != VERSION {
        return None;
    }
    let segment = u32::from_be_bytes(body[12..16].try_into().ok()?);
    let skip_before = u64::from_be_bytes(body[16..24].try_into().ok()?);
    let n = u64::from_be_bytes(body[24..32].try_into().ok()?);
    let entries = &body[32..];
    if (entries.len() as u64) != n.checked_mul(16)? {
        return None;
    }
    let mut done = FastMap::default();
    done.reserve(n as usize);
    for e in entries.chunks_exact(16) {
        let key = u64::from_be_bytes(e[..8].try_into().ok()?);
        let t = i64::from_be_bytes(e[8..].try_into().ok()?);
        done.insert(key, t);
    }
    Some(Position {
        segment,
        skip_before,
        done,
    })
}

fn encode_snapshot(p: &Position) -> Vec<u8> {
    let mut b = Vec::with_capacity(40 + p.done.len() * 16);
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&VERSION.to_be_bytes());
    b.extend_from_slice(&p.segment.to_be_bytes());
    b.extend_from_slice(&p.skip_before.to_be_bytes());
    b.extend_from_slice(&(p.done.len() as u64).to_be_bytes());
    for (k, t) in &p.done {
        b.extend_from_slice(&k.to_be_bytes());
        b.extend_from_slice(&t.to_be_bytes());
    }
    let crc = crc32c::crc32c(&b);
    b.extend_from_slice(&crc.to_be_bytes());
    b
}

/// Applies journal frames (`u32` length, `u32` CRC32C, `length` bytes of 16-byte entries) to
/// `done`, stopping at the first incomplete or damaged frame.
fn replay_journal(b: &[u8], done: &mut FastMap<u64, i64>) -> usize {
    let mut pos = 0;
    let mut frames = 0;
    while b.len() - pos >= 8 {
        let len = u32::from_be_bytes([b[pos], b[pos + 1], b[pos + 2], b[pos + 3]]) as usize;
        let crc = u32::from_be_bytes([b[pos + 4], b[pos + 5], b[pos + 6], b[pos + 7]]);
        let Some(body) = b.get(pos + 8..pos + 8 + len) else {
            break;
        };
        if !len.is_multiple_of(16) || crc32c::crc32c(body) != crc {
            break;
        }
        for e in body.chunks_exact(16) {
            let mut k = [0u8; 8];
            let mut t = [0u8; 8];
            k.copy_from_slice(&e[..8]);
            t.copy_from_slice(&e[8..]);
            let t = i64::from_be_bytes(t);
            let slot = done.entry(u64::from_be_bytes(k)).or_insert(i64::MIN);
            *slot = (*slot).max(t);
        }
        pos += 8 + len;
        frames += 1;
    }
    frames
}

impl PositionStore {
    /// Uses (creating) `dir`.
    pub fn open(dir: &Path) -> io::Result<PositionStore> {
        fs::create_dir_all(dir)?;
        Ok(PositionStore {
            dir: dir.to_path_buf(),
            journal: None,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The saved position with the journal applied: `Ok(None)` for a fresh queue,
    /// `Err` when the snapshot is damaged.
    pub fn load(&self) -> Result<Option<Position>, String> {
        let path = self.dir.join("position");
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        };
        let mut p = decode_snapshot(&bytes)
            .ok_or_else(|| format!("{} is damaged (checksum or format)", path.display()))?;
        if let Ok(j) = fs::read(self.dir.join("acks")) {
            replay_journal(&j, &mut p.done);
        }
        Ok(Some(p))
    }

    /// Writes a snapshot durably and empties the journal.
    pub fn save(&mut self, p: &Position) -> io::Result<()> {
        let tmp = self.dir.join("position.tmp");
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&encode_snapshot(p))?;
            f.sync_all()?;
        }
        fs::rename(&tmp, self.dir.join("position"))?;
        File::open(&self.dir)?.sync_all()?;
        // The snapshot covers everything journalled so far.
        let j = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(self.dir.join("acks"))?;
        self.journal = Some(j);
        Ok(())
    }

    /// Appends done timestamps to the journal (one `write(2)`).
    pub fn journal(&mut self, entries: &[(u64, i64)]) -> io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        if self.journal.is_none() {
            self.journal = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.join("acks"))?,
            );
        }
        let mut frame = Vec::with_capacity(8 + entries.len() * 16);
        frame.extend_from_slice(&((entries.len() * 16) as u32).to_be_bytes());
        frame.extend_from_slice(&[0; 4]);
        for (k, t) in entries {
            frame.extend_from_slice(&k.to_be_bytes());
            frame.extend_from_slice(&t.to_be_bytes());
        }
        let crc = crc32c::crc32c(&frame[8..]);
        frame[4..8].copy_from_slice(&crc.to_be_bytes());
        match self.journal.as_mut() {
            Some(f) => f.write_all(&frame),
            None => Ok(()),
        }
    }
}

/// The resume segment saved in a queue directory, without loading the rest (for the TSDB's
/// WAL truncation at start-up, before the queues run).
pub fn saved_segment(dir: &Path) -> Option<u32> {
    let b = fs::read(dir.join("position")).ok()?;
    decode_snapshot(&b).map(|p| p.segment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_journal_and_torn_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = PositionStore::open(dir.path()).expect("open");
        assert_eq!(store.load(), Ok(None));
        let mut p = Position {
            segment: 3,
            skip_before: 4096,
            done: FastMap::default(),
        };
        p.done.insert(1, 100);
        p.done.insert(2, 200);
        store.save(&p).expect("save");
        assert_eq!(saved_segment(dir.path()), Some(3));
        store.journal(&[(1, 150), (3, 300)]).expect("journal");
        store.journal(&[(2, 250)]).expect("journal");
        // A torn frame at the end is ignored.
        {
            let mut f = OpenOptions::new()
                .append(true)
                .open(dir.path().join("acks"))
                .expect("acks");
            f.write_all(&[0, 0, 0, 16, 1, 2]).expect("write");
        }
        let loaded = store.load().expect("load").expect("some");
        assert_eq!(loaded.segment, 3);
        assert_eq!(loaded.skip_before, 4096);
        assert_eq!(loaded.done.get(&1), Some(&150));
        assert_eq!(loaded.done.get(&2), Some(&250));
        assert_eq!(loaded.done.get(&3), Some(&300));
        // A new snapshot empties the journal.
        store.save(&loaded).expect("save");
        assert_eq!(
            fs::metadata(dir.path().join("acks")).expect("acks").len(),
            0
        );
        // A damaged snapshot is reported.
        let mut bytes = fs::read(dir.path().join("position")).expect("read");
        bytes[20] ^= 1;
        fs::write(dir.path().join("position"), &bytes).expect("write");
        assert!(store.load().is_err());
    }
}
