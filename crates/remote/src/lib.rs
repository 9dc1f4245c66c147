//! Remote write and remote read.
//!
//! - [`proto`]: the protobuf messages.
//! - [`decode_write_request`]: a snappy-compressed `WriteRequest` body, decoded with limits
//!   checked before anything is allocated (a small body can claim a huge decompressed size).
//! - [`encode_write_request`]: the other direction, for senders and tests.
//! - [`wire_v1`]: a borrowing reader of `WriteRequest` bytes for the receiver's hot path.
//! - [`read`]: remote-read request decoding, response encoding and the streamed frame format.
//! - [`metadata`]: metric metadata on the wire (type numbers, series-to-family lookup) and the
//!   periodic metadata sender of remote write 1.0 queues.
//! - Remote write, fed from the TSDB's WAL: [`storage::RemoteStorage`] runs one
//!   [`queue::QueueManager`] per `remote_write` config; each has a WAL watcher
//!   ([`wal_watcher`], reading with [`wal_tail`]), shards ([`shards`]), a saved position
//!   ([`position`]), a transport ([`sender`]) and metrics ([`metrics`]).

pub mod encode;
pub mod metadata;
pub mod metrics;
pub mod position;
pub mod proto;
pub mod proto_v2;
pub mod queue;
pub mod read;
pub mod sender;
mod shards;
pub mod storage;
pub mod wal_tail;
pub mod wal_watcher;
pub mod wire_v1;

pub use queue::{QueueManager, QueueOptions};
pub use sender::{HttpTransport, Response, SendFuture, Transport};
pub use shards::QueueSettings;
pub use storage::{RemoteStorage, RemoteWriteOptions, lowest_saved_segment, queue_id};

use prost::Message;

/// Why a remote-write body was refused; every case is the sender's fault (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("snappy: {0}")]
    Snappy(String),
    #[error("decompressed body of {declared} bytes exceeds the limit of {limit} bytes")]
    TooLarge { declared: usize, limit: usize },
    #[error("protobuf: {0}")]
    Protobuf(String),
}

/// Decompresses a snappy block body, checking the size it declares against
/// `max_decompressed` before allocating (a small body can claim a huge size).
pub fn decompress_limited(body: &[u8], max_decompressed: usize) -> Result<Vec<u8>, DecodeError> {
    let declared =
        snap::raw::decompress_len(body).map_err(|e| DecodeError::Snappy(e.to_string()))?;
    if declared > max_decompressed {
        return Err(DecodeError::TooLarge {
            declared,
            limit: max_decompressed,
        });
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| DecodeError::Snappy(e.to_string()))
}

/// Decodes a snappy block-compressed, protobuf-encoded `WriteRequest` (remote write 1.0).
pub fn decode_write_request(
    body: &[u8],
    max_decompressed: usize,
) -> Result<proto::WriteRequest, DecodeError> {
    let raw = decompress_limited(body, max_decompressed)?;
    decode_write_request_raw(&raw)
}

/// Decodes an already decompressed `WriteRequest`.
pub fn decode_write_request_raw(raw: &[u8]) -> Result<proto::WriteRequest, DecodeError> {
    proto::WriteRequest::decode(raw).map_err(|e| DecodeError::Protobuf(e.to_string()))
}

/// One series of a decoded 2.0 request with its labels resolved from the symbol table.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesV2 {
    /// (name, value) pairs in the order sent.
    pub labels: Vec<(String, String)>,
    pub samples: Vec<proto_v2::Sample>,
    pub histograms: usize,
    pub exemplars: Vec<ExemplarV2>,
    /// `None` when the series carries no metadata (unspecified type, no help, no unit).
    pub metadata: Option<MetadataV2>,
}

/// An exemplar of a decoded 2.0 request.
#[derive(Debug, Clone, PartialEq)]
pub struct ExemplarV2 {
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// Milliseconds; 0 when the sender set none.
    pub timestamp: i64,
}

