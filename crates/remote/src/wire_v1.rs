//! A borrowing reader of remote-write 1.0 `WriteRequest` bytes, for the receiver's hot path.
//!
//! Decoding with the generated (prost) types allocates two strings per label and vectors per
//! series; at a few labels and one sample per series, that is most of what receiving costs.
//! This reader walks the protobuf bytes instead and hands each series to a callback as label
//! pairs and samples borrowed from (or decoded into buffers reused across) the request, so a
//! series the storage already knows costs no allocation at all.
//!
//! It handles what nearly every request is made of: series with labels and float samples. A
//! request carrying exemplars, native histograms or metadata is reported as
//! [`Walk::NeedsFullDecode`] (before or after some series were handed out: the caller then
//! discards what it did and decodes the request with the generated types). Malformed bytes
//! are errors, as the generated decoder would report them: truncated fields, bad wire types,
//! invalid UTF-8 in strings.

use crate::DecodeError;

/// How a walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    /// Every series was handed to the callback.
    Done,
    /// The request holds something this reader leaves to the full decoder.
    NeedsFullDecode,
}

/// Why a walk stopped early.
#[derive(Debug)]
pub enum WalkError<E> {
    Decode(DecodeError),
    /// The callback's own error.
    Callback(E),
}

impl<E> From<DecodeError> for WalkError<E> {
    fn from(e: DecodeError) -> Self {
        WalkError::Decode(e)
    }
}

fn bad(msg: &str) -> DecodeError {
    DecodeError::Protobuf(msg.to_string())
}

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut x = 0u64;
        for i in 0..10 {
            let (&byte, rest) = self
                .b
                .split_first()
                .ok_or_else(|| bad("truncated varint"))?;
            self.b = rest;
            // The tenth byte holds the 64th bit only: anything more overflows.
            if i == 9 && byte > 1 {
                return Err(bad("varint overflows 64 bits"));
            }
            x |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(x);
            }
        }
        Err(bad("varint longer than 10 bytes"))
    }

    /// The next field's number and wire type, or `None` at the end.
    fn key(&mut self) -> Result<Option<(u64, u8)>, DecodeError> {
        if self.b.is_empty() {
            return Ok(None);
        }
        let k = self.varint()?;
        // A key is a 32-bit value (field numbers stop at 2^29 - 1), as protobuf decoders read it.
        if k > u64::from(u32::MAX) {
            return Err(bad("invalid field key"));
        }
        let field = k >> 3;
        if field == 0 {
            return Err(bad("field number 0"));
        }
        Ok(Some((field, (k & 7) as u8)))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.b.len() {
            return Err(bad("field longer than its message"));
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| bad("length out of range"))?;
        self.take(n)
    }

    fn fixed64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// Skips a field of an unknown number.
    fn skip(&mut self, wire: u8) -> Result<(), DecodeError> {
        match wire {
            VARINT => self.varint().map(|_| ()),
            FIXED64 => self.take(8).map(|_| ()),
            LEN => self.bytes().map(|_| ()),
            FIXED32 => self.take(4).map(|_| ()),
            _ => Err(bad("unsupported wire type")),
        }
    }
}

fn utf8(b: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(b).map_err(|_| bad("invalid UTF-8 in a string field"))
}

fn expect(wire: u8, want: u8) -> Result<(), DecodeError> {
    if wire == want {
        Ok(())
    } else {
        Err(bad("wrong wire type for a known field"))
    }
}

/// Walks the (decompressed) `WriteRequest` in `raw`, calling `f` with each series' label
/// pairs in the order sent and its samples as `(timestamp, value)`.
pub fn for_each_series<'a, E>(
    raw: &'a [u8],
    pairs: &mut Vec<(&'a str, &'a str)>,
    samples: &mut Vec<(i64, f64)>,
    mut f: impl FnMut(&mut Vec<(&'a str, &'a str)>, &[(i64, f64)]) -> Result<(), E>,
) -> Result<Walk, WalkError<E>> {
    let mut req = Reader { b: raw };
    while let Some((field, wire)) = req.key()? {
        match field {
            1 => {
                expect(wire, LEN)?;
                let ts = req.bytes()?;
                pairs.clear();
                samples.clear();
                if !read_series(ts, pairs, samples)? {
                    return Ok(Walk::NeedsFullDecode);
                }
                f(pairs, samples).map_err(WalkError::Callback)?;
            }
            // Metadata.
            3 => return Ok(Walk::NeedsFullDecode),
            _ => req.skip(wire)?,
        }
    }
    Ok(Walk::Done)
}

