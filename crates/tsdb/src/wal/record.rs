//! Encoding of the records the head writes to its WAL, in Prometheus' record format.
//!
//! Series record (type 1): per series a big-endian `u64` id, a uvarint label count, then each
//! name and value as a uvarint length and bytes. Samples record (type 2): the first id and
//! timestamp as big-endian `u64`/`i64`, then per sample the id and timestamp as signed varint
//! deltas from those and the value's 64 bits big-endian. Exemplars record (type 4): like a
//! samples record, each exemplar followed by its labels encoded as in a series record (count,
//! then names and values).

use model::labels::Labels;
use model::sample::Timestamp;

pub const TYPE_SERIES: u8 = 1;
pub const TYPE_SAMPLES: u8 = 2;
pub const TYPE_TOMBSTONES: u8 = 3;
pub const TYPE_EXEMPLARS: u8 = 4;

/// A series as the WAL records it: id and label pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct RefSeries {
    pub id: u64,
    pub labels: Labels,
}

/// One sample of a series by id.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefSample {
    pub id: u64,
    pub t: Timestamp,
    pub v: f64,
}

/// One exemplar of a series by id.
#[derive(Debug, Clone, PartialEq)]
pub struct RefExemplar {
    pub id: u64,
    pub t: Timestamp,
    pub v: f64,
    pub labels: Labels,
}

/// A record that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid WAL record: {0}")]
pub struct RecordError(pub String);

fn put_uvarint(buf: &mut Vec<u8>, x: u64) {
    let mut tmp = [0u8; 10];
    let n = crate::chunkenc::put_uvarint(&mut tmp, x);
    buf.extend_from_slice(&tmp[..n]);
}

fn put_varint(buf: &mut Vec<u8>, x: i64) {
    let mut tmp = [0u8; 10];
    let n = crate::chunkenc::put_varint(&mut tmp, x);
    buf.extend_from_slice(&tmp[..n]);
}

/// Appends a series record for `series` to `buf`.
pub fn encode_series<'a>(series: impl IntoIterator<Item = (u64, &'a Labels)>, buf: &mut Vec<u8>) {
    buf.push(TYPE_SERIES);
    for (id, labels) in series {
        buf.extend_from_slice(&id.to_be_bytes());
        put_labels(buf, labels);
    }
}

/// Appends a samples record to `buf`; nothing when `samples` is empty.
pub fn encode_samples(samples: &[RefSample], buf: &mut Vec<u8>) {
    let Some(first) = samples.first() else { return };
    buf.push(TYPE_SAMPLES);
    buf.extend_from_slice(&first.id.to_be_bytes());
    buf.extend_from_slice(&first.t.to_be_bytes());
    for s in samples {
        put_varint(buf, (s.id as i64).wrapping_sub(first.id as i64));
        put_varint(buf, s.t.wrapping_sub(first.t));
        buf.extend_from_slice(&s.v.to_bits().to_be_bytes());
    }
}

fn put_labels(buf: &mut Vec<u8>, labels: &Labels) {
    put_uvarint(buf, labels.len() as u64);
    for l in labels {
        put_uvarint(buf, l.name.len() as u64);
        buf.extend_from_slice(l.name.as_bytes());
        put_uvarint(buf, l.value.len() as u64);
        buf.extend_from_slice(l.value.as_bytes());
    }
}

/// Appends an exemplars record to `buf`; nothing when `exemplars` is empty.
pub fn encode_exemplars(exemplars: &[RefExemplar], buf: &mut Vec<u8>) {
    let Some(first) = exemplars.first() else {
        return;
    };
    buf.push(TYPE_EXEMPLARS);
    buf.extend_from_slice(&first.id.to_be_bytes());
    buf.extend_from_slice(&first.t.to_be_bytes());
    for e in exemplars {
        put_varint(buf, (e.id as i64).wrapping_sub(first.id as i64));
        put_varint(buf, e.t.wrapping_sub(first.t));
        buf.extend_from_slice(&e.v.to_bits().to_be_bytes());
        put_labels(buf, &e.labels);
    }
}

