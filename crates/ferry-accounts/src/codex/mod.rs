//! Upstream request shaping for an account: the Responses URL (gateway.md §4a), the OAuth
//! Codex body transform (§4b and §1 step 15) with the forced-instructions template and the
//! Responses Lite shape, and the upstream headers with the Codex client identity (§4c, §1
//! steps 21–24).
//!
//! - `endpoint`: default base URLs and [`responses_url`].
//! - `transform`: [`apply_codex_transform`], the body rewrite for the Codex backend.
//! - `input`: the input-item normalisation the transform applies.
//! - `lite`: [`apply_responses_lite`], the Responses Lite request shape.
//! - `template`: [`render_instructions_template`], the forced-instructions template.
//! - `headers`: [`build_upstream_headers`] and the Codex client version/originator.

mod endpoint;
mod headers;
mod input;
mod lite;
mod template;
mod transform;

pub use self::{
    endpoint::{CODEX_BASE_URL, OPENAI_BASE_URL, responses_url},
    headers::{
        CODEX_CLI_VERSION, CODEX_MIN_CLIENT_VERSION, CODEX_ORIGINATOR, RESPONSES_LITE_HEADER,
        UpstreamHeaderInput, build_upstream_headers,
    },
    lite::apply_responses_lite,
    template::{TemplateFields, render_instructions_template},
    transform::{CodexTransformOptions, CodexTransformOutcome, apply_codex_transform},
};
