//! Hand-written protobuf encoding of write requests for the sender's hot path.
//!
//! Remote write 1.0 (`prometheus.WriteRequest`): each series' labels are encoded once (when
//! its WAL series record is read) and copied into every request as bytes, so a request costs
//! no string copies or allocations per series. Remote write 2.0
//! (`io.prometheus.write.v2.Request`): a per-request symbol table (index 0 is the empty
//! string) and label references. The output decodes with prost's definitions (`tests`).

use std::hash::{BuildHasherDefault, Hasher};

use crate::proto;

/// A multiplicative hasher for keys that are already well-spread or small integers (series
/// ids, label hashes): much cheaper than SipHash on the per-sample path.
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0 ^ x).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }
}

pub type FastMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FastHasher>>;

fn varint_len(mut x: u64) -> usize {
    let mut n = 1;
    while x >= 0x80 {
        x >>= 7;
        n += 1;
    }
    n
}

fn put_varint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// The `labels` fields (field 1 of `TimeSeries`) of a label set.
pub fn encode_labels(labels: &[proto::Label]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in labels {
        let inner = 1
            + varint_len(l.name.len() as u64)
            + l.name.len()
            + 1
            + varint_len(l.value.len() as u64)
            + l.value.len();
        out.push(0x0A);
        put_varint(&mut out, inner as u64);
        out.push(0x0A);
        put_varint(&mut out, l.name.len() as u64);
        out.extend_from_slice(l.name.as_bytes());
        out.push(0x12);
        put_varint(&mut out, l.value.len() as u64);
        out.extend_from_slice(l.value.as_bytes());
    }
    out
}

/// The encoded size of one `Sample` message body.
fn sample_len(t: i64) -> usize {
    9 + 1 + varint_len(t as u64)
}

/// Appends one `timeseries` entry of a `WriteRequest` to `out`: the series' encoded labels
/// and its samples, in the given order.
pub fn put_timeseries<I>(out: &mut Vec<u8>, labels: &[u8], samples: I)
where
    I: Iterator<Item = (i64, f64)> + Clone,
{
    let mut ts_len = labels.len();
    for (t, _) in samples.clone() {
        let s = sample_len(t);
        ts_len += 1 + varint_len(s as u64) + s;
    }
    out.push(0x0A);
    put_varint(out, ts_len as u64);
    out.extend_from_slice(labels);
    put_samples(out, samples);
}

fn put_samples<I>(out: &mut Vec<u8>, samples: I)
where
    I: Iterator<Item = (i64, f64)>,
{
    for (t, v) in samples {
        out.push(0x12);
        put_varint(out, sample_len(t) as u64);
        out.push(0x09);
        out.extend_from_slice(&v.to_bits().to_le_bytes());
        out.push(0x10);
        put_varint(out, t as u64);
    }
}

/// Builds a remote write 2.0 request: series are added one by one, the symbol table is
/// collected on the way, [`finish`](V2Builder::finish) writes the whole message.
#[derive(Default)]
pub struct V2Builder {
    symbols: std::collections::HashMap<String, u32>,
    table: Vec<u8>,
    count: u32,
    series: Vec<u8>,
    refs: Vec<u32>,
    refs_buf: Vec<u8>,
}

impl V2Builder {
    pub fn new() -> V2Builder {
        let mut b = V2Builder::default();
        b.clear();
        b
    }

    /// Empties the builder for the next request (keeps the allocations).
    pub fn clear(&mut self) {
        self.symbols.clear();
        self.table.clear();
        self.series.clear();
        self.count = 0;
        self.symbol("");
    }

    fn symbol(&mut self, s: &str) -> u32 {
        if let Some(i) = self.symbols.get(s) {
            return *i;
        }
        let i = self.count;
        self.count += 1;
        self.symbols.insert(s.to_owned(), i);
        self.table.push(0x22);
        put_varint(&mut self.table, s.len() as u64);
        self.table.extend_from_slice(s.as_bytes());
        i
    }

