//! Reversible tool-name shortening.

/// Maps client tool names to names the upstream accepts, and back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolNames {}
