//! Every Responses stream and body recorded by other projects
//! (`../shared/fixtures/upstream-recorded/`, read in place: third-party data never enters
//! the repository) and every one of the project's own `fixtures/upstream/*` files, converted
//! both ways a client can ask:
//!
//! - streamed: parser → `decode_event` → `StreamConverter`;
//! - JSON: the same events into the `Accumulator`, the terminal response supplemented and
//!   converted with `convert::response::convert` (a `*.response.json` body is converted
//!   directly).
//!
//! Each conversion must be well formed (the stream grammar below) and carry exactly the
//! text, thinking and tool arguments the upstream sent, computed here independently from
//! the raw event JSON. Both outcomes are snapshotted.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::expect_used,
    reason = "a fixture that does not convert must fail the test loudly"
)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ferry_apicompat::convert::Accumulator;
use ferry_apicompat::convert::{self, FailureKind, ToolNames, UpstreamFailure, stream};
use ferry_apicompat::responses;
use ferry_sse::{Frame, Parser};
use serde_json::Value;

use crate::suite::support::{UPSTREAM_MAX, decode_event, fixtures_root, payload_with_type};

const MODEL: &str = "claude-sonnet-4-5";
const MESSAGE_ID: &str = "msg_01recordedfixture";

/// `../shared/fixtures/upstream-recorded` from the project root.
fn recorded_dir() -> PathBuf {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/upstream-recorded");
    assert!(
        dir.join("sources.json").is_file(),
        "the recorded upstream fixtures are absent: expected them in {} (the shared fixtures \
         directory next to the repository; CI has it). These tests cannot run without them.",
        dir.display()
    );
    dir
}

/// One input file, as the upstream frames it.
enum Input {
    /// SSE frames (a `*.jsonl` file is one event per line, framed as `data:` lines).
    Frames(Vec<Frame>),
    /// A non-streamed response body.
    Body(Value),
}

fn load(path: &Path) -> Input {
    let name = path.file_name().unwrap().to_string_lossy();
    let text = std::fs::read_to_string(path).unwrap();
    if name.ends_with(".response.json") || name.ends_with(".json") {
        return Input::Body(serde_json::from_str(&text).expect("a response body is JSON"));
    }
    let bytes = if name.ends_with(".jsonl") {
        let mut sse = String::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            writeln!(sse, "data: {line}\n").unwrap();
        }
        sse.into_bytes()
    } else {
        text.into_bytes()
    };
    let mut parser = Parser::new(UPSTREAM_MAX);
    let mut frames = Vec::new();
    parser.feed(&bytes, &mut frames).unwrap();
    parser.finish(&mut frames).unwrap();
    Input::Frames(frames)
}

/// The raw JSON of each frame that is JSON (the independent view of the upstream).
fn raw_events(frames: &[Frame]) -> Vec<Value> {
    frames
        .iter()
        .filter_map(|f| serde_json::from_str::<Value>(&payload_with_type(f)).ok())
        .collect()
}

// ----- what the upstream sent, from the raw JSON ------------------------------------------

