//! Remote-read wire helpers: decoding a snappy-compressed `ReadRequest` with its size checked
//! before allocation, encoding a `ReadResponse`, and framing `ChunkedReadResponse` messages
//! for the streamed response type (each frame: the message length as a uvarint, the CRC-32
//! Castagnoli of the message as 4 big-endian bytes, then the message).

use crate::DecodeError;
use crate::proto::{ChunkedReadResponse, ReadRequest, ReadResponse};
use prost::Message;

/// `Content-Type` of a streamed (chunked) remote-read response.
pub const STREAMED_CONTENT_TYPE: &str =
    "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse";

/// Decodes a snappy-compressed `ReadRequest`, refusing bodies that claim to decompress to more
/// than `max_decompressed` bytes.
pub fn decode_read_request(
    body: &[u8],
    max_decompressed: usize,
) -> Result<ReadRequest, DecodeError> {
    let raw = crate::decompress_limited(body, max_decompressed)?;
    ReadRequest::decode(raw.as_slice()).map_err(|e| DecodeError::Protobuf(e.to_string()))
}

/// Encodes and snappy-compresses a `ReadRequest` (for clients and tests).
pub fn encode_read_request(req: &ReadRequest) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap_or_default()
}

/// Encodes and snappy-compresses a `ReadResponse` (the samples response type).
pub fn encode_read_response(resp: &ReadResponse) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(&resp.encode_to_vec())
        .unwrap_or_default()
}

/// Appends one frame carrying `msg` to `out`.
pub fn write_frame(out: &mut Vec<u8>, msg: &ChunkedReadResponse) {
    let data = msg.encode_to_vec();
    prost::encoding::encode_varint(data.len() as u64, out);
    out.extend_from_slice(&crc32c::crc32c(&data).to_be_bytes());
    out.extend_from_slice(&data);
}

/// Splits a streamed response back into its messages, checking each frame's checksum.
pub fn read_frames(mut body: &[u8]) -> Result<Vec<ChunkedReadResponse>, DecodeError> {
    let mut out = Vec::new();
    while !body.is_empty() {
        let len = prost::encoding::decode_varint(&mut body)
            .map_err(|e| DecodeError::Protobuf(e.to_string()))?;
        // The length comes from outside: compare without overflowing.
        let len = usize::try_from(len)
            .ok()
            .filter(|l| body.len().saturating_sub(4) >= *l && body.len() >= 4)
            .ok_or_else(|| DecodeError::Protobuf("truncated frame".into()))?;
        let crc = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        let data = &body[4..4 + len];
        if crc32c::crc32c(data) != crc {
            return Err(DecodeError::Protobuf("frame checksum mismatch".into()));
        }
        out.push(
            ChunkedReadResponse::decode(data).map_err(|e| DecodeError::Protobuf(e.to_string()))?,
        );
        body = &body[4 + len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Chunk, ChunkedSeries, Label};

    #[test]
    fn frames_round_trip_and_detect_corruption() {
        let msg = ChunkedReadResponse {
            chunked_series: vec![ChunkedSeries {
                labels: vec![Label {
                    name: "__name__".into(),
                    value: "up".into(),
                }],
                chunks: vec![Chunk {
                    min_time_ms: 1,
                    max_time_ms: 2,
                    r#type: 1,
                    data: vec![0, 1, 2, 3],
                }],
            }],
            query_index: 3,
        };
        let mut body = Vec::new();
        write_frame(&mut body, &msg);
        write_frame(&mut body, &msg);
        assert_eq!(read_frames(&body).ok(), Some(vec![msg.clone(), msg]));
        let last = body.len() - 1;
        body[last] ^= 1;
        assert!(read_frames(&body).is_err());
        assert!(read_frames(&body[..5]).is_err());
        // A length near the top of the range (a fuzzer find) is an error, not an overflow.
        let mut huge = Vec::new();
        prost::encoding::encode_varint(u64::MAX - 1, &mut huge);
        huge.extend_from_slice(&[0; 8]);
        assert!(read_frames(&huge).is_err());
    }
}
