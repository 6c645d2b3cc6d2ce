//! The crate's error type.

/// Input that the SSE layer cannot turn into frames or events.
///
/// A parse error never leaves the [`Parser`](crate::Parser) in a broken state: the frame
/// that contained the bad input is dropped, and parsing resumes at the next frame. Offsets
/// count bytes from the start of the stream (a leading BOM included).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// A line is longer than the configured maximum. The rest of the line is skipped
    /// without being buffered, and the frame it belongs to is dropped.
    #[error("sse line at byte {offset} is longer than {limit} bytes")]
    LineTooLong {
        /// The configured maximum line length in bytes.
        limit: usize,
        /// Stream offset of the start of the line.
        offset: u64,
    },
    /// The data lines of one frame add up to more than the configured maximum. The frame
    /// is dropped.
    #[error("sse frame data at byte {offset} is longer than {limit} bytes")]
    FrameTooLong {
        /// The configured maximum in bytes (the same as the line maximum).
        limit: usize,
        /// Stream offset of the data line that went over the limit.
        offset: u64,
    },
    /// A field value is not valid UTF-8. The frame it belongs to is dropped.
    #[error("sse line at byte {offset} is not valid utf-8")]
    InvalidUtf8 {
        /// Stream offset of the start of the line.
        offset: u64,
    },
}
