//! The pure half of the plan: the client request converted for an account's model route
//! ([`convert_for`]), then, with what the session knows ([`SessionFacts`]), the final typed
//! upstream request for the account's [`Target`] ([`upstream_request`]), serialised once
//! ([`Upstream::body`]). The server and `ferry convert request` both call these, so the CLI
//! prints the bytes the server sends.

use ferry_accounts::{AccountConfig, AccountsError, ModelRoute, Target, TargetOptions};
use ferry_apicompat::convert::{self};
use ferry_apicompat::{ConvertError, Converted, anthropic, responses};
use serde_json::Value;

/// The client request converted for one account's model route.
#[derive(Debug)]
#[non_exhaustive]
pub struct Conversion {
    /// The converted request (its effort clamped to what the model takes) and what the
    /// conversion left out.
    pub converted: Converted<responses::Request>,
    /// The request declares Claude Code's task tools ([`ferry_session::wants_todo_guard`]).
    pub wants_todo_guard: bool,
}

/// Whether the request asks for Anthropic's fast mode: `speed: "fast"` in the body. The
/// `fast-mode` beta header only lets the client send the field, so the header with
/// `speed: "standard"` (or none) is standard.
pub fn asks_fast_mode(req: &anthropic::MessagesRequest) -> bool {
    req.extra.get("speed").and_then(Value::as_str) == Some("fast")
}

/// Converts the client request for `route` on `account`: a model suffix's reasoning effort
/// (`gpt-5.4-high`) unless the client set one, fast mode (`fast_mode` or a `-fast` model) as
/// `service_tier: "priority"`, the upstream model, and the effort clamped to the model.
///
/// # Errors
///
/// A request that cannot be converted ([`convert::request::convert`]).
pub fn convert_for(
    req: &anthropic::MessagesRequest,
    account: &AccountConfig,
    route: &ModelRoute,
    fast_mode: bool,
) -> Result<Conversion, ConvertError> {
    // Copied only when a model suffix changes it (the body can be large).
    let req: std::borrow::Cow<'_, anthropic::MessagesRequest> = match route
        .suffix_effort
        .and_then(ferry_accounts::anthropic_effort_for_suffix)
    {
        Some(effort) => {
            let mut req = req.clone();
            apply_suffix_effort(&mut req, effort);
            std::borrow::Cow::Owned(req)
        }
        None => std::borrow::Cow::Borrowed(req),
    };
    let mut opts = convert::request::Options::new().with_model(route.upstream.clone());
    if fast_mode || route.fast {
        opts = opts.with_service_tier("priority");
    }
    let mut converted = convert::request::convert(&req, &opts)?;
    crate::models::clamp_effort(
        &mut converted.value,
        &req,
        account.model_spec(&route.upstream).as_ref(),
    );
    Ok(Conversion {
        converted,
        wants_todo_guard: ferry_session::wants_todo_guard(&req),
    })
}

/// What the session knows about this turn on this account, read before the request is
/// planned (the only part of planning that waits on the session store).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SessionFacts {
    /// The client asked for a stream. A non-streaming client needs the whole answer before
    /// it gets a byte, so an API upstream is asked for one JSON body; Codex upstreams only
    /// stream.
    pub client_stream: bool,
    /// Continuation may be used on this account and model: the upstream stores the response
    /// (it continues only from stored responses).
    pub continuation: bool,
    /// The stored upstream response this turn continues from (with `continuation`).
    pub previous_response_id: Option<String>,
    /// Add the todo guard unless the turn continues (the guard is on, applies to the model
    /// family, and the request uses the task tools).
    pub todo_guard: bool,
    /// The upstream prompt cache key of the session, used when the request carries none.
    pub prompt_cache_key: Option<String>,
    /// Leave out the replayed reasoning items (an upstream rejected their encrypted content).
    pub strip_reasoning: bool,
}

impl SessionFacts {
    /// The facts of a turn with no session, on a server with the default session settings:
    /// nothing stored, no cache key, the todo guard as [`ferry_session::SessionConfig`]'s
    /// default and the model family decide (what `ferry convert request` shows).
    pub fn without_session(
        conversion: &Conversion,
        route: &ModelRoute,
        client_stream: bool,
    ) -> Self {
        Self {
            client_stream,
            todo_guard: ferry_session::SessionConfig::default().todo_guard
                && ferry_session::keys::should_auto_inject(&route.family)
                && conversion.wants_todo_guard,
            ..Self::default()
        }
    }
}

