//! Stop sequences, emulated: the Responses API has none, so ferry cuts the answer's text at
//! the first one, as the Anthropic API would have stopped there.

/// The earliest stop sequence in `text`: its byte offset and the sequence (at the same
/// offset, the longest).
pub(crate) fn find<'a>(text: &str, stops: &'a [String]) -> Option<(usize, &'a str)> {
    stops
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()).map(|at| (at, s.as_str())))
        .min_by(|a, b| a.0.cmp(&b.0).then(b.1.len().cmp(&a.1.len())))
}

/// How many bytes at the end of `text` may be the start of a stop sequence (and so must
/// wait for the next text): the longest suffix that is a proper prefix of one.
pub(crate) fn possible_start(text: &str, stops: &[String]) -> usize {
    let longest = stops.iter().map(String::len).max().unwrap_or(0);
    let max = longest.saturating_sub(1).min(text.len());
    (1..=max)
        .rev()
        .find(|&k| {
            let at = text.len() - k;
            text.is_char_boundary(at) && stops.iter().any(|s| s.starts_with(&text[at..]))
        })
        .unwrap_or(0)
}

/// Cuts a message's content at the first stop sequence of its text blocks: the block is
/// truncated there and every later block removed. Returns the sequence found.
pub(crate) fn cut(
    content: &mut Vec<crate::anthropic::ContentBlock>,
    stops: &[String],
) -> Option<String> {
    if stops.is_empty() {
        return None;
    }
    for (i, block) in content.iter_mut().enumerate() {
        if let crate::anthropic::ContentBlock::Text(t) = block
            && let Some((at, seq)) = find(&t.text, stops)
        {
            let seq = seq.to_owned();
            t.text.truncate(at);
            content.truncate(i + 1);
            return Some(seq);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stops(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_earliest_and_then_longest_sequence_wins() {
        let s = stops(&["END", "EN", "b"]);
        assert_eq!(find("a b END", &s), Some((2, "b")));
        assert_eq!(find("xx ENDING", &s), Some((3, "END")));
        assert_eq!(find("nothing", &s), None);
    }

    #[test]
    fn a_partial_sequence_at_the_end_is_held() {
        let s = stops(&["</answer>"]);
        assert_eq!(possible_start("text </ans", &s), 5);
        assert_eq!(possible_start("text <", &s), 1);
        assert_eq!(possible_start("text", &s), 0);
        // A character is held whole.
        assert_eq!(possible_start("aé", &stops(&["éx"])), 2);
    }
}