/// The content an upstream answer carries, in order.
#[derive(Debug, Default, Clone, PartialEq)]
struct Content {
    /// Message text and refusals, one entry per message item.
    text: Vec<String>,
    /// Reasoning text, one entry per reasoning item (its summary parts joined by a blank
    /// line).
    thinking: Vec<String>,
    /// Tool arguments by call id (parsed when they are JSON).
    tools: BTreeMap<String, Value>,
    /// Web searches (server tool uses).
    searches: usize,
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The content of a list of complete output items.
fn items_content(items: &[Value]) -> Content {
    let mut c = Content::default();
    for item in items {
        match str_of(item, "type") {
            "message" => {
                let mut text = String::new();
                for part in item["content"].as_array().into_iter().flatten() {
                    text.push_str(str_of(part, "text"));
                    text.push_str(str_of(part, "refusal"));
                }
                c.text.push(text);
            }
            "reasoning" => {
                let texts = |key: &str| -> Vec<String> {
                    item[key]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|p| str_of(p, "text").to_owned())
                        .filter(|t| !t.is_empty())
                        .collect()
                };
                let mut parts = texts("summary");
                if parts.is_empty() {
                    parts = texts("content");
                }
                c.thinking.push(parts.join("\n\n"));
            }
            "function_call" => {
                let mut a = match &item["arguments"] {
                    Value::String(s) => args(s),
                    // Some relays send the arguments as an object.
                    v @ Value::Object(_) => v.clone(),
                    _ => args(""),
                };
                // ferry's one repair: Claude Code's Read rejects an empty `pages`.
                if str_of(item, "name") == "Read" && a["pages"] == "" {
                    a.as_object_mut().map(|m| m.remove("pages"));
                }
                c.tools.insert(str_of(item, "call_id").to_owned(), a);
            }
            "custom_tool_call" => {
                c.tools.insert(
                    str_of(item, "call_id").to_owned(),
                    serde_json::json!({ "input": str_of(item, "input") }),
                );
            }
            // Browsing steps (`open_page`, `find_in_page`) are not searches.
            "web_search_call"
                if matches!(item["action"]["type"].as_str(), None | Some("search")) =>
            {
                c.searches += 1;
            }
            _ => {}
        }
    }
    c
}

fn args(s: &str) -> Value {
    match serde_json::from_str::<Value>(s) {
        Ok(v @ Value::Object(_)) => v,
        _ => Value::Object(serde_json::Map::new()),
    }
}

/// The three views of an answer a stream gives: the deltas, the `output_item.done` items,
/// the terminal response's items.
struct Views {
    deltas: Content,
    done: Content,
    terminal: Content,
}

fn views(events: &[Value]) -> Views {
    // Up to the first terminal event: some captures hold several responses in a row, and
    // the converters stop at the first.
    let end = events
        .iter()
        .position(|e| {
            matches!(
                str_of(e, "type"),
                "response.completed"
                    | "response.incomplete"
                    | "response.done"
                    | "response.failed"
                    | "error"
            )
        })
        .map_or(events.len(), |i| i + 1);
    let events = &events[..end];
    let terminal: Vec<Value> = events
        .iter()
        .rev()
        .find(|e| {
            matches!(
                str_of(e, "type"),
                "response.completed" | "response.incomplete" | "response.done"
            )
        })
        .and_then(|e| e["response"]["output"].as_array().cloned())
        .unwrap_or_default();
    let done: Vec<Value> = events
        .iter()
        .filter(|e| str_of(e, "type") == "response.output_item.done")
        .map(|e| e["item"].clone())
        .collect();
    Views {
        deltas: deltas_content(events),
        done: items_content(&done),
        terminal: items_content(&terminal),
    }
}

/// The first non-empty text of `order`, extended by any later one that continues it (a
/// view that was cut short loses nothing; views that disagree keep the first).
fn merge<'a>(order: impl IntoIterator<Item = &'a str> + Clone) -> String {
    let mut result = order
        .clone()
        .into_iter()
        .find(|t| !t.is_empty())
        .unwrap_or_default()
        .to_owned();
    for view in order {
        if view.len() > result.len() && view.starts_with(result.as_str()) {
            view.clone_into(&mut result);
        }
    }
    result
}

/// What the upstream sent, as the client must get it: `order` is which view comes first
/// (a stream shows what it streamed; a JSON answer is the terminal response), later views
/// fill in what it lacks.
fn expected(order: [&Content; 3]) -> Content {
    let mut tools = BTreeMap::new();
    for view in order {
        for (id, a) in &view.tools {
            let slot = tools.entry(id.clone()).or_insert(Value::Null);
            if slot.is_null() || slot.as_object().is_some_and(serde_json::Map::is_empty) {
                *slot = a.clone();
            }
        }
    }
    // Item by item, in order (the views number items alike: the n-th message is the n-th
    // message of every view).
    let per_item = |f: &dyn Fn(&Content) -> &Vec<String>| -> Vec<String> {
        let n = order.iter().map(|c| f(c).len()).max().unwrap_or(0);
        (0..n)
            .map(|i| merge(order.iter().map(|c| f(c).get(i).map_or("", String::as_str))))
            .collect()
    };
    Content {
        text: per_item(&|c| &c.text),
        thinking: per_item(&|c| &c.thinking),
        tools,
        searches: order.iter().map(|v| v.searches).max().unwrap_or(0),
    }
}