/// A deleted interval of a series (inclusive), as a tombstones record holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefTombstone {
    pub id: u64,
    pub min_t: Timestamp,
    pub max_t: Timestamp,
}

/// Appends a tombstones record (type 3: per interval a big-endian `u64` id and the min and
/// max time as varints); nothing when `stones` is empty.
pub fn encode_tombstones(stones: &[RefTombstone], buf: &mut Vec<u8>) {
    if stones.is_empty() {
        return;
    }
    buf.push(TYPE_TOMBSTONES);
    for s in stones {
        buf.extend_from_slice(&s.id.to_be_bytes());
        put_varint(buf, s.min_t);
        put_varint(buf, s.max_t);
    }
}

/// Decodes a tombstones record (type byte included) into `out`.
pub fn decode_tombstones(rec: &[u8], out: &mut Vec<RefTombstone>) -> Result<(), RecordError> {
    let (&t, body) = rec
        .split_first()
        .ok_or_else(|| RecordError("empty record".into()))?;
    if t != TYPE_TOMBSTONES {
        return Err(RecordError(format!(
            "expected a tombstones record, got type {t}"
        )));
    }
    let mut d = Decoder { b: body };
    while !d.b.is_empty() {
        let id = d.be64("tombstone series id")?;
        let min_t = d.varint("tombstone min time")?;
        let max_t = d.varint("tombstone max time")?;
        out.push(RefTombstone { id, min_t, max_t });
    }
    Ok(())
}

/// A cursor over a record's bytes.
struct Decoder<'a> {
    b: &'a [u8],
}

impl<'a> Decoder<'a> {
    fn err(what: &str) -> RecordError {
        RecordError(format!("truncated {what}"))
    }

    fn be64(&mut self, what: &str) -> Result<u64, RecordError> {
        let (head, rest) = self
            .b
            .split_first_chunk::<8>()
            .ok_or_else(|| Self::err(what))?;
        self.b = rest;
        Ok(u64::from_be_bytes(*head))
    }

    fn uvarint(&mut self, what: &str) -> Result<u64, RecordError> {
        let mut x: u64 = 0;
        let mut s = 0u32;
        for i in 0..10 {
            let (&b, rest) = self.b.split_first().ok_or_else(|| Self::err(what))?;
            self.b = rest;
            if b < 0x80 {
                if i == 9 && b > 1 {
                    return Err(RecordError(format!("varint overflow in {what}")));
                }
                return Ok(x | (u64::from(b) << s));
            }
            x |= u64::from(b & 0x7f) << s;
            s += 7;
        }
        Err(RecordError(format!("varint overflow in {what}")))
    }

    fn varint(&mut self, what: &str) -> Result<i64, RecordError> {
        let ux = self.uvarint(what)?;
        let x = (ux >> 1) as i64;
        Ok(if ux & 1 != 0 { !x } else { x })
    }

    fn string(&mut self, what: &str) -> Result<&'a str, RecordError> {
        let n = usize::try_from(self.uvarint(what)?).map_err(|_| Self::err(what))?;
        if n > self.b.len() {
            return Err(Self::err(what));
        }
        let (s, rest) = self.b.split_at(n);
        self.b = rest;
        std::str::from_utf8(s).map_err(|_| RecordError(format!("{what} is not UTF-8")))
    }
}

impl Decoder<'_> {
    /// A label count and the pairs, as a series or exemplar record holds them.
    fn labels(
        &mut self,
        intern: &mut impl FnMut(&str) -> model::labels::Sym,
    ) -> Result<Labels, RecordError> {
        let n = self.uvarint("label count")?;
        // Each label needs at least two bytes; a larger count is corrupt, not an allocation.
        if n > (self.b.len() as u64) / 2 {
            return Err(RecordError("label count larger than the record".into()));
        }
        let mut labels = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let name = intern(self.string("label name")?);
            let value = intern(self.string("label value")?);
            labels.push(model::labels::Label { name, value });
        }
        Labels::from_vec(labels).map_err(|e| RecordError(e.to_string()))
    }
}

