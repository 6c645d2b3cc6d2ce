//! Parsing and checking inbound Messages request bodies: errors name the JSON path, and
//! malformed blocks of known types are rejected rather than dropped.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::content::{
    ContentBlock, DocumentBlock, DocumentSource, ImageBlock, ImageSource, RedactedThinkingBlock,
    ServerToolUseBlock, TextBlock, ThinkingBlock, ToolResultBlock, ToolResultContent, ToolUseBlock,
    WebSearchToolResultBlock,
};
use super::{MessageContent, MessagesRequest, System, Thinking, ToolChoice};
use crate::ConvertError;

/// Parses and checks a Messages request body.
///
/// Errors name the JSON path of the problem (`messages[3].content[0].source.data: invalid
/// type: integer `5`, expected a string`). Besides shape errors, it rejects a block, a
/// source, a `thinking` or a `tool_choice` whose `type` is known but whose fields are
/// malformed, and blocks that are not objects with a string `type`; unknown types are
/// kept (the converter lists them as dropped).
pub fn parse_request(body: &[u8]) -> Result<MessagesRequest, ConvertError> {
    // Fast path: a valid body parses without field-path tracking (which costs about a third
    // of the parse on a large Claude Code body); only a body that fails is parsed again,
    // with tracking, for an error that names the path.
    if let Ok(req) = serde_json::from_slice::<MessagesRequest>(body) {
        validate_request(&req)?;
        return Ok(req);
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    let req: MessagesRequest = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = display_path(&e.path().to_string());
        let path = if path.is_empty() {
            "body".to_owned()
        } else {
            path
        };
        ConvertError::InvalidShape {
            path,
            message: e.into_inner().to_string(),
        }
    })?;
    // Bytes after the request object (`{…} garbage`) make the body invalid JSON.
    de.end().map_err(|e| ConvertError::InvalidShape {
        path: "body".to_owned(),
        message: e.to_string(),
    })?;
    validate_request(&req)?;
    Ok(req)
}

/// Checks what serde's fallbacks let through; see [`parse_request`].
pub(crate) fn validate_request(req: &MessagesRequest) -> Result<(), ConvertError> {
    // Negative values and non-integers already fail to parse as `u64`.
    if req.max_tokens == Some(0) {
        return Err(ConvertError::InvalidValue {
            path: "max_tokens".to_owned(),
            message: "must be greater than or equal to 1".to_owned(),
        });
    }
    for (i, tool) in req.tools.iter().flatten().enumerate() {
        if tool.is_custom()
            && let Some(schema) = &tool.input_schema
            && !schema.is_object()
        {
            return Err(ConvertError::InvalidValue {
                path: format!("tools[{i}].input_schema"),
                message: format!("expected a JSON Schema object, got {}", json_type(schema)),
            });
        }
    }
    if let Some(System::Blocks(blocks)) = &req.system {
        validate_blocks("system", blocks)?;
    }
    for (i, m) in req.messages.iter().enumerate() {
        if let MessageContent::Blocks(blocks) = &m.content {
            validate_blocks(&format!("messages[{i}].content"), blocks)?;
        }
    }
    if let Some(Thinking::Unknown(v)) = &req.thinking {
        let fields = match object_type(v) {
            Some("enabled") => reparse::<EnabledFields>(v),
            Some("adaptive" | "disabled") => reparse::<Map<String, Value>>(v),
            Some(_) => None,
            None => Some((
                String::new(),
                "expected an object with a string `type`".to_owned(),
            )),
        };
        if let Some((inner, message)) = fields {
            return Err(ConvertError::InvalidValue {
                path: join("thinking", &inner),
                message,
            });
        }
    }
    if let Some(ToolChoice::Unknown(v)) = &req.tool_choice {
        let fields = match object_type(v) {
            Some("auto" | "any" | "none") => reparse::<ParallelFields>(v),
            Some("tool") => reparse::<NamedFields>(v),
            Some(_) => None,
            None => Some((
                String::new(),
                "expected an object with a string `type`".to_owned(),
            )),
        };
        if let Some((inner, message)) = fields {
            return Err(ConvertError::InvalidValue {
                path: join("tool_choice", &inner),
                message,
            });
        }
    }
    Ok(())
}

/// Checks a list of blocks at `path` (e.g. `messages[2].content`).
fn validate_blocks(path: &str, blocks: &[ContentBlock]) -> Result<(), ConvertError> {
    for (i, block) in blocks.iter().enumerate() {
        validate_block(&format!("{path}[{i}]"), block)?;
    }
    Ok(())
}