/// Reads one `TimeSeries`; false when it has exemplars or histograms.
fn read_series<'a>(
    b: &'a [u8],
    pairs: &mut Vec<(&'a str, &'a str)>,
    samples: &mut Vec<(i64, f64)>,
) -> Result<bool, DecodeError> {
    let mut r = Reader { b };
    while let Some((field, wire)) = r.key()? {
        match field {
            1 => {
                expect(wire, LEN)?;
                let mut l = Reader { b: r.bytes()? };
                let (mut name, mut value) = ("", "");
                while let Some((f, w)) = l.key()? {
                    match f {
                        1 => {
                            expect(w, LEN)?;
                            name = utf8(l.bytes()?)?;
                        }
                        2 => {
                            expect(w, LEN)?;
                            value = utf8(l.bytes()?)?;
                        }
                        _ => l.skip(w)?,
                    }
                }
                pairs.push((name, value));
            }
            2 => {
                expect(wire, LEN)?;
                let mut s = Reader { b: r.bytes()? };
                let (mut t, mut v) = (0i64, 0f64);
                while let Some((f, w)) = s.key()? {
                    match f {
                        1 => {
                            expect(w, FIXED64)?;
                            v = f64::from_bits(s.fixed64()?);
                        }
                        2 => {
                            expect(w, VARINT)?;
                            // int64: two's complement in a varint.
                            t = s.varint()? as i64;
                        }
                        _ => s.skip(w)?,
                    }
                }
                samples.push((t, v));
            }
            3 | 4 => return Ok(false),
            _ => r.skip(wire)?,
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::proto::{Exemplar, Label, Sample, TimeSeries, WriteRequest};
    use prost::Message;

    fn label(n: &str, v: &str) -> Label {
        Label {
            name: n.into(),
            value: v.into(),
        }
    }

    type Seen = Vec<(Vec<(String, String)>, Vec<(i64, f64)>)>;

    fn walk(raw: &[u8]) -> (Walk, Seen) {
        let mut out = Vec::new();
        let (mut p, mut s) = (Vec::new(), Vec::new());
        let w = for_each_series::<()>(raw, &mut p, &mut s, |pairs, samples| {
            out.push((
                pairs
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect(),
                samples.to_vec(),
            ));
            Ok(())
        })
        .map_err(|e| format!("{e:?}"))
        .unwrap();
        (w, out)
    }

    #[test]
    fn reads_what_the_generated_encoder_writes() {
        let req = WriteRequest {
            timeseries: vec![
                TimeSeries {
                    labels: vec![label("__name__", "up"), label("job", "a")],
                    samples: vec![
                        Sample {
                            value: 1.5,
                            timestamp: -5,
                        },
                        Sample {
                            value: f64::NAN,
                            timestamp: 1_700_000_000_000,
                        },
                    ],
                    ..Default::default()
                },
                TimeSeries {
                    labels: vec![label("__name__", "x"), label("", "")],
                    samples: vec![Sample::default()],
                    ..Default::default()
                },
            ],
            metadata: vec![],
        };
        let raw = req.encode_to_vec();
        let (w, got) = walk(&raw);
        assert_eq!(w, Walk::Done);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0].0,
            vec![
                ("__name__".to_string(), "up".to_string()),
                ("job".to_string(), "a".to_string())
            ]
        );
        assert_eq!(got[0].1[0], (-5, 1.5));
        assert!(got[0].1[1].1.is_nan() && got[0].1[1].0 == 1_700_000_000_000);
        assert_eq!(got[1].0[1], (String::new(), String::new()));
        assert_eq!(got[1].1, vec![(0, 0.0)]);
    }

    #[test]
    fn exemplars_and_metadata_go_to_the_full_decoder() {
        let req = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![label("__name__", "up")],
                exemplars: vec![Exemplar::default()],
                ..Default::default()
            }],
            metadata: vec![],
        };
        assert_eq!(walk(&req.encode_to_vec()).0, Walk::NeedsFullDecode);
        let req = WriteRequest {
            timeseries: vec![],
            metadata: vec![crate::proto::MetricMetadata::default()],
        };
        // An all-default metadata entry encodes to nothing but its field key and length.
        assert_eq!(walk(&req.encode_to_vec()).0, Walk::NeedsFullDecode);
    }

    #[test]
    fn malformed_bytes_are_errors_not_panics() {
        let req = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![label("__name__", "up"), label("job", "a")],
                samples: vec![Sample {
                    value: 1.0,
                    timestamp: 7,
                }],
                ..Default::default()
            }],
            metadata: vec![],
        };
        let raw = req.encode_to_vec();
        for cut in 0..raw.len() {
            let (mut p, mut s) = (Vec::new(), Vec::new());
            let r = for_each_series::<()>(&raw[..cut], &mut p, &mut s, |_, _| Ok(()));
            // A cut may land on a field boundary of the outer message only at 0.
            if cut > 0 {
                assert!(r.is_err(), "cut at {cut} accepted");
            }
        }
        // A key beyond 32 bits (found by the differential fuzz target).
        let (mut p, mut s) = (Vec::new(), Vec::new());
        let huge_key = [0xb8, 0xc5, 0xc5, 0xc5, 0xc5, 0xc5, 0x00, 0x41];
        assert!(for_each_series::<()>(&huge_key, &mut p, &mut s, |_, _| Ok(())).is_err());
        // A ten-byte varint whose last byte overflows 64 bits (also a fuzz find).
        let overflow = [
            0x10, 0xce, 0xce, 0xce, 0xce, 0xce, 0xce, 0xce, 0xce, 0xce, 0x0d,
        ];
        assert!(for_each_series::<()>(&overflow, &mut p, &mut s, |_, _| Ok(())).is_err());
        let mut bad_utf8 = raw.clone();
        let at = bad_utf8.windows(2).position(|w| w == b"up").unwrap();
        bad_utf8[at] = 0xff;
        let (mut p, mut s) = (Vec::new(), Vec::new());
        assert!(for_each_series::<()>(&bad_utf8, &mut p, &mut s, |_, _| Ok(())).is_err());
    }
}
