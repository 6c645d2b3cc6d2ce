//! Images and documents: forwarded inline or by URL, or replaced by a notice.

use serde_json::Value;

use super::Cx;
use crate::anthropic::{ContentBlock, DocumentBlock, DocumentSource, ImageBlock, ImageSource};
use crate::responses::InputContent;

/// Text that stands in for an image whose URL cannot be forwarded.
const IMAGE_OMITTED: &str = "[image omitted: its URL could not be forwarded to the model]";

/// Text that stands in for a document whose URL cannot be forwarded.
const DOCUMENT_OMITTED: &str = "[document omitted: its URL could not be forwarded to the model]";

impl Cx {
    pub(super) fn image(&mut self, path: &str, image: &ImageBlock, parts: &mut Vec<InputContent>) {
        self.cache_hint(path, image.cache_control.is_some());
        match &image.source {
            ImageSource::Base64 { media_type, data } => {
                if data.is_empty() {
                    self.drop(path, "empty_image", "image without data");
                    return;
                }
                let media_type = if media_type.is_empty() {
                    "image/png"
                } else {
                    media_type
                };
                parts.push(InputContent::InputImage {
                    image_url: Some(format!("data:{media_type};base64,{data}")),
                    file_id: None,
                    detail: None,
                });
            }
            ImageSource::Url { url } => {
                if is_forwardable_url(url) {
                    parts.push(InputContent::InputImage {
                        image_url: Some(url.clone()),
                        file_id: None,
                        detail: None,
                    });
                } else {
                    self.drop(
                        format!("{path}.source.url"),
                        "image_url",
                        "image URL is not an absolute http(s) URL",
                    );
                    parts.push(InputContent::input_text(IMAGE_OMITTED));
                }
            }
            ImageSource::Unknown(source) => {
                let t = source
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                self.drop(
                    format!("{path}.source"),
                    "image_source",
                    format!("image source {t:?} is not supported"),
                );
            }
        }
    }

    pub(super) fn document(
        &mut self,
        path: &str,
        doc: &DocumentBlock,
        parts: &mut Vec<InputContent>,
    ) {
        self.cache_hint(path, doc.cache_control.is_some());
        if doc.citations.is_some() {
            self.drop(
                format!("{path}.citations"),
                "citations",
                "citations are not supported",
            );
        }
        let mut header = Vec::new();
        let file_like = matches!(doc.source, DocumentSource::Base64 { .. });
        if !file_like && let Some(title) = doc.title.as_deref().filter(|t| !t.is_empty()) {
            header.push(format!("Document: {title}"));
        }
        if let Some(context) = doc.context.as_deref().filter(|c| !c.is_empty()) {
            header.push(format!("Context: {context}"));
        }
        if !header.is_empty() {
            parts.push(InputContent::input_text(header.join("\n")));
        }
        match &doc.source {
            DocumentSource::Base64 { media_type, data } => {
                if data.is_empty() {
                    self.drop(path, "empty_document", "document without data");
                    return;
                }
                let media_type = if media_type.is_empty() {
                    "application/pdf"
                } else {
                    media_type
                };
                parts.push(InputContent::InputFile {
                    filename: Some(filename_for(doc.title.as_deref(), media_type)),
                    file_data: Some(format!("data:{media_type};base64,{data}")),
                    file_url: None,
                    file_id: None,
                });
            }
            DocumentSource::Url { url } => {
                if is_forwardable_url(url) {
                    parts.push(InputContent::InputFile {
                        filename: None,
                        file_data: None,
                        file_url: Some(url.clone()),
                        file_id: None,
                    });
                } else {
                    self.drop(
                        format!("{path}.source.url"),
                        "document_url",
                        "document URL is not an absolute http(s) URL",
                    );
                    parts.push(InputContent::input_text(DOCUMENT_OMITTED));
                }
            }
            DocumentSource::Text { data, .. } => {
                if data.is_empty() {
                    self.drop(path, "empty_document", "document without text");
                } else {
                    parts.push(InputContent::input_text(data));
                }
            }
            DocumentSource::Content { content } => match content {
                Value::String(text) if !text.is_empty() => {
                    parts.push(InputContent::input_text(text))
                }
                Value::Array(_) => {
                    let blocks: Vec<ContentBlock> =
                        serde::Deserialize::deserialize(content).unwrap_or_default();
                    for (k, block) in blocks.iter().enumerate() {
                        let path = format!("{path}.source.content[{k}]");
                        match block {
                            ContentBlock::Text(t) if !t.text.is_empty() => {
                                parts.push(InputContent::input_text(&t.text));
                            }
                            ContentBlock::Text(_) => {
                                self.drop(path, "empty_text", "empty text is not sent")
                            }
                            ContentBlock::Image(image) => self.image(&path, image, parts),
                            _ => {
                                let t = block.type_name().to_owned();
                                self.drop(
                                    path,
                                    "unknown_block",
                                    format!("block type {t:?} is not supported in a document"),
                                );
                            }
                        }
                    }
                }
                _ => self.drop(path, "empty_document", "document without content"),
            },
            DocumentSource::Unknown(source) => {
                let t = source
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                self.drop(
                    format!("{path}.source"),
                    "document_source",
                    format!("document source {t:?} is not supported"),
                );
            }
        }
    }
}

/// An absolute http(s) URL with a host and no whitespace or control characters.
fn is_forwardable_url(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    !host.is_empty() && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// File extension for a document MIME type.
fn extension_for(media_type: &str) -> Option<&'static str> {
    let base = media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Some(match base.as_str() {
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        "text/markdown" => "md",
        "text/csv" => "csv",
        "text/html" => "html",
        "application/json" => "json",
        "application/xml" | "text/xml" => "xml",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation" => "pptx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        _ => return None,
    })
}

/// The file name sent for a base64 document: the title (or `document`), with the
/// extension of its MIME type added when missing, since the upstream infers the file type
/// from it.
fn filename_for(title: Option<&str>, media_type: &str) -> String {
    let base = match title.map(str::trim).filter(|t| !t.is_empty()) {
        Some(title) => clean_filename(title),
        None => "document".to_owned(),
    };
    match extension_for(media_type) {
        Some(ext) if !base.to_ascii_lowercase().ends_with(&format!(".{ext}")) => {
            format!("{base}.{ext}")
        }
        _ => base,
    }
}

/// A title usable as a file name: path separators and control characters replaced.
fn clean_filename(title: &str) -> String {
    title
        .trim()
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(is_forwardable_url("https://example.com/a.png"));
        assert!(is_forwardable_url("HTTP://example.com"));
        assert!(!is_forwardable_url("https:///a.png"));
        assert!(!is_forwardable_url("ftp://example.com/a.png"));
        assert!(!is_forwardable_url("https://example.com/a b.png"));
        assert!(!is_forwardable_url("data:image/png;base64,AAAA"));
    }

    #[test]
    fn filenames() {
        assert_eq!(filename_for(None, "application/pdf"), "document.pdf");
        assert_eq!(
            filename_for(Some("Report"), "application/pdf"),
            "Report.pdf"
        );
        assert_eq!(
            filename_for(Some("report.PDF"), "application/pdf"),
            "report.PDF"
        );
        assert_eq!(filename_for(Some("a/b"), "text/plain"), "a_b.txt");
        assert_eq!(filename_for(Some("x"), "application/octet-stream"), "x");
    }
}