/// The upstream request for one account, as it is sent.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Upstream {
    /// The request shape of the account.
    pub target: Target,
    /// The final request.
    pub request: responses::Request,
    /// The model in the request (Codex-normalised on Codex targets).
    pub upstream_model: String,
    /// `previous_response_id` was attached (the input trimmed to the latest turn).
    pub continued: bool,
    /// Replayed reasoning items were left out ([`SessionFacts::strip_reasoning`]).
    pub stripped_reasoning: bool,
    /// Reasoning items replayed in `input` (encrypted content the upstream may reject).
    pub reasoning_items: usize,
    /// Codex targets: the request's prompt cache key, which OAuth carries in headers only.
    pub header_cache_key: Option<String>,
}

impl Upstream {
    /// The body as sent ([`Target::encode`]).
    ///
    /// # Errors
    ///
    /// When the request does not serialise (it always does).
    pub fn body(&self) -> Result<Vec<u8>, serde_json::Error> {
        self.target.encode(&self.request)
    }

    /// `service_tier` as sent.
    pub fn service_tier(&self) -> Option<&str> {
        self.request.service_tier.as_deref()
    }

    /// `reasoning.effort` as sent.
    pub fn reasoning_effort(&self) -> Option<String> {
        self.request
            .reasoning
            .as_ref()
            .and_then(|r| r.effort.as_ref())
            .and_then(|e| serde_json::to_value(e).ok())
            .and_then(|v| v.as_str().map(str::to_owned))
    }

    /// The upstream was asked to stream (else: one JSON body).
    pub fn stream(&self) -> bool {
        self.request.stream == Some(true)
    }
}

/// The final upstream request for `account`, from the converted request and the session's
/// facts: replayed reasoning left out if asked, `stream` and `store`, continuation
/// (`previous_response_id`, input trimmed to the latest turn), the todo guard, the prompt
/// cache key, then the account's [`Target`] shape with its service-tier policy
/// ([`Target::shape`]). Pure: the same inputs give the same request.
///
/// # Errors
///
/// What [`Target::shape`] refuses: a forced-instructions template that does not render, a
/// tool the Lite shape cannot carry, a service tier the account's policy blocks.
pub fn upstream_request(
    mut request: responses::Request,
    account: &AccountConfig,
    route: &ModelRoute,
    facts: &SessionFacts,
    forced_instructions_template: Option<&str>,
) -> Result<Upstream, AccountsError> {
    let mut stripped_reasoning = false;
    if facts.strip_reasoning {
        let before = request.input.len();
        request
            .input
            .retain(|item| !matches!(item, responses::InputItem::Reasoning(_)));
        stripped_reasoning = request.input.len() < before;
    }
    let reasoning_items = request
        .input
        .iter()
        .filter(|item| matches!(item, responses::InputItem::Reasoning(_)))
        .count();
    let target = Target::for_account(account, &route.upstream);
    request.stream = Some(facts.client_stream || target.is_codex());
    if facts.continuation {
        request.store = Some(true);
    }
    let mut continued = false;
    if facts.continuation
        && let Some(prev) = &facts.previous_response_id
    {
        request.previous_response_id = Some(prev.clone());
        ferry_session::trim_to_latest_turn(&mut request.input);
        continued = true;
    }
    // A continuation's upstream conversation already holds the guard (its first turn was
    // sent in full): adding it again would repeat it in every delta.
    if !continued && facts.todo_guard {
        ferry_session::insert_todo_guard(&mut request.input);
    }
    if let Some(key) = &facts.prompt_cache_key
        && request
            .prompt_cache_key
            .as_deref()
            .is_none_or(|k| k.trim().is_empty())
    {
        request.prompt_cache_key = Some(key.clone());
    }
    let shaped = target.shape(
        &mut request,
        &TargetOptions {
            service_tier_policy: account.service_tier_policy,
            forced_instructions_template,
            original_model: &route.original,
            normalized_model: &route.requested,
            billing_model: &route.billing,
        },
    )?;
    Ok(Upstream {
        target,
        request,
        upstream_model: shaped.upstream_model,
        continued,
        stripped_reasoning,
        reasoning_items,
        header_cache_key: shaped.prompt_cache_key,
    })
}

/// A reasoning suffix on the model (`gpt-5.4-high`) becomes `output_config.effort` unless
/// the client set one (docs/models.md § Client model suffixes).
pub(crate) fn apply_suffix_effort(req: &mut anthropic::MessagesRequest, effort: &str) {
    let has_effort = req
        .output_config
        .as_ref()
        .is_some_and(|o| o.effort.is_some());
    if has_effort {
        return;
    }
    let Ok(effort) = serde_json::from_value::<anthropic::Effort>(Value::String(effort.to_owned()))
    else {
        return;
    };
    match &mut req.output_config {
        Some(o) => o.effort = Some(effort),
        None => {
            req.output_config =
                serde_json::from_value(serde_json::json!({ "effort": effort })).ok();
        }
    }
}
