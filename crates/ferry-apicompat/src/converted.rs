//! The result of a conversion that may lose information.

/// A converted value together with everything the conversion could not carry over.
///
/// Only input that cannot be converted at all is an error; anything lossy is listed in
/// `dropped` so that the caller can log it, count it and tell the client.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Converted<T> {
    /// The converted value.
    pub value: T,
    /// What was left out or changed on the way, in input order.
    pub dropped: Vec<Dropped>,
}

impl<T> Converted<T> {
    /// A conversion that lost nothing.
    pub fn lossless(value: T) -> Self {
        Self {
            value,
            dropped: Vec::new(),
        }
    }

    /// A conversion with its losses.
    pub fn new(value: T, dropped: Vec<Dropped>) -> Self {
        Self { value, dropped }
    }
}

/// One thing a conversion dropped or changed.
///
/// Serialises as `{"path": …, "kind": …, "detail": …}` (for logs and `ferry convert`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Dropped {
    /// JSON path of the dropped or changed part in the input, e.g. `messages[3].content[1]`.
    pub path: String,
    /// Low-cardinality kind, usable as a metric label, e.g. `unknown_block`, `cache_control`.
    pub kind: &'static str,
    /// Human-readable detail (never contains secrets or user content).
    pub detail: String,
}

impl Dropped {
    /// Creates a record of something dropped at `path`.
    pub fn new(path: impl Into<String>, kind: &'static str, detail: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            kind,
            detail: detail.into(),
        }
    }
}