/// The content the delta events add up to, parts told apart by output index (or item id)
/// and part index.
fn deltas_content(events: &[Value]) -> Content {
    let mut c = Content::default();
    let mut texts: Vec<(String, String)> = Vec::new();
    let mut summary: Vec<(String, u64, String)> = Vec::new();
    for e in events {
        let item = e
            .get("output_index")
            .and_then(Value::as_u64)
            .map(|i| i.to_string())
            .unwrap_or_else(|| str_of(e, "item_id").to_owned());
        let delta = str_of(e, "delta");
        match str_of(e, "type") {
            "response.output_text.delta" | "response.refusal.delta" => {
                match texts.last_mut().filter(|(i, _)| *i == item) {
                    Some(t) => t.1.push_str(delta),
                    None => texts.push((item, delta.to_owned())),
                }
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                let part = e
                    .get("summary_index")
                    .or_else(|| e.get("content_index"))
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                match summary
                    .iter_mut()
                    .find(|(i, p, _)| *i == item && *p == part)
                {
                    Some(s) => s.2.push_str(delta),
                    None => summary.push((item, part, delta.to_owned())),
                }
            }
            _ => {}
        }
    }
    c.text = texts.into_iter().map(|t| t.1).collect();
    let mut last_item: Option<String> = None;
    for (item, _, text) in summary.into_iter().filter(|s| !s.2.is_empty()) {
        match c
            .thinking
            .last_mut()
            .filter(|_| last_item.as_ref() == Some(&item))
        {
            Some(t) => {
                t.push_str("\n\n");
                t.push_str(&text);
            }
            None => c.thinking.push(text),
        }
        last_item = Some(item);
    }
    c
}

// ----- what the client got ------------------------------------------------------------------

/// The content a client got, ferry's own notices apart.
#[derive(Debug, Default)]
struct Got {
    content: Content,
    /// `[ferry]` notices (text blocks that name what ferry could not express).
    notices: Vec<String>,
    stop_reason: Option<String>,
    error: Option<Value>,
}

/// Whether a text block is a notice ferry wrote (see `docs/conversion.md`).
fn is_notice(text: &str) -> bool {
    text.starts_with("[ferry:")
}

fn block_content(got: &mut Got, block: &Value) {
    match str_of(block, "type") {
        "text" => {
            let text = str_of(block, "text");
            if is_notice(text) {
                got.notices.push(text.to_owned());
            } else {
                got.content.text.push(text.to_owned());
            }
        }
        "thinking" => got
            .content
            .thinking
            .push(str_of(block, "thinking").to_owned()),
        "tool_use" => {
            got.content
                .tools
                .insert(str_of(block, "id").to_owned(), block["input"].clone());
        }
        "server_tool_use" => got.content.searches += 1,
        _ => {}
    }
}

