//! A block's `index` file in Prometheus' index format version 2: writing and reading.
//!
//! Layout (see Prometheus' `tsdb/docs/format/index.md`): an 8-byte-free header (magic
//! `0xBAAAD700`, version byte 2), the symbol table (sorted, deduplicated label strings; a symbol
//! is referenced by its position), the series (each entry 16-byte aligned, its id is
//! `offset / 16`, sorted by label set: labels as symbol references, then chunk metadata with
//! delta-encoded times and references), one label index per label name (legacy, still written
//! for older readers), the postings lists (the all-series list under the empty name/value
//! first), the label offset table, the postings offset table and the fixed-size TOC at the end.
//! Every section carries a CRC32 (Castagnoli) of its content.
//!
//! The writer streams series to the file: memory holds the symbol positions and the postings
//! lists (4 bytes per label pair per series), never the chunks. The reader works on a memory
//! map; it loads the symbol offsets and the postings offset table and decodes everything else
//! on demand, validating lengths and checksums so a corrupt file yields errors, not panics.

use crate::encoding::{Decbuf, Encbuf, FormatError, be32_section, crc32, slice};
use crate::head::postings::{intersect, subtract, union};
use model::labels::{Label, Labels};
use model::matcher::{MatchOp, Matcher};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::ops::Deref;
use std::path::Path;

pub const MAGIC_INDEX: u32 = 0xBAAA_D700;
pub const FORMAT_V2: u8 = 2;
const TOC_LEN: usize = 6 * 8 + 4;
const HEADER_LEN: usize = 5;

/// Where one chunk of a series is and which time range it covers (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkMeta {
    pub r: u64,
    pub min_t: i64,
    pub max_t: i64,
}

/// Offsets of the index sections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Toc {
    pub symbols: u64,
    pub series: u64,
    pub label_indices: u64,
    pub label_offset_table: u64,
    pub postings: u64,
    pub postings_offset_table: u64,
}

/// Writes an index file. Call [`IndexWriter::add_series`] in label-set order, then
/// [`IndexWriter::finish`].
pub struct IndexWriter {
    f: BufWriter<File>,
    pos: u64,
    sym_ids: HashMap<String, u32>,
    symbols: Vec<String>,
    /// (name id, value id) → series refs. Symbol ids sort like their strings.
    postings: BTreeMap<(u32, u32), Vec<u32>>,
    all: Vec<u32>,
    last: Option<Labels>,
    toc: Toc,
    buf: Encbuf,
}

impl IndexWriter {
    /// Creates `path` and writes the header and the symbol table (`symbols` must be every
    /// label name and value of the series to come; they are sorted and deduplicated here).
    pub fn create(path: &Path, mut symbols: Vec<String>) -> io::Result<IndexWriter> {
        symbols.sort_unstable();
        symbols.dedup();
        let f = File::create(path)?;
        let mut w = IndexWriter {
            f: BufWriter::with_capacity(1 << 20, f),
            pos: 0,
            sym_ids: HashMap::with_capacity(symbols.len()),
            symbols: Vec::new(),
            postings: BTreeMap::new(),
            all: Vec::new(),
            last: None,
            toc: Toc::default(),
            buf: Encbuf::new(),
        };
        let mut hdr = Encbuf::new();
        hdr.be32(MAGIC_INDEX);
        hdr.byte(FORMAT_V2);
        w.write(&hdr.b)?;

        w.toc.symbols = w.pos;
        let mut e = Encbuf::new();
        e.be32(0);
        e.be32(u32::try_from(symbols.len()).map_err(|_| io::Error::other("too many symbols"))?);
        for (i, s) in symbols.iter().enumerate() {
            e.uvarint_str(s.as_bytes());
            w.sym_ids.insert(s.clone(), i as u32);
        }
        let n =
            u32::try_from(e.len() - 4).map_err(|_| io::Error::other("symbol table too large"))?;
        e.patch_be32(0, n);
        let crc = crc32(&e.b[4..]);
        e.be32(crc);
        w.write(&e.b)?;
        w.symbols = symbols;
        Ok(w)
    }

    fn write(&mut self, b: &[u8]) -> io::Result<()> {
        self.f.write_all(b)?;
        self.pos += b.len() as u64;
        Ok(())
    }

    fn pad(&mut self, align: u64) -> io::Result<()> {
        let rem = self.pos % align;
        if rem != 0 {
            let zeros = [0u8; 16];
            self.write(&zeros[..(align - rem) as usize])?;
        }
        Ok(())
    }

