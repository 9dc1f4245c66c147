//! A block's `tombstones` file: deleted time ranges per series (Prometheus' format, see
//! `tsdb/docs/format/tombstones.md`).
//!
//! Magic `0x0130BA30`, format version 1, then one entry per interval (series reference as
//! uvarint, min and max time as varints, inclusive) and a CRC32C of the entries. Written to a
//! temporary file, synced and renamed so a crash leaves either the old or the new file.

use crate::encoding::{Decbuf, Encbuf, FormatError, crc32, fsync_dir};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

pub const MAGIC_TOMBSTONES: u32 = 0x0130_BA30;
pub const FILE_NAME: &str = "tombstones";

/// Deleted intervals per series reference, each list sorted and non-overlapping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tombstones {
    pub by_series: BTreeMap<u64, Vec<(i64, i64)>>,
}

impl Tombstones {
    pub fn is_empty(&self) -> bool {
        self.by_series.is_empty()
    }

    /// Number of intervals over all series.
    pub fn num_intervals(&self) -> usize {
        self.by_series.values().map(Vec::len).sum()
    }

    /// Adds a deleted interval, merging it with overlapping or adjacent ones.
    pub fn add(&mut self, series: u64, min_t: i64, max_t: i64) {
        let v = self.by_series.entry(series).or_default();
        v.push((min_t, max_t));
        v.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(v.len());
        for &(a, b) in v.iter() {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        *v = merged;
    }

    /// The deleted intervals of `series` (empty when none).
    pub fn get(&self, series: u64) -> &[(i64, i64)] {
        self.by_series.get(&series).map_or(&[], Vec::as_slice)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encbuf::new();
        e.be32(MAGIC_TOMBSTONES);
        e.byte(1);
        for (s, ivs) in &self.by_series {
            for (a, b) in ivs {
                e.uvarint(*s);
                e.varint(*a);
                e.varint(*b);
            }
        }
        let crc = crc32(&e.b[5..]);
        e.be32(crc);
        e.b
    }

    pub fn decode(b: &[u8]) -> Result<Tombstones, FormatError> {
        if b.len() < 9 {
            return Err(FormatError::new("tombstones: file too short"));
        }
        let mut d = Decbuf::new(b, "tombstones");
        if d.be32()? != MAGIC_TOMBSTONES {
            return Err(FormatError::new("tombstones: invalid magic number"));
        }
        let v = d.byte()?;
        if v != 1 {
            return Err(FormatError::new(format!(
                "tombstones: unsupported version {v}"
            )));
        }
        let body = &b[5..b.len() - 4];
        let want = Decbuf::new(&b[b.len() - 4..], "tombstones").be32()?;
        if crc32(body) != want {
            return Err(FormatError::new("tombstones: checksum mismatch"));
        }
        let mut t = Tombstones::default();
        let mut d = Decbuf::new(body, "tombstones");
        while !d.is_empty() {
            let s = d.uvarint()?;
            let a = d.varint()?;
            let b = d.varint()?;
            t.add(s, a, b);
        }
        Ok(t)
    }

    /// Reads `dir/tombstones`; a missing file means no tombstones.
    pub fn read(dir: &Path) -> Result<Tombstones, FormatError> {
        match std::fs::read(dir.join(FILE_NAME)) {
            Ok(b) => Self::decode(&b),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Tombstones::default()),
            Err(e) => Err(FormatError::new(format!("tombstones: {e}"))),
        }
    }

    /// Writes `dir/tombstones` atomically (temporary file, fsync, rename, directory fsync).
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        let tmp = dir.join(format!("{FILE_NAME}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&self.encode())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, dir.join(FILE_NAME))?;
        fsync_dir(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_merge() {
        let mut t = Tombstones::default();
        t.add(3, 10, 20);
        t.add(3, 15, 30);
        t.add(3, 40, 50);
        t.add(1, -5, 5);
        assert_eq!(t.get(3), [(10, 30), (40, 50)]);
        let dir = tempfile::tempdir().unwrap();
        t.write(dir.path()).unwrap();
        assert_eq!(Tombstones::read(dir.path()).unwrap(), t);
        let empty = Tombstones::default().encode();
        assert_eq!(empty, [0x01, 0x30, 0xBA, 0x30, 1, 0, 0, 0, 0]);
        let mut bad = t.encode();
        let n = bad.len();
        bad[n - 6] ^= 1;
        assert!(Tombstones::decode(&bad).is_err());
        assert!(Tombstones::decode(&bad[..4]).is_err());
    }
}