/// Checks the stream grammar and folds the stream into the content a client SDK builds:
///
/// `message_start`, then blocks with indexes 0, 1, 2… each `content_block_start`, deltas of
/// its own type, `content_block_stop` (one open at a time), then one `message_delta` and
/// `message_stop`; or a lone `error`, or an `error` after `message_start` and closed blocks
/// (a failure after the stream began).
fn fold_stream(events: &[Value]) -> Result<Got, String> {
    let mut got = Got::default();
    let mut it = events
        .iter()
        .filter(|e| str_of(e, "type") != "ping")
        .peekable();
    let first = it.next().ok_or("empty stream")?;
    match str_of(first, "type") {
        "error" => {
            got.error = Some(first["error"].clone());
            return match it.next() {
                None => Ok(got),
                Some(e) => Err(format!("event after error: {e}")),
            };
        }
        "message_start" => {
            let id = str_of(&first["message"], "id");
            if !id.starts_with("msg_") {
                return Err(format!("message id {id:?} is not a msg_ id"));
            }
        }
        other => return Err(format!("first event is {other}")),
    }
    let mut next_index = 0u64;
    let mut open: Option<(u64, Value)> = None;
    let mut partial = String::new();
    let mut delta_seen = false;
    for e in it.by_ref() {
        let kind = str_of(e, "type");
        match kind {
            "content_block_start" => {
                if open.is_some() {
                    return Err(format!("block started while one is open: {e}"));
                }
                let index = e["index"].as_u64().ok_or("block without index")?;
                if index != next_index {
                    return Err(format!("block index {index}, expected {next_index}"));
                }
                next_index += 1;
                let block = e["content_block"].clone();
                let t = str_of(&block, "type");
                if t == "tool_use" && str_of(&block, "name").is_empty() {
                    return Err("tool_use block without a name".to_owned());
                }
                partial.clear();
                open = Some((index, block));
            }
            "content_block_delta" => {
                let (index, block) = open.as_mut().ok_or("delta outside a block")?;
                if e["index"].as_u64() != Some(*index) {
                    return Err(format!("delta for index {}, open is {index}", e["index"]));
                }
                let d = &e["delta"];
                let bt = str_of(block, "type").to_owned();
                match (bt.as_str(), str_of(d, "type")) {
                    ("text", "text_delta") => {
                        let t = format!("{}{}", str_of(block, "text"), str_of(d, "text"));
                        block["text"] = Value::String(t);
                    }
                    ("thinking", "thinking_delta") => {
                        let t = format!("{}{}", str_of(block, "thinking"), str_of(d, "thinking"));
                        block["thinking"] = Value::String(t);
                    }
                    ("thinking", "signature_delta") => {
                        block["signature"] = d["signature"].clone();
                    }
                    ("tool_use" | "server_tool_use", "input_json_delta") => {
                        partial.push_str(str_of(d, "partial_json"));
                    }
                    (b, dt) => return Err(format!("{dt} in a {b} block")),
                }
            }
            "content_block_stop" => {
                let (index, mut block) = open.take().ok_or("stop outside a block")?;
                if e["index"].as_u64() != Some(index) {
                    return Err(format!("stop for index {}, open is {index}", e["index"]));
                }
                if matches!(str_of(&block, "type"), "tool_use" | "server_tool_use")
                    && !partial.is_empty()
                {
                    block["input"] = serde_json::from_str(&partial)
                        .map_err(|err| format!("tool input {partial:?} is not JSON: {err}"))?;
                }
                block_content(&mut got, &block);
            }
            "message_delta" => {
                if open.is_some() || delta_seen {
                    return Err("message_delta with a block open or twice".to_owned());
                }
                delta_seen = true;
                got.stop_reason = e["delta"]["stop_reason"].as_str().map(str::to_owned);
            }
            "message_stop" => {
                if !delta_seen {
                    return Err("message_stop without message_delta".to_owned());
                }
                break;
            }
            "error" => {
                if delta_seen {
                    return Err("error after message_delta".to_owned());
                }
                got.error = Some(e["error"].clone());
                break;
            }
            other => return Err(format!("unexpected event {other}")),
        }
    }
    if let Some(e) = it.next() {
        return Err(format!("event after the end: {e}"));
    }
    if got.error.is_none() && got.stop_reason.is_none() {
        return Err("stream ended without message_stop or error".to_owned());
    }
    Ok(got)
}

fn fold_message(msg: &Value) -> Got {
    let mut got = Got::default();
    for block in msg["content"].as_array().into_iter().flatten() {
        block_content(&mut got, block);
    }
    got.stop_reason = msg["stop_reason"].as_str().map(str::to_owned);
    got
}

// ----- conversions --------------------------------------------------------------------------

fn stream_options() -> stream::Options {
    stream::Options::new(MODEL, ToolNames::default()).with_message_id(MESSAGE_ID)
}