    /// Adds one series with its samples in order.
    pub fn add<I>(&mut self, labels: &[proto::Label], samples: I)
    where
        I: Iterator<Item = (i64, f64)> + Clone,
    {
        self.refs.clear();
        for l in labels {
            let n = self.symbol(&l.name);
            let v = self.symbol(&l.value);
            self.refs.push(n);
            self.refs.push(v);
        }
        self.refs_buf.clear();
        for r in &self.refs {
            put_varint(&mut self.refs_buf, u64::from(*r));
        }
        let mut ts_len = 1 + varint_len(self.refs_buf.len() as u64) + self.refs_buf.len();
        for (t, _) in samples.clone() {
            let s = sample_len(t);
            ts_len += 1 + varint_len(s as u64) + s;
        }
        self.series.push(0x2A);
        put_varint(&mut self.series, ts_len as u64);
        self.series.push(0x0A);
        put_varint(&mut self.series, self.refs_buf.len() as u64);
        self.series.extend_from_slice(&self.refs_buf);
        put_samples(&mut self.series, samples);
    }

    /// The encoded request (symbols, then series).
    pub fn finish(&self, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.table);
        out.extend_from_slice(&self.series);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn matches_prost() {
        let a = vec![
            proto::Label {
                name: "__name__".into(),
                value: "up".into(),
            },
            proto::Label {
                name: "job".into(),
                value: "x".repeat(300),
            },
        ];
        let b = vec![proto::Label {
            name: "__name__".into(),
            value: "b".into(),
        }];
        let sa = [(1_700_000_000_000i64, 1.5), (1_700_000_015_000, f64::NAN)];
        let sb = [(-5i64, 0.0)];
        let (la, lb) = (encode_labels(&a), encode_labels(&b));
        let mut out = Vec::new();
        put_timeseries(&mut out, &la, sa.iter().copied());
        put_timeseries(&mut out, &lb, sb.iter().copied());
        let got = proto::WriteRequest::decode(out.as_slice()).expect("decodes");
        assert_eq!(got.timeseries.len(), 2);
        assert_eq!(got.timeseries[0].labels, a);
        assert_eq!(got.timeseries[1].labels, b);
        assert_eq!(got.timeseries[0].samples[0].timestamp, 1_700_000_000_000);
        assert_eq!(got.timeseries[0].samples[0].value, 1.5);
        assert!(got.timeseries[0].samples[1].value.is_nan());
        assert_eq!(got.timeseries[1].samples[0].timestamp, -5);

        let mut b = V2Builder::new();
        b.add(&a, sa.iter().copied());
        b.add(&b_labels(), sb.iter().copied());
        let mut out = Vec::new();
        b.finish(&mut out);
        let got = crate::proto_v2::Request::decode(out.as_slice()).expect("decodes");
        assert_eq!(got.symbols[0], "");
        assert_eq!(got.timeseries.len(), 2);
        let names: Vec<&str> = got.timeseries[0]
            .labels_refs
            .iter()
            .map(|r| got.symbols[*r as usize].as_str())
            .collect();
        assert_eq!(names, ["__name__", "up", "job", &"x".repeat(300)]);
        // Repeated strings are stored once.
        assert_eq!(got.symbols.iter().filter(|s| *s == "__name__").count(), 1);
        assert_eq!(got.timeseries[0].samples[0].value, 1.5);
        assert_eq!(got.timeseries[1].samples[0].timestamp, -5);
        // A 1.0 decoder does not misread a 2.0 body as series.
        let v1 = proto::WriteRequest::decode(out.as_slice()).unwrap_or_default();
        assert!(v1.timeseries.is_empty());
    }

    fn b_labels() -> Vec<proto::Label> {
        vec![proto::Label {
            name: "__name__".into(),
            value: "b".into(),
        }]
    }
}