/// Decodes an exemplars record (type byte included) into `out`, calling `intern` for strings.
pub fn decode_exemplars(
    rec: &[u8],
    out: &mut Vec<RefExemplar>,
    mut intern: impl FnMut(&str) -> model::labels::Sym,
) -> Result<(), RecordError> {
    let (&t, body) = rec
        .split_first()
        .ok_or_else(|| RecordError("empty record".into()))?;
    if t != TYPE_EXEMPLARS {
        return Err(RecordError(format!(
            "expected an exemplars record, got type {t}"
        )));
    }
    let mut d = Decoder { b: body };
    if d.b.is_empty() {
        return Ok(());
    }
    let first_id = d.be64("first id")?;
    let first_t = d.be64("first timestamp")? as i64;
    while !d.b.is_empty() {
        let id = (first_id as i64).wrapping_add(d.varint("id delta")?) as u64;
        let t = first_t.wrapping_add(d.varint("timestamp delta")?);
        let v = f64::from_bits(d.be64("value")?);
        let labels = d.labels(&mut intern)?;
        out.push(RefExemplar { id, t, v, labels });
    }
    Ok(())
}

/// Decodes a series record (type byte included) into `out`, calling `intern` for strings.
pub fn decode_series(
    rec: &[u8],
    out: &mut Vec<RefSeries>,
    mut intern: impl FnMut(&str) -> model::labels::Sym,
) -> Result<(), RecordError> {
    let (&t, body) = rec
        .split_first()
        .ok_or_else(|| RecordError("empty record".into()))?;
    if t != TYPE_SERIES {
        return Err(RecordError(format!(
            "expected a series record, got type {t}"
        )));
    }
    let mut d = Decoder { b: body };
    while !d.b.is_empty() {
        let id = d.be64("series id")?;
        let labels = d.labels(&mut intern)?;
        out.push(RefSeries { id, labels });
    }
    Ok(())
}