fn response_options() -> convert::response::Options {
    convert::response::Options::new(MODEL, ToolNames::default()).with_message_id(MESSAGE_ID)
}

/// The streamed conversion, as JSON values, and the converter's record of what it dropped.
fn convert_stream(frames: &[Frame]) -> (Vec<Value>, Vec<String>) {
    let mut conv = stream::StreamConverter::new(stream_options());
    let mut out = Vec::new();
    for frame in frames {
        match decode_event(frame) {
            None => {}
            Some(Ok(ev)) => conv.on_event(&ev, &mut out),
            Some(Err(e)) if e.is_terminal_event() => conv.fail(
                UpstreamFailure::new(FailureKind::InvalidStream, None, &e.to_string()),
                &mut out,
            ),
            Some(Err(_)) => {}
        }
        if conv.is_finished() {
            break;
        }
    }
    conv.finish(&mut out);
    let dropped = conv.dropped().iter().map(|d| d.kind.to_owned()).collect();
    (
        out.iter()
            .map(|e| serde_json::to_value(e).unwrap())
            .collect(),
        dropped,
    )
}

/// The JSON answer, as the server builds it for a non-streaming client.
fn convert_json(input: &Input) -> Result<(Value, Vec<String>), Value> {
    let resp = match input {
        Input::Body(body) => serde_json::from_value::<responses::Response>(body.clone())
            .expect("a recorded body parses as a response"),
        Input::Frames(frames) => {
            let mut acc = Accumulator::new();
            let mut terminal = None;
            for frame in frames {
                match decode_event(frame) {
                    Some(Ok(ev)) => {
                        acc.on_event(&ev);
                        if ev.is_terminal() {
                            terminal = Some(ev);
                            break;
                        }
                    }
                    Some(Err(e)) if e.is_terminal_event() => {
                        return Err(serde_json::json!({"invalid_terminal": e.to_string()}));
                    }
                    _ => {}
                }
            }
            match terminal {
                None => return Err(serde_json::json!("no terminal event")),
                Some(responses::StreamEvent::Error(e)) => {
                    let f = UpstreamFailure::from_error(FailureKind::ErrorEvent, &e.body());
                    return Err(serde_json::to_value(f.to_anthropic()).unwrap());
                }
                Some(ev) => acc.supplement(ev.into_response().expect("terminal response")),
            }
        }
    };
    match convert::response::convert(&resp, &response_options()) {
        Ok(c) => {
            let dropped = c.dropped.iter().map(|d| d.kind.to_owned()).collect();
            Ok((serde_json::to_value(&c.value).unwrap(), dropped))
        }
        Err(f) => Err(serde_json::to_value(f.to_anthropic()).unwrap()),
    }
}

fn render(events: &[Value]) -> String {
    let mut s = String::new();
    for e in events {
        writeln!(s, "{e}").unwrap();
    }
    s
}

/// Compares what the client got with what the upstream sent. `Ok` with a note when the
/// answer is an error.
fn compare(name: &str, how: &str, got: &Got, want: &Content) {
    if got.error.is_some() {
        return;
    }
    let g = &got.content;
    // Blocks and items need not be one to one (a text may be split around another block):
    // the concatenations must be equal.
    pretty_assertions::assert_eq!(
        g.text.concat(),
        want.text.concat(),
        "{name} ({how}): text lost or doubled"
    );
    pretty_assertions::assert_eq!(
        g.thinking.concat(),
        want.thinking.concat(),
        "{name} ({how}): thinking lost or doubled"
    );
    for (id, args) in &want.tools {
        let found = g.tools.get(id).or_else(|| {
            // A call without a call id gets the item id or a positional id.
            (id.is_empty() && g.tools.len() == want.tools.len())
                .then(|| g.tools.values().next())
                .flatten()
        });
        pretty_assertions::assert_eq!(
            found,
            Some(args),
            "{name} ({how}): tool call {id} arguments"
        );
    }
    assert_eq!(
        g.tools.len(),
        want.tools.len(),
        "{name} ({how}): tool calls {:?} vs {:?}",
        g.tools.keys(),
        want.tools.keys()
    );
    assert_eq!(g.searches, want.searches, "{name} ({how}): web searches");
    let only_notices = g.text.concat().is_empty()
        && g.thinking.concat().is_empty()
        && g.tools.is_empty()
        && g.searches == 0;
    assert!(
        !only_notices || got.notices.is_empty(),
        "{name} ({how}): an answer of only unexpressible items must be an error"
    );
}

