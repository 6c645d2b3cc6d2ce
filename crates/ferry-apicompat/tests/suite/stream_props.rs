//! Property tests of the stream converter on variations of the fixture streams.
//!
//! A *legal reordering* keeps every event of one output item (same `output_index`) in its
//! order and keeps events without an item (`response.*` lifecycle and terminal events, bad
//! frames, `[DONE]`) in place, but interleaves the items between them at random, as a relay
//! merging parallel tool calls might. On top of that, events may be dropped or duplicated.
//! Whatever comes in, the converter never panics and its output satisfies the stream
//! invariant once finished; a pure reordering also keeps every tool input intact. (Tool
//! arguments stream live, so a lost or repeated argument delta cannot be repaired: for
//! drops and duplicates only the structure is checked.)
//!
//! `PROPTEST_CASES` raises the case count (default [`CASES`]).

#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions fail loudly too"
)]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use ferry_apicompat::responses::StreamEvent;
use proptest::prelude::*;
use serde_json::Value;

use super::upstream::{
    TEvent, Upstream, check_invariant, check_structure, fixtures, load_stream, reassemble, run,
    strict,
};

/// Cases per property in the default run; raise with `PROPTEST_CASES`.
const CASES: u32 = 256;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn corpus() -> &'static [(String, Vec<Upstream>)] {
    static CORPUS: OnceLock<Vec<(String, Vec<Upstream>)>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut all: Vec<(String, Vec<Upstream>)> = std::fs::read_dir(fixtures().join("upstream"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "sse"))
            .map(|p| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    load_stream(&p),
                )
            })
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    })
}

/// A small deterministic generator driven by the proptest seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The output item an event belongs to, if any.
fn item_key(frame: &Upstream) -> Option<u32> {
    let Upstream::Event(ev) = frame else {
        return None;
    };
    match ev {
        StreamEvent::OutputItemAdded(e) | StreamEvent::OutputItemDone(e) => e.output_index,
        StreamEvent::ContentPartAdded(p)
        | StreamEvent::ContentPartDone(p)
        | StreamEvent::ReasoningSummaryPartAdded(p)
        | StreamEvent::ReasoningSummaryPartDone(p) => p.output_index,
        StreamEvent::OutputTextDelta(d)
        | StreamEvent::RefusalDelta(d)
        | StreamEvent::FunctionCallArgumentsDelta(d)
        | StreamEvent::CustomToolCallInputDelta(d)
        | StreamEvent::ReasoningSummaryTextDelta(d)
        | StreamEvent::ReasoningTextDelta(d) => d.output_index,
        StreamEvent::OutputTextDone(t)
        | StreamEvent::ReasoningSummaryTextDone(t)
        | StreamEvent::ReasoningTextDone(t) => t.output_index,
        StreamEvent::RefusalDone(t) => t.output_index,
        StreamEvent::FunctionCallArgumentsDone(a) => a.output_index,
        StreamEvent::CustomToolCallInputDone(a) => a.output_index,
        StreamEvent::OutputTextAnnotationAdded(a) => a.output_index,
        StreamEvent::WebSearchCallInProgress(p)
        | StreamEvent::WebSearchCallSearching(p)
        | StreamEvent::WebSearchCallCompleted(p) => p.output_index,
        _ => None,
    }
}

/// A legal reordering of `frames` (see the module docs).
fn interleave(frames: &[Upstream], rng: &mut Rng) -> Vec<Upstream> {
    let mut out = Vec::with_capacity(frames.len());
    let mut segment: Vec<(u32, Vec<&Upstream>)> = Vec::new();
    let flush =
        |segment: &mut Vec<(u32, Vec<&Upstream>)>, out: &mut Vec<Upstream>, rng: &mut Rng| {
            for (_, queue) in segment.iter_mut() {
                queue.reverse();
            }
            while !segment.is_empty() {
                let pick = rng.below(segment.len());
                if let Some(frame) = segment[pick].1.pop() {
                    out.push(frame.clone());
                }
                if segment[pick].1.is_empty() {
                    segment.remove(pick);
                }
            }
        };
    for frame in frames {
        match item_key(frame) {
            Some(key) => match segment.iter_mut().find(|(k, _)| *k == key) {
                Some((_, queue)) => queue.push(frame),
                None => segment.push((key, vec![frame])),
            },
            None => {
                flush(&mut segment, &mut out, rng);
                out.push(frame.clone());
            }
        }
    }
    flush(&mut segment, &mut out, rng);
    out
}

