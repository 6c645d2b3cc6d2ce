//! The incremental SSE frame parser.

use crate::{Frame, ParseError};

const BOM: &[u8; 3] = b"\xEF\xBB\xBF";
/// `bom_matched` value once the start of the stream has been looked at.
const BOM_SETTLED: u8 = u8::MAX;

/// An incremental parser from bytes, in chunks of any size, to [`Frame`]s.
///
/// Follows the SSE specification's field rules: `event:`, `data:` (several data lines are
/// joined with `\n`), `id:`, `retry:`, comment lines starting with `:`, one optional space
/// after the colon, LF, CRLF or CR line ends (a CR at the end of one chunk and an LF at the
/// start of the next are one line end), and a UTF-8 byte order mark at the very start. Any
/// other field is ignored. A frame is dispatched at a blank line when it had at least one
/// `data:` line.
///
/// Memory is bounded: a line longer than `max_line_bytes` is a
/// [`ParseError::LineTooLong`] and is skipped without being buffered, and the data of one
/// frame may not exceed the same limit ([`ParseError::FrameTooLong`]). A field value that is
/// not UTF-8 is a [`ParseError::InvalidUtf8`]. In every error case the frame in progress is
/// dropped and parsing resumes after the next blank line.
///
/// A line that arrives whole inside one chunk is copied exactly once, into the frame's
/// `data`; only a line split between chunks is buffered first.
#[derive(Debug, Clone)]
pub struct Parser {
    max: usize,
    /// The start of a line whose end has not arrived yet.
    line: Vec<u8>,
    /// Stream offset of the start of the current line.
    line_start: u64,
    /// Stream offset of the next chunk's first byte.
    consumed: u64,
    /// Skipping the rest of a line that went over the limit.
    discarding: bool,
    /// The previous chunk ended with CR, so an LF at the start of the next one is skipped.
    after_cr: bool,
    /// How many bytes of a leading BOM have been seen, or [`BOM_SETTLED`].
    bom_matched: u8,
    pending: Pending,
}

/// The frame being built.
#[derive(Debug, Clone, Default)]
struct Pending {
    event: Option<String>,
    data: String,
    has_data: bool,
    id: Option<String>,
    retry: Option<u64>,
    /// An error hit this frame: ignore its remaining lines and dispatch nothing.
    poisoned: bool,
}

impl Pending {
    fn poison(&mut self) {
        *self = Pending {
            poisoned: true,
            ..Pending::default()
        };
    }
}

impl Parser {
    /// A parser that accepts lines (and frame data) of at most `max_line_bytes` bytes,
    /// line end excluded.
    pub fn new(max_line_bytes: usize) -> Self {
        Self {
            max: max_line_bytes,
            line: Vec::new(),
            line_start: 0,
            consumed: 0,
            discarding: false,
            after_cr: false,
            bom_matched: 0,
            pending: Pending::default(),
        }
    }

    /// The maximum line length this parser was created with.
    pub fn max_line_bytes(&self) -> usize {
        self.max
    }

    /// Parses the next chunk of the stream and appends every frame it completes to `out`.
    ///
    /// The whole chunk is always consumed, even after an error: frames before and after a
    /// bad one are still appended. The first error met in this chunk is returned; the frame
    /// it hit is dropped.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<Frame>) -> Result<(), ParseError> {
        let mut errors = Errors::default();
        let mut pos = self.consumed;
        self.consumed += chunk.len() as u64;
        let mut rest = chunk;

