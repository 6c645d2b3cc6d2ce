//! Upstream request shaping for an account: the Responses URL, the request shape per
//! upstream kind ([`Target`]: the API, the OAuth Codex transform with the
//! forced-instructions template, and the Responses Lite shape of docs/models.md), and the
//! upstream headers with the Codex client identity. Every shape is a
//! pure function over the typed [`ferry_apicompat::responses::Request`].
//!
//! - `endpoint`: default base URLs and [`responses_url`].
//! - `target`: [`Target`], which shape an account takes, [`Target::shape`] (with the
//!   service-tier policy) and [`Target::encode`], the one serialisation of the body.
//! - `transform`: [`apply_codex_transform`], the rewrite for the Codex backend.
//! - `input`: the input-item rules the transform applies.
//! - `lite`: [`apply_responses_lite`], the Responses Lite request shape.
//! - `template`: [`render_instructions_template`], the forced-instructions template.
//! - `headers`: [`build_upstream_headers`] and the Codex client version/originator.

mod endpoint;
mod headers;
mod input;
mod lite;
mod target;
mod template;
mod transform;

pub use self::{
    endpoint::{CODEX_BASE_URL, OPENAI_BASE_URL, responses_url},
    headers::{
        CODEX_CLI_VERSION, CODEX_MIN_CLIENT_VERSION, CODEX_ORIGINATOR, RESPONSES_LITE_HEADER,
        UpstreamHeaderInput, build_upstream_headers,
    },
    lite::apply_responses_lite,
    target::{Shaped, Target, TargetOptions},
    template::{TemplateFields, render_instructions_template},
    transform::{CodexTransformOptions, CodexTransformOutcome, apply_codex_transform},
};
