//! The response body type every route returns.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// A live body produced while hyper polls it (the `/v1/messages` stream).
pub(crate) type LiveBody = Pin<Box<dyn Body<Data = Bytes, Error = Infallible> + Send>>;

/// A complete body, or a live Anthropic SSE stream driven by the upstream.
pub(crate) enum ResponseBody {
    /// A complete body (JSON, text, empty).
    Full(Option<Bytes>),
    /// An SSE stream; the upstream is read only when hyper polls it. Boxed behind the
    /// `Body` trait, so this module does not depend on the pipeline that builds it.
    Stream(LiveBody),
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
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            Self::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Self::Stream(s) => s.as_mut().poll_frame(cx),
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
