//! `ferry_sse::Parser` on arbitrary bytes.
//!
//! Properties: it never panics; memory stays bounded (no frame's data is longer than the
//! line limit); and splitting the input into chunks changes nothing: the frames are the same
//! as with one `feed` of the whole input, and an error is reported in one case exactly when
//! it is in the other.
//!
//! Input layout: byte 0 picks the line limit (16..=4111 bytes), byte 1 the chunk size
//! (1..=64 bytes), the rest is the stream.
#![no_main]

use ferry_sse::{Frame, Parser};
use libfuzzer_sys::fuzz_target;

fn parse(stream: &[u8], limit: usize, chunk: usize) -> (Vec<Frame>, bool) {
    let mut parser = Parser::new(limit);
    let mut frames = Vec::new();
    let mut failed = false;
    for piece in stream.chunks(chunk.max(1)) {
        failed |= parser.feed(piece, &mut frames).is_err();
    }
    failed |= parser.finish(&mut frames).is_err();
    (frames, failed)
}

fuzz_target!(|data: &[u8]| {
    let [a, b, stream @ ..] = data else {
        return;
    };
    let limit = 16 + usize::from(*a) * 16;
    let chunk = 1 + usize::from(*b % 64);
    let (whole, whole_failed) = parse(stream, limit, stream.len());
    let (split, split_failed) = parse(stream, limit, chunk);
    for f in &whole {
        assert!(f.data.len() <= limit, "frame data over the limit");
    }
    assert_eq!(whole, split, "chunking changed the frames");
    assert_eq!(
        whole_failed, split_failed,
        "chunking changed whether it failed"
    );
});
