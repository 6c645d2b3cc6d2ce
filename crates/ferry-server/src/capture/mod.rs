//! Captures (docs/captures.md): with `[capture] mode = "errors"` or `"all"`, each captured
//! request is written as one JSON file ([`CaptureFile`]) to `capture.dir`, secrets cut out
//! by value, off the request's path (a blocking task after the client's answer). The
//! directory is kept under `capture.max_bytes` by deleting the oldest files first.
//!
//! This module owns the format and the writer; what a request records, and the tee of the
//! upstream's bytes, is the pipeline's (`messages::capture`). With capture off nothing of
//! it runs: the pipeline holds no recorder and copies nothing.

mod format;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use http::HeaderMap;

pub use self::format::{
    CAPTURE_VERSION, CaptureFile, CapturedAttempt, CapturedFacts, CapturedRequest, CapturedResponse,
};
use crate::config::{CaptureConfig, CaptureMode};
use crate::error::StartError;
use crate::redact::Redactor;

/// Headers left out of a capture whatever their value: they carry credentials.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "cookie",
    "set-cookie",
    "chatgpt-account-id",
];

/// The capture files' suffix (a file being written ends in `.json.tmp`).
const SUFFIX: &str = ".json";

/// Writes captures for one config (held by the state; `None` there when capture is off).
#[derive(Debug)]
pub(crate) struct Capturer {
    config: CaptureConfig,
    /// One write and rotation at a time, so two rotations do not count each other's files.
    write_lock: Mutex<()>,
}

impl Capturer {
    /// The writer for `config`; `None` when capture is off.
    pub(crate) fn new(config: &CaptureConfig) -> Option<Self> {
        (config.mode != CaptureMode::Off).then(|| Self {
            config: config.clone(),
            write_lock: Mutex::new(()),
        })
    }

    /// The writer for `config`, its directory created now so that a directory ferry cannot
    /// write keeps it from starting (or a reload from taking effect); `None` when off.
    pub(crate) fn start(config: &CaptureConfig) -> Result<Option<Self>, StartError> {
        let Some(capturer) = Self::new(config) else {
            return Ok(None);
        };
        create_private_dir(&config.dir).map_err(|e| {
            StartError::Startup(format!(
                "cannot create capture.dir {}: {e}",
                config.dir.display()
            ))
        })?;
        Ok(Some(capturer))
    }

    pub(crate) fn mode(&self) -> CaptureMode {
        self.config.mode
    }

    /// The cap on each recorded body.
    pub(crate) fn max_body_bytes(&self) -> usize {
        self.config.max_body_bytes
    }

    /// Cuts every secret out of `file`, writes it (mode 0600, in a directory created with
    /// mode 0700), then deletes the oldest captures while the directory is over its budget.
    /// Blocking: run it on a blocking thread.
    pub(crate) fn write(
        &self,
        mut file: CaptureFile,
        redactor: &Redactor,
    ) -> std::io::Result<PathBuf> {
        file.map_texts(&|t| redactor.redact(t));
        let mut text = serde_json::to_vec_pretty(&file).map_err(std::io::Error::other)?;
        text.push(b'\n');
        let _guard = self
            .write_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let dir = &self.config.dir;
        create_private_dir(dir)?;
        let name = format!("{}-{}{SUFFIX}", file_stamp(), file.request_id);
        let path = dir.join(&name);
        let tmp = dir.join(format!("{name}.tmp"));
        {
            let mut f = private_file(&tmp)?;
            f.write_all(&text)?;
            f.sync_data()?;
        }
        std::fs::rename(&tmp, &path)?;
        rotate(dir, self.config.max_bytes, &name)?;
        Ok(path)
    }
}

/// Deletes the oldest capture files of `dir` (by name: they start with their time) while
/// the files add up to more than `max_bytes`; `newest` is always kept.
fn rotate(dir: &Path, max_bytes: u64, newest: &str) -> std::io::Result<()> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(SUFFIX) {
            continue;
        }
        let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
        files.push((name, len));
    }
    files.sort();
    let mut total: u64 = files.iter().map(|(_, len)| len).sum();
    for (name, len) in &files {
        if total <= max_bytes || name == newest {
            break;
        }
        match std::fs::remove_file(dir.join(name)) {
            Ok(()) => total -= len,
            // Another writer (an old config's, during a reload) took it already.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => total -= len,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

/// The headers as a capture records them: credential headers left out, values as text,
/// repeated headers joined with `, `.
pub(crate) fn headers_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let name = name.as_str();
        if SECRET_HEADERS.contains(&name) {
            continue;
        }
        let value = String::from_utf8_lossy(value.as_bytes());
        out.entry(name.to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    out
}

/// `bytes` as text, at most `cap` bytes of it (a character the cut splits is left out);
/// true when cut.
pub(crate) fn capped_text(bytes: &[u8], cap: usize) -> (String, bool) {
    let cut = bytes.len() > cap;
    (text_of(&bytes[..bytes.len().min(cap)]), cut)
}

/// `bytes` as text: invalid UTF-8 replaced, an incomplete character at the end (where a
/// cap cut it) left out.
pub(crate) fn text_of(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(e) if e.error_len().is_none() => {
            String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned()
        }
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Milliseconds since the Unix epoch, zero-padded so that file names sort by time.
fn file_stamp() -> String {
    format!("{:013}", unix_millis())
}

fn unix_millis() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// Now as RFC 3339 in UTC with milliseconds (`2026-12-03T13:40:00.123Z`).
pub(crate) fn rfc3339_now() -> String {
    let ms = unix_millis();
    let secs = (ms / 1000) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = crate::civil::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::civil::civil_from_days;

    #[test]
    fn dates_and_header_filtering() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_790), (2026, 12, 3));
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer x".parse().unwrap());
        h.insert("x-api-key", "k".parse().unwrap());
        h.insert("anthropic-version", "2023-06-01".parse().unwrap());
        let m = headers_map(&h);
        assert_eq!(m.len(), 1);
        assert_eq!(m["anthropic-version"], "2023-06-01");
        assert_eq!(capped_text(b"abcdef", 4), ("abcd".to_owned(), true));
        // "é" is two bytes: a cut after the first leaves it out.
        assert_eq!(capped_text("abé".as_bytes(), 3), ("ab".to_owned(), true));
    }

    #[test]
    fn rotation_deletes_the_oldest_and_keeps_the_newest() {
        let dir = std::env::temp_dir().join(format!("ferry-rotate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, len) in [("1-a.json", 40), ("2-b.json", 40), ("3-c.json", 40)] {
            std::fs::write(dir.join(name), vec![b'x'; len]).unwrap();
        }
        std::fs::write(dir.join("other.txt"), vec![b'x'; 400]).unwrap();
        rotate(&dir, 90, "3-c.json").unwrap();
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["2-b.json", "3-c.json", "other.txt"]);
        rotate(&dir, 10, "3-c.json").unwrap();
        assert!(dir.join("3-c.json").exists());
        assert!(!dir.join("2-b.json").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
