//! Byte-level helpers shared by the block file formats: an append-only encoder (big-endian
//! fixed-width integers, Go-compatible varints, length-prefixed strings) and a bounds-checked
//! decoder that turns every short read or overflow into a [`FormatError`] instead of a panic.
//! Also the CRC32 (Castagnoli) helper and directory fsync.

use std::fs::File;
use std::io;
use std::path::Path;

/// Malformed bytes read from a file: never a panic, always this error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FormatError(pub String);

impl FormatError {
    pub fn new(msg: impl Into<String>) -> Self {
        FormatError(msg.into())
    }
}

impl From<FormatError> for io::Error {
    fn from(e: FormatError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, e.0)
    }
}

/// CRC32 with the Castagnoli polynomial, as every Prometheus file format uses.
pub fn crc32(b: &[u8]) -> u32 {
    crc32c::crc32c(b)
}

/// Makes a directory's entries (new files, renames) durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Appends encoded values to a byte vector.
#[derive(Default, Debug)]
pub struct Encbuf {
    pub b: Vec<u8>,
}

impl Encbuf {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn len(&self) -> usize {
        self.b.len()
    }
    pub fn is_empty(&self) -> bool {
        self.b.is_empty()
    }
    pub fn reset(&mut self) {
        self.b.clear();
    }
    pub fn byte(&mut self, x: u8) {
        self.b.push(x);
    }
    pub fn be32(&mut self, x: u32) {
        self.b.extend_from_slice(&x.to_be_bytes());
    }
    pub fn be64(&mut self, x: u64) {
        self.b.extend_from_slice(&x.to_be_bytes());
    }
    pub fn uvarint(&mut self, x: u64) {
        let mut tmp = [0u8; 10];
        let n = crate::chunkenc::put_uvarint(&mut tmp, x);
        self.b.extend_from_slice(&tmp[..n]);
    }
    pub fn varint(&mut self, x: i64) {
        let mut tmp = [0u8; 10];
        let n = crate::chunkenc::put_varint(&mut tmp, x);
        self.b.extend_from_slice(&tmp[..n]);
    }
    /// A uvarint length followed by the bytes.
    pub fn uvarint_str(&mut self, s: &[u8]) {
        self.uvarint(s.len() as u64);
        self.b.extend_from_slice(s);
    }
    pub fn bytes(&mut self, s: &[u8]) {
        self.b.extend_from_slice(s);
    }
    /// Overwrites 4 bytes at `at` with `x` (big-endian): used to patch lengths.
    pub fn patch_be32(&mut self, at: usize, x: u32) {
        if let Some(dst) = self.b.get_mut(at..at + 4) {
            dst.copy_from_slice(&x.to_be_bytes());
        }
    }
}

/// Reads values from a byte slice, failing cleanly on truncated or malformed input.
#[derive(Debug, Clone)]
pub struct Decbuf<'a> {
    b: &'a [u8],
    what: &'static str,
}

impl<'a> Decbuf<'a> {
    pub fn new(b: &'a [u8], what: &'static str) -> Self {
        Decbuf { b, what }
    }

    fn short(&self) -> FormatError {
        FormatError(format!("{}: unexpected end of data", self.what))
    }