/// Drops and duplicates events at random (about one in `1 / rate` each).
fn mutate(frames: Vec<Upstream>, rng: &mut Rng, rate: usize) -> Vec<Upstream> {
    let mut out = Vec::with_capacity(frames.len() + frames.len() / rate);
    for frame in frames {
        match rng.below(rate) {
            0 => {}
            1 => {
                out.push(frame.clone());
                out.push(frame);
            }
            _ => out.push(frame),
        }
    }
    out
}

/// Tool inputs by tool id.
fn tool_inputs(events: &[TEvent]) -> BTreeMap<String, Value> {
    let Some(message) = reassemble(events) else {
        return BTreeMap::new();
    };
    message["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "tool_use")
        .map(|b| (b["id"].as_str().unwrap().to_owned(), b["input"].clone()))
        .collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn legal_reorderings_keep_the_invariant_and_every_tool_input(pick in any::<prop::sample::Index>(), seed in 1u64..) {
        let (name, frames) = &corpus()[pick.index(corpus().len())];
        let mut rng = Rng(seed);
        let shuffled = interleave(frames, &mut rng);
        let (out, _) = run(&shuffled);
        let events = strict(&out);
        if let Err(e) = check_invariant(&events) {
            return Err(TestCaseError::fail(format!("{name} seed {seed}: {e}")));
        }
        let (baseline, _) = run(frames);
        let baseline = strict(&baseline);
        prop_assert_eq!(
            matches!(events.last(), Some(TEvent::MessageStop)),
            matches!(baseline.last(), Some(TEvent::MessageStop)),
            "{} seed {}", name, seed
        );
        prop_assert_eq!(tool_inputs(&events), tool_inputs(&baseline), "{} seed {}", name, seed);
    }

    #[test]
    fn subsets_and_duplicates_never_break_the_stream(pick in any::<prop::sample::Index>(), seed in 1u64.., rate in 3usize..12) {
        let (name, frames) = &corpus()[pick.index(corpus().len())];
        let mut rng = Rng(seed);
        let varied = mutate(interleave(frames, &mut rng), &mut rng, rate);
        let (out, conv) = run(&varied);
        prop_assert!(conv.is_finished());
        let events = strict(&out);
        if let Err(e) = check_structure(&events, false) {
            return Err(TestCaseError::fail(format!("{name} seed {seed} rate {rate}: {e}")));
        }
    }
}

/// The reorderings really reorder: the 20-tool fixture's argument deltas arrive in a
/// different order for most seeds, and every variant still yields the same 20 inputs.
#[test]
fn interleave_shuffles_items_but_keeps_each_item_in_order() {
    let (_, frames) = corpus()
        .iter()
        .find(|(n, _)| n == "s14_parallel_tools_20.sse")
        .unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let shuffled = interleave(frames, &mut rng);
    assert_eq!(shuffled.len(), frames.len());
    let keys = |fs: &[Upstream]| fs.iter().map(item_key).collect::<Vec<_>>();
    assert_ne!(keys(&shuffled), keys(frames));
    let per_item = |fs: &[Upstream], key: u32| {
        fs.iter()
            .filter(|f| item_key(f) == Some(key))
            .map(|f| format!("{f:?}"))
            .collect::<Vec<_>>()
    };
    for key in 0..=20 {
        assert_eq!(per_item(&shuffled, key), per_item(frames, key));
    }
    let (out, _) = run(&shuffled);
    assert_eq!(tool_inputs(&strict(&out)).len(), 20);
}
