//! Hand-written protobuf encoding of write requests for the sender's hot path.
//!
//! Remote write 1.0 (`prometheus.WriteRequest`): each series' labels are encoded once (when
//! its WAL series record is read) and copied into every request as bytes, so a request costs
//! no string copies or allocations per series. Remote write 2.0
//! (`io.prometheus.write.v2.Request`): a per-request symbol table (index 0 is the empty
//! string) and label references, help and unit as symbols too. Exemplars go into their
//! series' entry after its samples. The output decodes with prost's definitions (`tests`).

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

/// An exemplar to encode: its labels, value and timestamp.
pub type ExemplarRef<'a> = (&'a [proto::Label], f64, i64);

/// The body of a 1.0 `Exemplar` message.
fn exemplar_v1(labels: &[proto::Label], v: f64, t: i64) -> Vec<u8> {
    let mut body = encode_labels(labels);
    body.push(0x11);
    body.extend_from_slice(&v.to_bits().to_le_bytes());
    body.push(0x18);
    put_varint(&mut body, t as u64);
    body
}

/// Appends one `timeseries` entry of a `WriteRequest` to `out`: the series' encoded labels,
/// its samples in the given order, then its exemplars.
pub fn put_timeseries<I>(out: &mut Vec<u8>, labels: &[u8], samples: I, exemplars: &[ExemplarRef])
where
    I: Iterator<Item = (i64, f64)> + Clone,
{
    let mut ts_len = labels.len();
    for (t, _) in samples.clone() {
        let s = sample_len(t);
        ts_len += 1 + varint_len(s as u64) + s;
    }
    let bodies: Vec<Vec<u8>> = exemplars
        .iter()
        .map(|(l, v, t)| exemplar_v1(l, *v, *t))
        .collect();
    for b in &bodies {
        ts_len += 1 + varint_len(b.len() as u64) + b.len();
    }
    out.push(0x0A);
    put_varint(out, ts_len as u64);
    out.extend_from_slice(labels);
    put_samples(out, samples);
    for b in bodies {
        out.push(0x1A);
        put_varint(out, b.len() as u64);
        out.extend_from_slice(&b);
    }
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
    extra: Vec<u8>,
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

    /// Packed label references of `labels`, as varints.
    fn label_refs(&mut self, labels: &[proto::Label]) -> Vec<u8> {
        self.refs.clear();
        for l in labels {
            let n = self.symbol(&l.name);
            let v = self.symbol(&l.value);
            self.refs.push(n);
            self.refs.push(v);
        }
        let mut buf = Vec::with_capacity(self.refs.len());
        for r in &self.refs {
            put_varint(&mut buf, u64::from(*r));
        }
        buf
    }

    /// Adds one series with its samples in order, its exemplars and its metadata.
    pub fn add<I>(
        &mut self,
        labels: &[proto::Label],
        samples: I,
        exemplars: &[ExemplarRef],
        metadata: Option<&model::exposition::MetricMetadata>,
    ) where
        I: Iterator<Item = (i64, f64)> + Clone,
    {
        self.refs_buf = self.label_refs(labels);
        // Exemplars (field 4) and metadata (field 5), encoded first to know their length.
        self.extra.clear();
        for (l, v, t) in exemplars {
            let refs = self.label_refs(l);
            let len =
                1 + varint_len(refs.len() as u64) + refs.len() + 9 + 1 + varint_len(*t as u64);
            self.extra.push(0x22);
            put_varint(&mut self.extra, len as u64);
            self.extra.push(0x0A);
            put_varint(&mut self.extra, refs.len() as u64);
            self.extra.extend_from_slice(&refs);
            self.extra.push(0x11);
            self.extra.extend_from_slice(&v.to_bits().to_le_bytes());
            self.extra.push(0x18);
            put_varint(&mut self.extra, *t as u64);
        }
        if let Some(m) = metadata {
            let kind = crate::metadata::metric_type_to_proto(m.kind) as u64;
            let help = u64::from(self.symbol(&m.help));
            let unit = u64::from(self.symbol(&m.unit));
            let len = 3 + varint_len(kind) + varint_len(help) + varint_len(unit);
            self.extra.push(0x2A);
            put_varint(&mut self.extra, len as u64);
            self.extra.push(0x08);
            put_varint(&mut self.extra, kind);
            self.extra.push(0x18);
            put_varint(&mut self.extra, help);
            self.extra.push(0x20);
            put_varint(&mut self.extra, unit);
        }
        let mut ts_len = 1 + varint_len(self.refs_buf.len() as u64) + self.refs_buf.len();
        for (t, _) in samples.clone() {
            let s = sample_len(t);
            ts_len += 1 + varint_len(s as u64) + s;
        }
        ts_len += self.extra.len();
        self.series.push(0x2A);
        put_varint(&mut self.series, ts_len as u64);
        self.series.push(0x0A);
        put_varint(&mut self.series, self.refs_buf.len() as u64);
        self.series.extend_from_slice(&self.refs_buf);
        put_samples(&mut self.series, samples);
        self.series.extend_from_slice(&self.extra);
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
        let trace = vec![proto::Label {
            name: "trace_id".into(),
            value: "abc".into(),
        }];
        let ex: [ExemplarRef; 2] = [(&trace, 0.25, 1_700_000_000_001), (&[], -1.0, -7)];
        let mut out = Vec::new();
        put_timeseries(&mut out, &la, sa.iter().copied(), &ex);
        put_timeseries(&mut out, &lb, sb.iter().copied(), &[]);
        let got = proto::WriteRequest::decode(out.as_slice()).expect("decodes");
        assert_eq!(got.timeseries.len(), 2);
        assert_eq!(got.timeseries[0].labels, a);
        assert_eq!(got.timeseries[1].labels, b);
        assert_eq!(got.timeseries[0].samples[0].timestamp, 1_700_000_000_000);
        assert_eq!(got.timeseries[0].samples[0].value, 1.5);
        assert!(got.timeseries[0].samples[1].value.is_nan());
        assert_eq!(got.timeseries[1].samples[0].timestamp, -5);
        let exemplars = &got.timeseries[0].exemplars;
        assert_eq!(exemplars.len(), 2);
        assert_eq!(exemplars[0].labels, trace);
        assert_eq!(
            (exemplars[0].value, exemplars[0].timestamp),
            (0.25, 1_700_000_000_001)
        );
        assert_eq!((exemplars[1].value, exemplars[1].timestamp), (-1.0, -7));
        assert!(got.timeseries[1].exemplars.is_empty());

        let meta = model::exposition::MetricMetadata {
            family: "up".into(),
            kind: model::exposition::MetricType::Gauge,
            help: "Up or not.".into(),
            unit: String::new(),
        };
        let mut b = V2Builder::new();
        b.add(&a, sa.iter().copied(), &ex, Some(&meta));
        b.add(&b_labels(), sb.iter().copied(), &[], None);
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
        let sym = |r: u32| got.symbols[r as usize].as_str();
        let e = &got.timeseries[0].exemplars;
        assert_eq!(e.len(), 2);
        assert_eq!(
            e[0].labels_refs.iter().map(|r| sym(*r)).collect::<Vec<_>>(),
            ["trace_id", "abc"]
        );
        assert_eq!((e[0].value, e[0].timestamp), (0.25, 1_700_000_000_001));
        assert!(e[1].labels_refs.is_empty());
        let m = got.timeseries[0].metadata.as_ref().expect("metadata");
        assert_eq!(
            (m.r#type, sym(m.help_ref), sym(m.unit_ref)),
            (2, "Up or not.", "")
        );
        assert!(got.timeseries[1].metadata.is_none());
        // Through the receiver's decoder too.
        let body = snap::raw::Encoder::new().compress_vec(&out).unwrap();
        let series = crate::decode_write_request_v2(&body, 1 << 20).unwrap();
        assert_eq!(
            series[0].exemplars[0].labels,
            [("trace_id".into(), "abc".into())]
        );
        assert_eq!(
            series[0].metadata.as_ref().map(|m| m.help.as_str()),
            Some("Up or not.")
        );
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