        if self.bom_matched != BOM_SETTLED {
            rest = self.skip_bom(rest, &mut pos);
        }
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if rest[0] == b'\n' {
                rest = &rest[1..];
                pos += 1;
            }
        }
        if self.line.is_empty() && !self.discarding {
            self.line_start = pos;
        }

        while let Some(end) = memchr::memchr2(b'\n', b'\r', rest) {
            let part = &rest[..end];
            if self.discarding {
                self.discarding = false;
            } else if self.line.is_empty() {
                if part.len() > self.max {
                    self.line_too_long(&mut errors);
                } else {
                    self.process_line(part, self.line_start, out, &mut errors);
                }
            } else if self.line.len() + part.len() > self.max {
                self.line.clear();
                self.line_too_long(&mut errors);
            } else {
                self.line.extend_from_slice(part);
                let line = std::mem::take(&mut self.line);
                self.process_line(&line, self.line_start, out, &mut errors);
                self.line = line;
                self.line.clear();
            }

            let mut advance = end + 1;
            if rest[end] == b'\r' {
                match rest.get(end + 1) {
                    Some(b'\n') => advance += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            rest = &rest[advance..];
            pos += advance as u64;
            self.line_start = pos;
        }

        if !rest.is_empty() && !self.discarding {
            if self.line.len() + rest.len() > self.max {
                self.line.clear();
                self.line_too_long(&mut errors);
                self.discarding = true;
            } else {
                self.line.extend_from_slice(rest);
            }
        }
        errors.into_result()
    }

    /// Parses a whole stream given as `chunks` (a recorded stream, a test): every frame,
    /// and the error each [`Parser::feed`] and the final [`Parser::finish`] returned, in
    /// order. The frames are those of feeding the chunks one by one.
    pub fn parse_chunks<'a>(
        max_line_bytes: usize,
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> (Vec<Frame>, Vec<ParseError>) {
        let mut parser = Self::new(max_line_bytes);
        let mut frames = Vec::new();
        let mut errors = Vec::new();
        for chunk in chunks {
            if let Err(e) = parser.feed(chunk, &mut frames) {
                errors.push(e);
            }
        }
        if let Err(e) = parser.finish(&mut frames) {
            errors.push(e);
        }
        (frames, errors)
    }

    /// Ends the stream: processes a last line that has no line end and dispatches a frame
    /// that lacks its closing blank line.
    ///
    /// The parser is then reset and can parse a new stream.
    pub fn finish(&mut self, out: &mut Vec<Frame>) -> Result<(), ParseError> {
        let mut errors = Errors::default();
        if let Some(matched) = self.bom_prefix() {
            // The stream ended inside what looked like a BOM: those bytes were content.
            self.line.extend_from_slice(matched);
        }
        if !self.discarding && !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, self.line_start, out, &mut errors);
        }
        self.dispatch(out);
        *self = Self::new(self.max);
        errors.into_result()
    }

    /// The BOM bytes matched so far, if the stream start is still undecided.
    fn bom_prefix(&self) -> Option<&'static [u8]> {
        match self.bom_matched {
            BOM_SETTLED | 0 => None,
            n => BOM.get(..usize::from(n)),
        }
    }

    /// Consumes a leading BOM, even one split between chunks.
    fn skip_bom<'c>(&mut self, mut rest: &'c [u8], pos: &mut u64) -> &'c [u8] {
        while let Some((&byte, tail)) = rest.split_first() {
            let n = usize::from(self.bom_matched);
            if BOM.get(n) == Some(&byte) {
                rest = tail;
                *pos += 1;
                self.bom_matched += 1;
                if usize::from(self.bom_matched) == BOM.len() {
                    self.bom_matched = BOM_SETTLED;
                    return rest;
                }
            } else {
                // Not a BOM after all: the bytes matched so far start the first line.
                if let Some(matched) = self.bom_prefix() {
                    self.line.extend_from_slice(matched);
                    self.line_start = 0;
                }
                self.bom_matched = BOM_SETTLED;
                return rest;
            }
        }
        rest
    }

    fn line_too_long(&mut self, errors: &mut Errors) {
        errors.push(ParseError::LineTooLong {
            limit: self.max,
            offset: self.line_start,
        });
        self.pending.poison();
    }

    /// Handles one complete line, line end excluded.
    fn process_line(
        &mut self,
        line: &[u8],
        offset: u64,
        out: &mut Vec<Frame>,
        errors: &mut Errors,
    ) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if self.pending.poisoned || line[0] == b':' {
            return;
        }
        let (name, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match name {
            b"data" => {
                let Ok(value) = std::str::from_utf8(value) else {
                    return self.invalid_utf8(offset, errors);
                };
                let pending = &mut self.pending;
                let extra = usize::from(pending.has_data) + value.len();
                if pending.data.len() + extra > self.max {
                    errors.push(ParseError::FrameTooLong {
                        limit: self.max,
                        offset,
                    });
                    return pending.poison();
                }
                if pending.has_data {
                    pending.data.push('\n');
                    pending.data.push_str(value);
                } else {
                    pending.has_data = true;
                    pending.data = String::from(value);
                }
            }
            b"event" => {
                let Ok(value) = std::str::from_utf8(value) else {
                    return self.invalid_utf8(offset, errors);
                };
                let value = value.trim();
                self.pending.event = (!value.is_empty()).then(|| value.to_owned());
            }
            b"id" => {
                if memchr::memchr(0, value).is_some() {
                    return;
                }
                let Ok(value) = std::str::from_utf8(value) else {
                    return self.invalid_utf8(offset, errors);
                };
                self.pending.id = Some(value.to_owned());
            }
            b"retry" => {
                if let Some(ms) = parse_retry(value) {
                    self.pending.retry = Some(ms);
                }
            }
            _ => {}
        }
    }

    fn invalid_utf8(&mut self, offset: u64, errors: &mut Errors) {
        errors.push(ParseError::InvalidUtf8 { offset });
        self.pending.poison();
    }

    fn dispatch(&mut self, out: &mut Vec<Frame>) {
        let pending = std::mem::take(&mut self.pending);
        if pending.poisoned || !pending.has_data {
            return;
        }
        out.push(Frame {
            event: pending.event,
            data: pending.data,
            id: pending.id,
            retry: pending.retry,
        });
    }
}

/// A `retry:` value: ASCII digits only (so no `+` sign), and not overflowing.
fn parse_retry(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Keeps the first error of a call.
#[derive(Default)]
struct Errors(Option<ParseError>);

impl Errors {
    fn push(&mut self, error: ParseError) {
        self.0.get_or_insert(error);
    }

    fn into_result(self) -> Result<(), ParseError> {
        self.0.map_or(Ok(()), Err)
    }
}