    pub fn remaining(&self) -> &'a [u8] {
        self.b
    }
    pub fn len(&self) -> usize {
        self.b.len()
    }
    pub fn is_empty(&self) -> bool {
        self.b.is_empty()
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        if n > self.b.len() {
            return Err(self.short());
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    pub fn skip(&mut self, n: usize) -> Result<(), FormatError> {
        self.take(n).map(|_| ())
    }
    pub fn byte(&mut self) -> Result<u8, FormatError> {
        Ok(self.take(1)?[0])
    }
    pub fn be32(&mut self) -> Result<u32, FormatError> {
        let s = self.take(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    pub fn be64(&mut self) -> Result<u64, FormatError> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_be_bytes(a))
    }
    pub fn uvarint(&mut self) -> Result<u64, FormatError> {
        let mut x: u64 = 0;
        let mut shift = 0u32;
        for (i, &b) in self.b.iter().enumerate() {
            if i == 10 || (i == 9 && b > 1) {
                return Err(FormatError(format!(
                    "{}: varint overflows 64 bits",
                    self.what
                )));
            }
            x |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                self.b = &self.b[i + 1..];
                return Ok(x);
            }
            shift += 7;
        }
        Err(self.short())
    }
    pub fn uvarint32(&mut self) -> Result<u32, FormatError> {
        let x = self.uvarint()?;
        u32::try_from(x).map_err(|_| FormatError(format!("{}: value overflows 32 bits", self.what)))
    }
    pub fn varint(&mut self) -> Result<i64, FormatError> {
        let ux = self.uvarint()?;
        Ok(((ux >> 1) as i64) ^ -((ux & 1) as i64))
    }
    pub fn uvarint_bytes(&mut self) -> Result<&'a [u8], FormatError> {
        let n = self.uvarint()?;
        let n = usize::try_from(n).map_err(|_| self.short())?;
        self.take(n)
    }
    pub fn uvarint_str(&mut self) -> Result<&'a str, FormatError> {
        let b = self.uvarint_bytes()?;
        std::str::from_utf8(b).map_err(|_| FormatError(format!("{}: invalid UTF-8", self.what)))
    }
}

/// `b[at..at + n]`, or an error naming `what`.
pub fn slice<'a>(b: &'a [u8], at: usize, n: usize, what: &str) -> Result<&'a [u8], FormatError> {
    at.checked_add(n)
        .and_then(|end| b.get(at..end))
        .ok_or_else(|| FormatError(format!("{what}: out of bounds ({at}+{n} > {})", b.len())))
}

/// Reads a section that starts with a 4-byte big-endian length, followed by that many bytes and
/// a CRC32 of them; returns the checked content.
pub fn be32_section<'a>(b: &'a [u8], at: usize, what: &str) -> Result<&'a [u8], FormatError> {
    let lb = slice(b, at, 4, what)?;
    let n = u32::from_be_bytes([lb[0], lb[1], lb[2], lb[3]]) as usize;
    let content = slice(b, at + 4, n, what)?;
    let cb = slice(b, at + 4 + n, 4, what)?;
    let want = u32::from_be_bytes([cb[0], cb[1], cb[2], cb[3]]);
    if crc32(content) != want {
        return Err(FormatError(format!(
            "{what}: checksum mismatch at offset {at}"
        )));
    }
    Ok(content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        let mut e = Encbuf::new();
        for x in [0u64, 1, 127, 128, 300, u64::MAX] {
            e.uvarint(x);
        }
        for x in [0i64, -1, 1, i64::MIN, i64::MAX] {
            e.varint(x);
        }
        e.uvarint_str(b"hello");
        let mut d = Decbuf::new(&e.b, "test");
        for x in [0u64, 1, 127, 128, 300, u64::MAX] {
            assert_eq!(d.uvarint().unwrap(), x);
        }
        for x in [0i64, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(d.varint().unwrap(), x);
        }
        assert_eq!(d.uvarint_str().unwrap(), "hello");
        assert!(d.is_empty());
        assert!(d.byte().is_err());
    }

    #[test]
    fn truncated_and_overlong_fail() {
        assert!(Decbuf::new(&[0x80], "t").uvarint().is_err());
        assert!(Decbuf::new(&[0xff; 11], "t").uvarint().is_err());
        assert!(Decbuf::new(&[5, b'a'], "t").uvarint_str().is_err());
        assert!(be32_section(&[0, 0, 0, 9, 1], 0, "t").is_err());
        let mut e = Encbuf::new();
        e.be32(2);
        e.bytes(b"ab");
        e.be32(crc32(b"ab"));
        assert_eq!(be32_section(&e.b, 0, "t").unwrap(), b"ab");
        e.b[5] = b'x';
        assert!(be32_section(&e.b, 0, "t").is_err());
    }
}