    fn sym(&self, s: &str) -> io::Result<u32> {
        self.sym_ids
            .get(s)
            .copied()
            .ok_or_else(|| io::Error::other(format!("symbol {s:?} missing from the symbol table")))
    }

    /// Adds a series with its chunks (sorted by time). Label sets must strictly increase.
    pub fn add_series(&mut self, labels: &Labels, chunks: &[ChunkMeta]) -> io::Result<()> {
        if self.last.as_ref().is_some_and(|l| l >= labels) {
            return Err(io::Error::other(format!(
                "series {labels} added out of order"
            )));
        }
        if self.toc.series == 0 {
            self.pad(16)?;
            self.toc.series = self.pos;
        }
        self.pad(16)?;
        let r = u32::try_from(self.pos / 16).map_err(|_| io::Error::other("index too large"))?;
        let mut e = std::mem::take(&mut self.buf);
        e.reset();
        e.uvarint(labels.len() as u64);
        for l in labels.iter() {
            let (n, v) = (self.sym(&l.name)?, self.sym(&l.value)?);
            e.uvarint(u64::from(n));
            e.uvarint(u64::from(v));
            self.postings.entry((n, v)).or_default().push(r);
        }
        e.uvarint(chunks.len() as u64);
        let mut prev: Option<ChunkMeta> = None;
        for c in chunks {
            match prev {
                None => {
                    e.varint(c.min_t);
                    e.uvarint(c.max_t.wrapping_sub(c.min_t) as u64);
                    e.uvarint(c.r);
                }
                Some(p) => {
                    e.uvarint(c.min_t.wrapping_sub(p.max_t) as u64);
                    e.uvarint(c.max_t.wrapping_sub(c.min_t) as u64);
                    e.varint(c.r.wrapping_sub(p.r) as i64);
                }
            }
            prev = Some(*c);
        }
        let mut out = Encbuf::new();
        out.uvarint(e.len() as u64);
        out.bytes(&e.b);
        out.be32(crc32(&e.b));
        self.buf = e;
        self.write(&out.b)?;
        self.all.push(r);
        self.last = Some(labels.clone());
        Ok(())
    }

    /// Writes the label indices, postings, offset tables and TOC, then syncs the file.
    pub fn finish(mut self) -> io::Result<()> {
        if self.toc.series == 0 {
            self.toc.series = self.pos;
        }
        // Label indices: one per name, listing its values.
        self.pad(4)?;
        self.toc.label_indices = self.pos;
        let mut by_name: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for (n, v) in self.postings.keys() {
            by_name.entry(*n).or_default().push(*v);
        }
        let mut label_offsets: Vec<(u32, u64)> = Vec::with_capacity(by_name.len());
        for (n, values) in &by_name {
            self.pad(4)?;
            label_offsets.push((*n, self.pos));
            let mut e = Encbuf::new();
            e.be32((8 + 4 * values.len()) as u32);
            e.be32(1);
            e.be32(values.len() as u32);
            for v in values {
                e.be32(*v);
            }
            let crc = crc32(&e.b[4..]);
            e.be32(crc);
            self.write(&e.b)?;
        }

        // Postings: the all-series list first, then every label pair in order.
        self.pad(4)?;
        self.toc.postings = self.pos;
        let mut postings_offsets: Vec<(Option<(u32, u32)>, u64)> =
            Vec::with_capacity(self.postings.len() + 1);
        let all = std::mem::take(&mut self.all);
        postings_offsets.push((None, self.pos));
        self.write_postings(&all)?;
        let postings = std::mem::take(&mut self.postings);
        for (k, refs) in &postings {
            self.pad(4)?;
            postings_offsets.push((Some(*k), self.pos));
            self.write_postings(refs)?;
        }
        drop(postings);

        // Label offset table.
        self.toc.label_offset_table = self.pos;
        let mut e = Encbuf::new();
        e.be32(0);
        e.be32(label_offsets.len() as u32);
        for (n, off) in &label_offsets {
            e.uvarint(1);
            e.uvarint_str(self.symbols[*n as usize].as_bytes());
            e.uvarint(*off);
        }
        self.write_table(e)?;

        // Postings offset table.
        self.toc.postings_offset_table = self.pos;
        let mut e = Encbuf::new();
        e.be32(0);
        e.be32(postings_offsets.len() as u32);
        for (k, off) in &postings_offsets {
            e.uvarint(2);
            match k {
                None => {
                    e.uvarint_str(b"");
                    e.uvarint_str(b"");
                }
                Some((n, v)) => {
                    e.uvarint_str(self.symbols[*n as usize].as_bytes());
                    e.uvarint_str(self.symbols[*v as usize].as_bytes());
                }
            }
            e.uvarint(*off);
        }
        self.write_table(e)?;

        // TOC.
        let mut e = Encbuf::new();
        for x in [
            self.toc.symbols,
            self.toc.series,
            self.toc.label_indices,
            self.toc.label_offset_table,
            self.toc.postings,
            self.toc.postings_offset_table,
        ] {
            e.be64(x);
        }
        let crc = crc32(&e.b);
        e.be32(crc);
        self.write(&e.b)?;
        self.f.flush()?;
        self.f.get_ref().sync_all()?;
        Ok(())
    }