fn validate_block(path: &str, block: &ContentBlock) -> Result<(), ConvertError> {
    match block {
        ContentBlock::Unknown(v) => {
            let Some(block_type) = object_type(v) else {
                return Err(ConvertError::InvalidShape {
                    path: path.to_owned(),
                    message: "expected a content block: an object with a string `type`".to_owned(),
                });
            };
            if let Some(known) = block.unknown_known_type() {
                let problem = match known {
                    "text" => reparse::<TextBlock>(v),
                    "image" => reparse::<ImageBlock>(v),
                    "document" => reparse::<DocumentBlock>(v),
                    "tool_use" => reparse::<ToolUseBlock>(v),
                    "tool_result" => reparse::<ToolResultBlock>(v),
                    "thinking" => reparse::<ThinkingBlock>(v),
                    "redacted_thinking" => reparse::<RedactedThinkingBlock>(v),
                    "server_tool_use" => reparse::<ServerToolUseBlock>(v),
                    "web_search_tool_result" => reparse::<WebSearchToolResultBlock>(v),
                    _ => None,
                };
                let (inner, message) =
                    problem.unwrap_or_else(|| (String::new(), "malformed block".to_owned()));
                return Err(ConvertError::InvalidBlock {
                    path: join(path, &inner),
                    block_type: block_type.to_owned(),
                    message,
                });
            }
            Ok(())
        }
        ContentBlock::Image(b) => match &b.source {
            ImageSource::Unknown(v) => validate_source(path, "image", v, &["base64", "url"]),
            _ => Ok(()),
        },
        ContentBlock::Document(b) => match &b.source {
            DocumentSource::Unknown(v) => {
                validate_source(path, "document", v, &["base64", "text", "url", "content"])
            }
            DocumentSource::Content { content } => {
                let inner = format!("{path}.source.content");
                match content {
                    Value::String(_) => Ok(()),
                    Value::Array(_) => {
                        let blocks: Vec<ContentBlock> =
                            Vec::deserialize(content).map_err(|e| ConvertError::InvalidBlock {
                                path: inner.clone(),
                                block_type: "document".to_owned(),
                                message: e.to_string(),
                            })?;
                        validate_blocks(&inner, &blocks)
                    }
                    _ => Err(ConvertError::InvalidBlock {
                        path: inner,
                        block_type: "document".to_owned(),
                        message: "expected a string or an array of content blocks".to_owned(),
                    }),
                }
            }
            _ => Ok(()),
        },
        ContentBlock::ToolUse(b) if !(b.input.is_object() || b.input.is_null()) => {
            Err(ConvertError::InvalidBlock {
                path: format!("{path}.input"),
                block_type: "tool_use".to_owned(),
                message: format!("expected an object, got {}", json_type(&b.input)),
            })
        }
        ContentBlock::ToolResult(b) => match &b.content {
            Some(ToolResultContent::Blocks(blocks)) => {
                validate_blocks(&format!("{path}.content"), blocks)
            }
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

fn validate_source(
    path: &str,
    block_type: &str,
    v: &Value,
    known: &[&str],
) -> Result<(), ConvertError> {
    let problem = match object_type(v) {
        None => Some((
            String::new(),
            "expected an object with a string `type`".to_owned(),
        )),
        Some(t) if known.contains(&t) => Some(
            match t {
                "base64" | "text" => reparse::<DataFields>(v),
                "url" => reparse::<UrlFields>(v),
                _ => reparse::<ContentFields>(v),
            }
            .unwrap_or_else(|| (String::new(), "malformed source".to_owned())),
        ),
        Some(_) => None,
    };
    match problem {
        Some((inner, message)) => Err(ConvertError::InvalidBlock {
            path: join(&format!("{path}.source"), &inner),
            block_type: block_type.to_owned(),
            message,
        }),
        None => Ok(()),
    }
}

#[derive(Deserialize)]
struct EnabledFields {
    #[serde(rename = "budget_tokens")]
    _budget_tokens: u64,
}

#[derive(Deserialize)]
struct ParallelFields {
    #[serde(default, rename = "disable_parallel_tool_use")]
    _disable_parallel_tool_use: Option<bool>,
}

#[derive(Deserialize)]
struct NamedFields {
    #[serde(rename = "name")]
    _name: String,
    #[serde(default, rename = "disable_parallel_tool_use")]
    _disable_parallel_tool_use: Option<bool>,
}

#[derive(Deserialize)]
struct DataFields {
    #[serde(default, rename = "media_type")]
    _media_type: Option<String>,
    #[serde(rename = "data")]
    _data: String,
}

#[derive(Deserialize)]
struct UrlFields {
    #[serde(rename = "url")]
    _url: String,
}

#[derive(Deserialize)]
struct ContentFields {
    #[serde(rename = "content")]
    _content: Value,
}

/// The JSON type of a value, for error messages.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The `type` of a JSON object, if it is an object with a string `type`.
fn object_type(v: &Value) -> Option<&str> {
    v.as_object()?.get("type")?.as_str()
}

/// Parses `v` as `T` and returns the inner path and message of the failure, if any.
fn reparse<T: DeserializeOwned>(v: &Value) -> Option<(String, String)> {
    match serde_path_to_error::deserialize::<_, T>(v) {
        Ok(_) => None,
        Err(e) => {
            let inner = e.path().to_string();
            Some((display_path(&inner), e.into_inner().to_string()))
        }
    }
}

/// serde_path_to_error prints the root as `.`; we print it as the empty string.
fn display_path(p: &str) -> String {
    if p == "." {
        String::new()
    } else {
        p.to_owned()
    }
}

/// Joins an outer and an inner JSON path.
fn join(outer: &str, inner: &str) -> String {
    if inner.is_empty() {
        outer.to_owned()
    } else if outer.is_empty() {
        inner.to_owned()
    } else if inner.starts_with('[') {
        format!("{outer}{inner}")
    } else {
        format!("{outer}.{inner}")
    }
}