/// The metadata of a series of a decoded 2.0 request.
#[derive(Debug, Clone, PartialEq)]
pub struct MetadataV2 {
    pub kind: model::exposition::MetricType,
    pub help: String,
    pub unit: String,
}

/// Decodes a snappy-compressed `io.prometheus.write.v2.Request`, resolving each series' label
/// references (which must come in pairs and point into the symbol table).
pub fn decode_write_request_v2(
    body: &[u8],
    max_decompressed: usize,
) -> Result<Vec<SeriesV2>, DecodeError> {
    let raw = decompress_limited(body, max_decompressed)?;
    let req = proto_v2::Request::decode(raw.as_slice())
        .map_err(|e| DecodeError::Protobuf(e.to_string()))?;
    let symbol = |i: u32| {
        req.symbols.get(i as usize).cloned().ok_or_else(|| {
            DecodeError::Protobuf(format!(
                "label reference {i} outside the symbol table of {} entries",
                req.symbols.len()
            ))
        })
    };
    let pairs = |refs: &[u32], what: &str| -> Result<Vec<(String, String)>, DecodeError> {
        if !refs.len().is_multiple_of(2) {
            return Err(DecodeError::Protobuf(format!(
                "odd number of label references in {what}"
            )));
        }
        refs.chunks_exact(2)
            .map(|pair| Ok((symbol(pair[0])?, symbol(pair[1])?)))
            .collect()
    };
    let mut out = Vec::with_capacity(req.timeseries.len());
    for ts in req.timeseries {
        let labels = pairs(&ts.labels_refs, "a series")?;
        let exemplars = ts
            .exemplars
            .iter()
            .map(|e| {
                Ok(ExemplarV2 {
                    labels: pairs(&e.labels_refs, "an exemplar")?,
                    value: e.value,
                    timestamp: e.timestamp,
                })
            })
            .collect::<Result<Vec<_>, DecodeError>>()?;
        let metadata = match ts.metadata {
            None => None,
            Some(m) => {
                let kind = metadata::metric_type_from_proto(m.r#type).ok_or_else(|| {
                    DecodeError::Protobuf(format!("unknown metric type {}", m.r#type))
                })?;
                let (help, unit) = (symbol(m.help_ref)?, symbol(m.unit_ref)?);
                let unset = kind == model::exposition::MetricType::Unknown
                    && help.is_empty()
                    && unit.is_empty();
                (!unset).then_some(MetadataV2 { kind, help, unit })
            }
        };
        out.push(SeriesV2 {
            labels,
            samples: ts.samples,
            histograms: ts.histograms.len(),
            exemplars,
            metadata,
        });
    }
    Ok(out)
}

/// Encodes and snappy-compresses a `WriteRequest`.
pub fn encode_write_request(req: &proto::WriteRequest) -> Vec<u8> {
    let raw = req.encode_to_vec();
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::*;

    #[test]
    fn round_trip_and_bomb_protection() {
        let req = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label {
                    name: "__name__".into(),
                    value: "up".into(),
                }],
                samples: vec![Sample {
                    value: 1.5,
                    timestamp: 1000,
                }],
                ..Default::default()
            }],
            metadata: vec![],
        };
        let body = encode_write_request(&req);
        assert_eq!(decode_write_request(&body, 1 << 20).unwrap(), req);
        // A tiny body that claims 1 GiB of output is refused before decompression.
        let mut bomb = Vec::new();
        let mut n: u64 = 1 << 30;
        while n >= 0x80 {
            bomb.push((n as u8) | 0x80);
            n >>= 7;
        }
        bomb.push(n as u8);
        bomb.extend_from_slice(&[0, 0, 0]);
        assert!(matches!(
            decode_write_request(&bomb, 32 << 20),
            Err(DecodeError::TooLarge { .. })
        ));
        assert!(decode_write_request(b"not snappy at all", 1 << 20).is_err());
    }
}
