//! Fuzzes the remote-write and remote-read decoders with the bytes a client sends (snappy
//! block format around protobuf): write 1.0, write 2.0 and read requests decode or fail
//! cleanly, within the decompression limit, and the streamed-frame reader never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let _ = remote::decode_write_request(data, LIMIT);
    let _ = remote::decode_write_request_v2(data, LIMIT);
    let _ = remote::read::decode_read_request(data, LIMIT);
    let _ = remote::read::read_frames(data);
    // The same bytes as an already-decompressed protobuf body.
    let framed = snap::raw::Encoder::new().compress_vec(data).unwrap_or_default();
    let _ = remote::decode_write_request(&framed, LIMIT);
    let _ = remote::decode_write_request_v2(&framed, LIMIT);
    let _ = remote::read::decode_read_request(&framed, LIMIT);
});
