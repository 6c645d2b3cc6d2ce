//! The response body type every route returns.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::messages::respond::stream::MessageStream;

/// A complete body, or a live Anthropic SSE stream driven by the upstream.
pub(crate) enum ResponseBody {
    /// A complete body (JSON, text, empty).
    Full(Option<Bytes>),
    /// An SSE stream; the upstream is read only when hyper polls it.
    Stream(Box<MessageStream>),
}

impl ResponseBody {
    pub(crate) fn empty() -> Self {
        Self::Full(None)
    }

    pub(crate) fn full(b: impl Into<Bytes>) -> Self {
        let b = b.into();
        Self::Full(if b.is_empty() { None } else { Some(b) })
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            Self::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Self::Stream(s) => Pin::new(s.as_mut()).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Full(b) => b.is_none(),
            Self::Stream(s) => s.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Self::Full(None) => SizeHint::with_exact(0),
            Self::Stream(_) => SizeHint::default(),
        }
    }
}
