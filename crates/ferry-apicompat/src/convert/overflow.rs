//! Context-window overflow: recognising it in an upstream error, and the Anthropic API's own
//! wording for it.
//!
//! The Anthropic API rejects a prompt over the context window with status 400,
//! `invalid_request_error` and the message `prompt is too long: N tokens > M maximum`. Claude
//! Code matches that message (it looks for `prompt is too long` and reads the two numbers for
//! the size of the gap) to compact the conversation and retry instead of stopping, so an
//! upstream overflow, however the upstream words it, reaches the client in exactly that shape.

use super::codes::{CodeMeaning, code_meaning, codes_meaning};

/// Whether an upstream error (its `code` and message) says the prompt does not fit the
/// model's context window: an overflow code, or the phrasings OpenAI and relays use
/// ("maximum context length", "exceeds the context window", "input is too long", ...).
pub fn is_context_overflow(code: Option<&str>, message: &str) -> bool {
    if code.and_then(code_meaning) == Some(CodeMeaning::ContextOverflow) {
        return true;
    }
    let text = message.to_lowercase();
    let has = |needle: &str| text.contains(needle);
    codes_meaning(CodeMeaning::ContextOverflow).any(has)
        || has("maximum context length")
        || has("prompt is too long")
        || has("input is too long")
        || ((has("context window") || has("context length"))
            && (has("exceed") || has("too large") || has("too long")))
        || (has("token limit") && has("context") && has("exceeded"))
}

/// The Anthropic API's message for a prompt over the context window:
/// `prompt is too long: N tokens > M maximum`.
///
/// `N` and `M` come from the upstream message when it states them (OpenAI's
/// "maximum context length is M tokens. However, your messages resulted in N tokens"; the
/// larger number is the prompt); otherwise `M` is `window` (the model's context window from
/// the catalog) and `N` is `counted` (ferry's count of the request), at least `M + 1` so the
/// gap Claude Code reads is never zero or negative.
pub fn prompt_too_long_message(
    upstream_message: &str,
    counted: u64,
    window: Option<u64>,
) -> String {
    let numbers = token_figures(upstream_message);
    let (prompt, maximum) = match numbers.as_slice() {
        [] => {
            let maximum = window.unwrap_or(counted.saturating_sub(1)).max(1);
            (counted, maximum)
        }
        [one] => (counted, *one),
        many => {
            let largest = many.iter().copied().max().unwrap_or(0);
            let smallest = many.iter().copied().min().unwrap_or(0);
            (largest, smallest)
        }
    };
    let prompt = prompt.max(maximum.saturating_add(1));
    format!("prompt is too long: {prompt} tokens > {maximum} maximum")
}

/// [`prompt_too_long_message`] where the request cannot be counted: the full form when the
/// upstream message states the figures, else `prompt is too long: <the upstream message>`
/// (what Claude Code matches on is the prefix).
pub(crate) fn prompt_too_long_uncounted(upstream_message: &str) -> String {
    if token_figures(upstream_message).is_empty() {
        format!("prompt is too long: {}", upstream_message.trim())
    } else {
        prompt_too_long_message(upstream_message, 0, None)
    }
}

/// The integers of at least 1,000 in `message` (token figures; digits grouped with `,` or `_`
/// count as one number), at most four.
fn token_figures(message: &str) -> Vec<u64> {
    let mut out = Vec::new();
    let mut digits = String::new();
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if (c == ',' || c == '_')
            && !digits.is_empty()
            && chars.peek().is_some_and(char::is_ascii_digit)
        {
            continue;
        }
        push_figure(&mut out, &mut digits);
    }
    push_figure(&mut out, &mut digits);
    out.truncate(4);
    out
}

fn push_figure(out: &mut Vec<u64>, digits: &mut String) {
    if let Ok(n) = digits.parse::<u64>()
        && n >= 1000
    {
        out.push(n);
    }
    digits.clear();
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn recognises_overflow_codes_and_phrasings() {
        for (code, message) in [
            (Some("context_length_exceeded"), "anything"),
            (Some("CONTEXT_LENGTH_EXCEEDED"), ""),
            (
                None,
                "Your input exceeds the context window of this model. Please adjust your input and try again.",
            ),
            (
                None,
                "This model's maximum context length is 128000 tokens. However, your messages resulted in 130512 tokens.",
            ),
            (
                Some("invalid_request_error"),
                "context_length_exceeded: input too long",
            ),
            (None, "Input is too long for requested model."),
        ] {
            assert!(is_context_overflow(code, message), "{code:?} {message}");
        }
        for (code, message) in [
            (Some("server_error"), "An error occurred"),
            (
                Some("invalid_value"),
                "string too long. Expected a string with maximum length 10",
            ),
            (
                Some("rate_limit_exceeded"),
                "Rate limit reached for tokens per min",
            ),
        ] {
            assert!(!is_context_overflow(code, message), "{code:?} {message}");
        }
    }

    #[test]
    fn the_message_has_the_anthropic_shape_with_the_best_figures() {
        assert_eq!(
            prompt_too_long_message(
                "This model's maximum context length is 128,000 tokens. However, your messages resulted in 130512 tokens.",
                90_000,
                Some(400_000)
            ),
            "prompt is too long: 130512 tokens > 128000 maximum"
        );
        assert_eq!(
            prompt_too_long_message("maximum context length is 400000 tokens", 410_000, None),
            "prompt is too long: 410000 tokens > 400000 maximum"
        );
        // The count is below the stated maximum: the prompt is still reported over it.
        assert_eq!(
            prompt_too_long_message("maximum context length is 400000 tokens", 350_000, None),
            "prompt is too long: 400001 tokens > 400000 maximum"
        );
        assert_eq!(
            prompt_too_long_message(
                "Your input exceeds the context window of this model.",
                280_000,
                Some(272_000)
            ),
            "prompt is too long: 280000 tokens > 272000 maximum"
        );
        assert_eq!(
            prompt_too_long_message("too long", 5_000, None),
            "prompt is too long: 5000 tokens > 4999 maximum"
        );
    }
}