fn check_file(path: &Path) -> String {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let input = load(path);
    let mut report = String::new();
    if let Input::Frames(frames) = &input {
        let raw = raw_events(frames);
        let v = views(&raw);
        let want = expected([&v.deltas, &v.done, &v.terminal]);
        let want_json = expected([&v.terminal, &v.done, &v.deltas]);
        let (events, dropped) = convert_stream(frames);
        let got = fold_stream(&events).unwrap_or_else(|e| panic!("{name}: malformed stream: {e}"));
        compare(&name, "stream", &got, &want);
        assert_eq!(
            got.notices.len(),
            dropped.len(),
            "{name}: each dropped item has one notice: {:?} vs {dropped:?}",
            got.notices
        );
        writeln!(report, "## stream\n{}", render(&events)).unwrap();
        if !dropped.is_empty() {
            writeln!(report, "dropped: {dropped:?}\n").unwrap();
        }
        match convert_json(&input) {
            Ok((msg, dropped)) => {
                let got = fold_message(&msg);
                compare(&name, "json", &got, &want_json);
                let unexpressible = dropped
                    .iter()
                    .filter(|d| d.as_str() == "unexpressible_output_item")
                    .count();
                assert_eq!(got.notices.len(), unexpressible, "{name}: json notices");
                writeln!(report, "## json\n{msg:#}\ndropped: {dropped:?}").unwrap();
            }
            Err(e) => {
                assert!(
                    got.error.is_some(),
                    "{name}: the JSON answer failed but the stream did not: {e}"
                );
                writeln!(report, "## json error\n{e:#}").unwrap();
            }
        }
    } else if let Input::Body(body) = &input {
        let want = items_content(body["output"].as_array().map_or(&[][..], Vec::as_slice));
        match convert_json(&input) {
            Ok((msg, dropped)) => {
                let got = fold_message(&msg);
                compare(&name, "json", &got, &want);
                assert!(str_of(&msg, "id").starts_with("msg_"), "{name}: message id");
                writeln!(report, "## json\n{msg:#}\ndropped: {dropped:?}").unwrap();
            }
            Err(e) => writeln!(report, "## json error\n{e:#}").unwrap(),
        }
    }
    report
}

/// Checks every file matching `pattern` under `dir`, snapshots each report, and fails
/// listing every file that broke (not only the first).
fn check_all(dir: &Path, pattern: &str, suffix: &str) -> usize {
    let mut failures = Vec::new();
    let mut count = 0;
    insta::glob!(dir, pattern, |path| {
        if path.file_name().is_some_and(|n| n == "sources.json") {
            return;
        }
        count += 1;
        match std::panic::catch_unwind(|| check_file(path)) {
            Ok(report) => {
                insta::with_settings!({
                    omit_expression => true,
                    prepend_module_to_snapshot => false,
                }, {
                    insta::assert_snapshot!(suffix, report);
                });
            }
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                failures.push(format!("{}: {msg}", path.display()));
            }
        }
    });
    assert!(
        failures.is_empty(),
        "{} of {count} files failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    count
}

#[test]
fn every_recorded_upstream_converts_well_formed_and_lossless() {
    let dir = recorded_dir();
    let count = check_all(&dir, "*.{sse,jsonl,json}", "recorded");
    // 87 data files (the directory also holds README.md and sources.json).
    assert!(
        count >= 87,
        "only {count} recorded fixtures in {}",
        dir.display()
    );
}

#[test]
fn every_project_upstream_fixture_converts_well_formed_and_lossless() {
    check_all(&fixtures_root().join("upstream"), "*.{sse,json}", "project");
}