    /// Writes a table whose 4-byte length placeholder starts `e`, patching the length and
    /// appending the CRC.
    fn write_table(&mut self, mut e: Encbuf) -> io::Result<()> {
        let n = u32::try_from(e.len() - 4).map_err(|_| io::Error::other("table too large"))?;
        e.patch_be32(0, n);
        let crc = crc32(&e.b[4..]);
        e.be32(crc);
        self.write(&e.b)
    }

    fn write_postings(&mut self, refs: &[u32]) -> io::Result<()> {
        let mut e = Encbuf::new();
        e.be32((4 + 4 * refs.len()) as u32);
        e.be32(refs.len() as u32);
        for r in refs {
            e.be32(*r);
        }
        let crc = crc32(&e.b[4..]);
        e.be32(crc);
        self.write(&e.b)
    }
}

/// The bytes of a file: memory-mapped, or owned (tests, small files).
pub enum Bytes {
    Mmap(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mmap(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

impl Bytes {
    /// Maps `path` read-only (an empty file becomes an empty owned buffer: it cannot be mapped).
    pub fn map(path: &Path) -> io::Result<Bytes> {
        let f = File::open(path)?;
        if f.metadata()?.len() == 0 {
            return Ok(Bytes::Owned(Vec::new()));
        }
        // SAFETY: block files are immutable once their directory has been renamed into place;
        // nothing in this process writes to them, and Prometheus-compatible tools only read.
        let m = unsafe { memmap2::Mmap::map(&f)? };
        Ok(Bytes::Mmap(m))
    }
}

/// Reads an index file.
pub struct IndexReader {
    b: Bytes,
    toc: Toc,
    /// Offset of each symbol's length prefix, by symbol reference.
    symbols: Vec<u32>,
    /// Position of each postings offset table entry (the all-series entry excluded), in
    /// (name, value) order: 4 bytes per label pair; names and values are read from the map.
    entries: Vec<u32>,
    all_postings: Option<u64>,
}

fn err(msg: impl Into<String>) -> FormatError {
    FormatError::new(msg)
}

impl IndexReader {
    pub fn open(path: &Path) -> Result<IndexReader, FormatError> {
        let b = Bytes::map(path).map_err(|e| err(format!("reading {}: {e}", path.display())))?;
        Self::from_bytes(b)
    }

    pub fn from_bytes(b: Bytes) -> Result<IndexReader, FormatError> {
        if b.len() < HEADER_LEN + TOC_LEN {
            return Err(err("index: file too short"));
        }
        let mut d = Decbuf::new(&b[..HEADER_LEN], "index header");
        if d.be32()? != MAGIC_INDEX {
            return Err(err("index: invalid magic number"));
        }
        let version = d.byte()?;
        if version != FORMAT_V2 {
            return Err(err(format!("index: unsupported format version {version}")));
        }
        let toc_at = b.len() - TOC_LEN;
        let toc_bytes = &b[toc_at..];
        let mut d = Decbuf::new(&toc_bytes[..48], "index TOC");
        let toc = Toc {
            symbols: d.be64()?,
            series: d.be64()?,
            label_indices: d.be64()?,
            label_offset_table: d.be64()?,
            postings: d.be64()?,
            postings_offset_table: d.be64()?,
        };
        let want = u32::from_be_bytes([toc_bytes[48], toc_bytes[49], toc_bytes[50], toc_bytes[51]]);
        if crc32(&toc_bytes[..48]) != want {
            return Err(err("index: TOC checksum mismatch"));
        }

        let mut symbols = Vec::new();
        if toc.symbols != 0 {
            let at = off(toc.symbols)?;
            let content = be32_section(&b, at, "index symbol table")?;
            let mut d = Decbuf::new(content, "index symbol table");
            let n = d.be32()? as usize;
            symbols.reserve(n.min(content.len()));
            let base = at + 4;
            for _ in 0..n {
                let pos = base + (content.len() - d.len());
                symbols.push(u32::try_from(pos).map_err(|_| err("index: symbol table too large"))?);
                d.uvarint_str()?;
            }
        }

        let mut entries = Vec::new();
        let mut all_postings = None;
        let mut sorted = true;
        if toc.postings_offset_table != 0 {
            let at = off(toc.postings_offset_table)?;
            let content = be32_section(&b, at, "index postings offset table")?;
            let mut d = Decbuf::new(content, "index postings offset table");
            let n = d.be32()?;
            let base = at + 4;
            let mut prev: Option<(&str, &str)> = None;
            for _ in 0..n {
                let pos = base + (content.len() - d.len());
                let (name, value, o) = decode_entry(&mut d)?;
                if name.is_empty() && value.is_empty() {
                    all_postings = Some(o);
                    continue;
                }
                if prev.is_some_and(|p| p >= (name, value)) {
                    sorted = false;
                }
                prev = Some((name, value));
                entries
                    .push(u32::try_from(pos).map_err(|_| err("index: postings table too large"))?);
            }
        }
        let mut r = IndexReader {
            b,
            toc,
            symbols,
            entries,
            all_postings,
        };
        if !sorted {
            // Not written by Prometheus or Meridian; keep lookups working anyway.
            let mut keyed: Vec<(String, String, u32)> = Vec::with_capacity(r.entries.len());
            for (i, pos) in r.entries.iter().enumerate() {
                let (n, v, _) = r.entry(i)?;
                keyed.push((n.to_string(), v.to_string(), *pos));
            }
            keyed.sort();
            keyed.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
            r.entries = keyed.into_iter().map(|k| k.2).collect();
        }
        Ok(r)
    }

    pub fn toc(&self) -> Toc {
        self.toc
    }

    pub fn size(&self) -> usize {
        self.b.len()
    }

    pub fn num_symbols(&self) -> usize {
        self.symbols.len()
    }

    /// The symbol with reference `id`.
    pub fn symbol(&self, id: u32) -> Result<&str, FormatError> {
        let at = *self
            .symbols
            .get(id as usize)
            .ok_or_else(|| err(format!("index: symbol reference {id} out of range")))?;
        let rest = self
            .b
            .get(at as usize..)
            .ok_or_else(|| err("index: symbol offset out of range"))?;
        Decbuf::new(rest, "index symbol").uvarint_str()
    }

    /// All symbols in order.
    pub fn symbols(&self) -> Result<Vec<&str>, FormatError> {
        (0..self.symbols.len() as u32)
            .map(|i| self.symbol(i))
            .collect()
    }

    /// Decodes series `r`: its labels and chunk metadata.
    pub fn series(&self, r: u32, chunks: &mut Vec<ChunkMeta>) -> Result<Labels, FormatError> {
        chunks.clear();
        let at = r as usize * 16;
        let rest = self
            .b
            .get(at..)
            .ok_or_else(|| err(format!("index: series reference {r} out of range")))?;
        let mut d = Decbuf::new(rest, "index series");
        let n = usize::try_from(d.uvarint()?).map_err(|_| err("index: series too long"))?;
        let start = at + (rest.len() - d.len());
        let content = slice(&self.b, start, n, "index series")?;
        let cb = slice(&self.b, start + n, 4, "index series")?;
        if crc32(content) != u32::from_be_bytes([cb[0], cb[1], cb[2], cb[3]]) {
            return Err(err(format!("index: series {r} checksum mismatch")));
        }
        let mut d = Decbuf::new(content, "index series");
        let nl = d.uvarint()?;
        let mut labels = Vec::with_capacity((nl as usize).min(64));
        for _ in 0..nl {
            let name = self.symbol(d.uvarint32()?)?;
            let value = self.symbol(d.uvarint32()?)?;
            labels.push(Label::new(name, value));
        }
        let nc = d.uvarint()?;
        let mut prev: Option<ChunkMeta> = None;
        for _ in 0..nc {
            let c = match prev {
                None => {
                    let min_t = d.varint()?;
                    let max_t = min_t.wrapping_add(d.uvarint()? as i64);
                    ChunkMeta {
                        r: d.uvarint()?,
                        min_t,
                        max_t,
                    }
                }
                Some(p) => {
                    let min_t = p.max_t.wrapping_add(d.uvarint()? as i64);
                    let max_t = min_t.wrapping_add(d.uvarint()? as i64);
                    ChunkMeta {
                        r: p.r.wrapping_add(d.varint()? as u64),
                        min_t,
                        max_t,
                    }
                }
            };
            chunks.push(c);
            prev = Some(c);
        }
        Labels::from_vec(labels).map_err(|e| err(format!("index: series {r}: {e}")))
    }

    fn postings_at(&self, o: u64) -> Result<Vec<u32>, FormatError> {
        let content = be32_section(&self.b, off(o)?, "index postings")?;
        let mut d = Decbuf::new(content, "index postings");
        let n = d.be32()? as usize;
        if n * 4 != d.len() {
            return Err(err("index: postings length mismatch"));
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(d.be32()?);
        }
        Ok(out)
    }

    /// Every series reference, in label-set order.
    pub fn all_postings(&self) -> Result<Vec<u32>, FormatError> {
        match self.all_postings {
            Some(o) => self.postings_at(o),
            None => Ok(Vec::new()),
        }
    }

    /// Entry `i` of the postings offset table: name, value, postings offset.
    fn entry(&self, i: usize) -> Result<(&str, &str, u64), FormatError> {
        let pos = *self
            .entries
            .get(i)
            .ok_or_else(|| err("index: postings entry out of range"))?;
        let rest = self
            .b
            .get(pos as usize..)
            .ok_or_else(|| err("index: postings entry out of range"))?;
        decode_entry(&mut Decbuf::new(rest, "index postings offset table"))
    }

    /// The entries of label `name`.
    fn name_range(&self, name: &str) -> std::ops::Range<usize> {
        // Every entry decoded when the index was opened, so a failure here cannot happen;
        // it would only make the entry sort last.
        let key = |i: usize| self.entry(i).map(|(n, _, _)| n).ok();
        let lo = partition(self.entries.len(), |i| key(i).is_some_and(|n| n < name));
        let hi = partition(self.entries.len(), |i| key(i).is_some_and(|n| n <= name));
        lo..hi.max(lo)
    }

    /// Series with `name`=`value`.
    pub fn postings(&self, name: &str, value: &str) -> Result<Vec<u32>, FormatError> {
        let range = self.name_range(name);
        let start = range.start;
        let vals = range.len();
        let i = start
            + partition(vals, |j| {
                self.entry(start + j).is_ok_and(|(_, v, _)| v < value)
            });
        if i < range.end {
            let (_, v, o) = self.entry(i)?;
            if v == value {
                return self.postings_at(o);
            }
        }
        Ok(Vec::new())
    }

    /// Sorted label names.
    pub fn label_names(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for i in 0..self.entries.len() {
            if let Ok((n, _, _)) = self.entry(i)
                && out.last() != Some(&n)
            {
                out.push(n);
            }
        }
        out
    }

    /// Sorted values of label `name`.
    pub fn label_values(&self, name: &str) -> Vec<&str> {
        self.name_range(name)
            .filter_map(|i| self.entry(i).ok().map(|(_, v, _)| v))
            .collect()
    }

    /// Number of (name, value) pairs with postings.
    pub fn num_label_pairs(&self) -> usize {
        self.entries.len()
    }

    fn union_values(
        &self,
        name: &str,
        accept: impl Fn(&str) -> bool,
    ) -> Result<Vec<u32>, FormatError> {
        let mut lists = Vec::new();
        for i in self.name_range(name) {
            let (_, v, o) = self.entry(i)?;
            if accept(v) {
                lists.push(self.postings_at(o)?);
            }
        }
        let refs: Vec<&[u32]> = lists.iter().map(Vec::as_slice).collect();
        Ok(union(&refs))
    }

    /// Sorted references of the series passing every matcher (Prometheus' selection rules:
    /// a matcher that accepts the empty string also selects series without the label).
    pub fn postings_for_matchers(&self, matchers: &[Matcher]) -> Result<Vec<u32>, FormatError> {
        let mut include: Vec<Vec<u32>> = Vec::new();
        let mut exclude: Vec<Vec<u32>> = Vec::new();
        for m in matchers {
            if m.matches_empty() {
                exclude.push(self.union_values(&m.name, |v| !m.matches(v))?);
            } else if m.op == MatchOp::Equal {
                include.push(self.postings(&m.name, &m.value)?);
            } else {
                include.push(self.union_values(&m.name, |v| m.matches(v))?);
            }
        }
        include.sort_by_key(Vec::len);
        let mut result = match include.split_first() {
            None => self.all_postings()?,
            Some((first, rest)) => {
                let mut acc = first.clone();
                for l in rest {
                    if acc.is_empty() {
                        break;
                    }
                    acc = intersect(&acc, l);
                }
                acc
            }
        };
        for e in &exclude {
            if result.is_empty() {
                break;
            }
            result = subtract(&result, e);
        }
        Ok(result)
    }
}

/// Decodes one postings offset table entry.
fn decode_entry<'a>(d: &mut Decbuf<'a>) -> Result<(&'a str, &'a str, u64), FormatError> {
    if d.uvarint()? != 2 {
        return Err(err("index: postings offset entry without 2 keys"));
    }
    let name = d.uvarint_str()?;
    let value = d.uvarint_str()?;
    let o = d.uvarint()?;
    Ok((name, value, o))
}

/// The first index in `0..n` for which `pred` is false (`pred` true on a prefix).
fn partition(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

fn off(o: u64) -> Result<usize, FormatError> {
    usize::try_from(o).map_err(|_| err("index: offset out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ls(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_static(pairs)
    }

    fn write_sample(path: &Path) -> Vec<(Labels, Vec<ChunkMeta>)> {
        let series = vec![
            (
                ls(&[("__name__", "a"), ("job", "x")]),
                vec![
                    ChunkMeta {
                        r: 8,
                        min_t: -5,
                        max_t: 100,
                    },
                    ChunkMeta {
                        r: 60,
                        min_t: 101,
                        max_t: 250,
                    },
                ],
            ),
            (
                ls(&[("__name__", "a"), ("job", "y")]),
                vec![ChunkMeta {
                    r: 200,
                    min_t: 0,
                    max_t: 0,
                }],
            ),
            (
                ls(&[("__name__", "b"), ("instance", "i1")]),
                vec![ChunkMeta {
                    r: 4 << 32 | 8,
                    min_t: 7,
                    max_t: 9,
                }],
            ),
        ];
        let mut symbols = Vec::new();
        for (l, _) in &series {
            for p in l.iter() {
                symbols.push(p.name.to_string());
                symbols.push(p.value.to_string());
            }
        }
        let mut w = IndexWriter::create(path, symbols).unwrap();
        for (l, c) in &series {
            w.add_series(l, c).unwrap();
        }
        w.finish().unwrap();
        series
    }

    #[test]
    fn write_then_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        let series = write_sample(&path);
        let r = IndexReader::open(&path).unwrap();
        assert_eq!(
            r.symbols().unwrap(),
            ["__name__", "a", "b", "i1", "instance", "job", "x", "y"]
        );
        assert_eq!(r.label_names(), ["__name__", "instance", "job"]);
        assert_eq!(r.label_values("job"), ["x", "y"]);
        let all = r.all_postings().unwrap();
        assert_eq!(all.len(), 3);
        let mut chunks = Vec::new();
        for (id, (l, c)) in all.iter().zip(&series) {
            assert_eq!(&r.series(*id, &mut chunks).unwrap(), l);
            assert_eq!(&chunks, c);
        }
        let sel = r
            .postings_for_matchers(&[Matcher::equal("__name__", "a")])
            .unwrap();
        assert_eq!(sel, all[..2]);
        let sel = r
            .postings_for_matchers(&[Matcher::new(MatchOp::NotEqual, "job", "x").unwrap()])
            .unwrap();
        assert_eq!(sel, [all[1], all[2]]);
        let sel = r
            .postings_for_matchers(&[Matcher::new(MatchOp::RegexMatch, "job", ".+").unwrap()])
            .unwrap();
        assert_eq!(sel, all[..2]);
    }

    #[test]
    fn corruption_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        write_sample(&path);
        let good = std::fs::read(&path).unwrap();
        // Flip every byte in turn: opening and reading either works or errors.
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] ^= 0x5a;
            if let Ok(r) = IndexReader::from_bytes(Bytes::Owned(b)) {
                let mut chunks = Vec::new();
                if let Ok(all) = r.all_postings() {
                    for id in all {
                        let _ = r.series(id, &mut chunks);
                    }
                }
                let _ = r.postings_for_matchers(&[Matcher::equal("job", "x")]);
            }
        }
        for n in 0..good.len() {
            let _ = IndexReader::from_bytes(Bytes::Owned(good[..n].to_vec()));
        }
    }
}
