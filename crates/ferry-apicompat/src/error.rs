//! The crate's error type.

/// Input that cannot be converted.
///
/// Every variant names where in the input the problem is. Messages are lowercase, carry no
/// trailing period and never contain secrets.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// The JSON does not have the shape of the expected type.
    #[error("{path}: {message}")]
    InvalidShape {
        /// JSON path of the offending value (`messages[3].content[0].source.media_type`).
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// A block of a known type whose fields are malformed.
    #[error("{path}: invalid `{block_type}` block: {message}")]
    InvalidBlock {
        /// JSON path of the block.
        path: String,
        /// The block's `type`.
        block_type: String,
        /// What is wrong with it.
        message: String,
    },
    /// A value that is well-formed but not allowed (for example an empty `messages`).
    #[error("{path}: {message}")]
    InvalidValue {
        /// JSON path of the value.
        path: String,
        /// Why it is not allowed.
        message: String,
    },
}
