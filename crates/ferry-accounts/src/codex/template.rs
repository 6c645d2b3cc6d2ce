//! The forced-instructions template (`gateway.forced_codex_instructions_template`): Go-style
//! `{{ .Field }}` substitutions and nothing else.

use crate::error::AccountsError;

/// The values a forced-instructions template can use.
#[derive(Clone, Copy, Debug, Default)]
pub struct TemplateFields<'a> {
    /// `{{ .ExistingInstructions }}`.
    pub existing_instructions: &'a str,
    /// `{{ .OriginalModel }}`.
    pub original_model: &'a str,
    /// `{{ .NormalizedModel }}`.
    pub normalized_model: &'a str,
    /// `{{ .BillingModel }}`.
    pub billing_model: &'a str,
    /// `{{ .UpstreamModel }}`.
    pub upstream_model: &'a str,
}

/// Renders a forced-instructions template: `{{ .Field }}` substitutions only (with Go-style
/// `{{-`/`-}}` whitespace trimming). An unknown field, any other action, or an unclosed `{{`
/// is an error, which aborts the request.
pub fn render_instructions_template(
    template: &str,
    fields: &TemplateFields<'_>,
) -> Result<String, AccountsError> {
    let mut out = String::with_capacity(template.len() + fields.existing_instructions.len());
    let mut rest = template;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let mut literal = &rest[..start];
        if trim_next {
            literal = literal.trim_start();
        }
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(AccountsError::Template {
                problem: "unclosed {{".into(),
            });
        };
        let mut action = &after[..end];
        if let Some(a) = action.strip_prefix('-') {
            literal = literal.trim_end();
            action = a;
        }
        trim_next = false;
        if let Some(a) = action.strip_suffix('-') {
            trim_next = true;
            action = a;
        }
        out.push_str(literal);
        let value = match action.trim() {
            ".ExistingInstructions" => fields.existing_instructions,
            ".OriginalModel" => fields.original_model,
            ".NormalizedModel" => fields.normalized_model,
            ".BillingModel" => fields.billing_model,
            ".UpstreamModel" => fields.upstream_model,
            other => {
                return Err(AccountsError::Template {
                    problem: format!("unsupported action {{{{ {other} }}}}"),
                });
            }
        };
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(if trim_next { rest.trim_start() } else { rest });
    Ok(out)
}