/// Decodes a samples record (type byte included) into `out`.
pub fn decode_samples(rec: &[u8], out: &mut Vec<RefSample>) -> Result<(), RecordError> {
    let (&t, body) = rec
        .split_first()
        .ok_or_else(|| RecordError("empty record".into()))?;
    if t != TYPE_SAMPLES {
        return Err(RecordError(format!(
            "expected a samples record, got type {t}"
        )));
    }
    let mut d = Decoder { b: body };
    if d.b.is_empty() {
        return Ok(());
    }
    let first_id = d.be64("first id")?;
    let first_t = d.be64("first timestamp")? as i64;
    while !d.b.is_empty() {
        let id = (first_id as i64).wrapping_add(d.varint("id delta")?) as u64;
        let t = first_t.wrapping_add(d.varint("timestamp delta")?);
        let v = f64::from_bits(d.be64("value")?);
        out.push(RefSample { id, t, v });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_and_samples_round_trip() {
        let a = Labels::from_static(&[("__name__", "up"), ("job", "node")]);
        let b = Labels::from_static(&[("__name__", "x")]);
        let mut buf = Vec::new();
        encode_series([(7, &a), (9, &b)], &mut buf);
        let mut out = Vec::new();
        decode_series(&buf, &mut out, model::labels::Sym::new).unwrap();
        assert_eq!(
            out,
            vec![
                RefSeries { id: 7, labels: a },
                RefSeries { id: 9, labels: b }
            ]
        );

        let samples = vec![
            RefSample {
                id: 9,
                t: 1000,
                v: 1.5,
            },
            RefSample {
                id: 7,
                t: 999,
                v: model::sample::stale_nan(),
            },
            RefSample {
                id: 100,
                t: -5,
                v: f64::INFINITY,
            },
        ];
        let mut buf = Vec::new();
        encode_samples(&samples, &mut buf);
        let mut got = Vec::new();
        decode_samples(&buf, &mut got).unwrap();
        assert_eq!(got.len(), 3);
        for (g, s) in got.iter().zip(&samples) {
            assert_eq!((g.id, g.t, g.v.to_bits()), (s.id, s.t, s.v.to_bits()));
        }
    }

    #[test]
    fn exemplars_round_trip_in_prometheus_layout() {
        let ex = vec![
            RefExemplar {
                id: 3,
                t: 1000,
                v: 0.5,
                labels: Labels::from_static(&[("trace_id", "ab")]),
            },
            RefExemplar {
                id: 2,
                t: 999,
                v: f64::NAN,
                labels: Labels::empty(),
            },
        ];
        let mut buf = Vec::new();
        encode_exemplars(&ex, &mut buf);
        // Byte for byte what Prometheus' record.Encoder.Exemplars writes.
        let mut want = vec![4u8];
        want.extend_from_slice(&3u64.to_be_bytes());
        want.extend_from_slice(&1000i64.to_be_bytes());
        want.extend_from_slice(&[0, 0]); // id and time deltas of the first
        want.extend_from_slice(&0.5f64.to_bits().to_be_bytes());
        want.extend_from_slice(&[1, 8]);
        want.extend_from_slice(b"trace_id");
        want.push(2);
        want.extend_from_slice(b"ab");
        want.extend_from_slice(&[1, 1]); // zigzag -1, -1
        want.extend_from_slice(&f64::NAN.to_bits().to_be_bytes());
        want.push(0);
        assert_eq!(buf, want);
        let mut out = Vec::new();
        decode_exemplars(&buf, &mut out, model::labels::Sym::new).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], ex[0]);
        assert_eq!((out[1].id, out[1].t), (2, 999));
        assert!(out[1].v.is_nan() && out[1].labels.is_empty());
        // Every cut inside an exemplar is an error, never a panic.
        for cut in (1..buf.len()).filter(|c| *c != 17) {
            let _ = decode_exemplars(&buf[..cut], &mut Vec::new(), model::labels::Sym::new);
        }
        assert!(
            decode_exemplars(
                &buf[..buf.len() - 1],
                &mut Vec::new(),
                model::labels::Sym::new
            )
            .is_err()
        );
        let mut empty = Vec::new();
        encode_exemplars(&[], &mut empty);
        assert!(empty.is_empty());
    }

    #[test]
    fn tombstones_round_trip() {
        let stones = [
            RefTombstone {
                id: 7,
                min_t: -5,
                max_t: 10,
            },
            RefTombstone {
                id: 1 << 40,
                min_t: i64::MIN,
                max_t: i64::MAX,
            },
        ];
        let mut buf = Vec::new();
        encode_tombstones(&stones, &mut buf);
        let mut out = Vec::new();
        decode_tombstones(&buf, &mut out).unwrap();
        assert_eq!(out, stones);
        // Prefixes never panic; one cut inside a stone is an error.
        for n in 1..buf.len() {
            let _ = decode_tombstones(&buf[..n], &mut Vec::new());
        }
        assert!(decode_tombstones(&buf[..buf.len() - 1], &mut Vec::new()).is_err());
    }

    #[test]
    fn truncated_records_are_errors() {
        let a = Labels::from_static(&[("__name__", "up")]);
        let mut buf = Vec::new();
        encode_series([(1, &a)], &mut buf);
        // A lone type byte is a valid record with no series; any longer prefix is truncated.
        for cut in 2..buf.len() {
            let mut out = Vec::new();
            assert!(
                decode_series(&buf[..cut], &mut out, model::labels::Sym::new).is_err(),
                "cut {cut}"
            );
        }
        let mut buf = Vec::new();
        encode_samples(
            &[RefSample {
                id: 1,
                t: 2,
                v: 3.0,
            }],
            &mut buf,
        );
        // 17 bytes (type, first id, first timestamp) are a valid record with no samples.
        for cut in (2..17).chain(18..buf.len()) {
            assert!(
                decode_samples(&buf[..cut], &mut Vec::new()).is_err(),
                "cut {cut}"
            );
        }
    }
}
