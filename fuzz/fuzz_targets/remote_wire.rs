//! Fuzzes the remote-write and remote-read decoders with the bytes a client sends (snappy
//! block format around protobuf): write 1.0, write 2.0 and read requests decode or fail
//! cleanly, within the decompression limit, and the streamed-frame reader never panics. The
//! receiver's borrowing reader (`wire_v1`) is checked against the generated decoder: whatever
//! it reads completely, the generated decoder reads too, with the same series and samples.
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
    check_wire_v1(data);
});

fn check_wire_v1(raw: &[u8]) {
    let mut seen: Vec<(Vec<(String, String)>, Vec<(i64, u64)>)> = Vec::new();
    let (mut pairs, mut samples) = (Vec::new(), Vec::new());
    let walked = remote::wire_v1::for_each_series::<()>(raw, &mut pairs, &mut samples, |p, s| {
        seen.push((
            p.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            s.iter().map(|(t, v)| (*t, v.to_bits())).collect(),
        ));
        Ok(())
    });
    if let Ok(remote::wire_v1::Walk::Done) = walked {
        let req = match remote::decode_write_request_raw(raw) {
            Ok(r) => r,
            Err(e) => panic!("wire_v1 read what the generated decoder refuses: {e}"),
        };
        let theirs: Vec<(Vec<(String, String)>, Vec<(i64, u64)>)> = req
            .timeseries
            .iter()
            .map(|ts| {
                (
                    ts.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect(),
                    ts.samples.iter().map(|s| (s.timestamp, s.value.to_bits())).collect(),
                )
            })
            .collect();
        assert_eq!(seen, theirs);
    }
}
