//! A frame's payload with its event name as `type` (`responses::payload_with_type`).

use ferry_sse::Frame;
use pretty_assertions::assert_eq;

use super::support::payload_with_type;

fn frame(event: Option<&str>, data: &str) -> Frame {
    Frame::new(event, data)
}

/// Case 6: the `event:` line's name is injected as `type` only into a payload that has none
/// (docs/conversion.md § Wire types).
#[test]
fn payload_with_type_injects_the_event_name_only_when_needed() {
    let table: &[(Option<&str>, &str, &str)] = &[
        // Injected when the object has no type.
        (
            Some("response.completed"),
            "{\"response\":{\"id\":\"r\"}}",
            "{\"type\":\"response.completed\",\"response\":{\"id\":\"r\"}}",
        ),
        (Some("ev"), " {} ", " {\"type\":\"ev\"} "),
        (Some("ev"), "{ \"a\": 1 }", "{\"type\":\"ev\", \"a\": 1 }"),
        (Some("a\"b"), "{}", "{\"type\":\"a\\\"b\"}"),
        // A nested `type` does not count.
        (
            Some("ev"),
            "{\"item\":{\"type\":\"message\"}}",
            "{\"type\":\"ev\",\"item\":{\"type\":\"message\"}}",
        ),
        // A blank or null type is replaced (one key, not a duplicate).
        (
            Some("ev"),
            "{\"type\":\"\",\"a\":1}",
            "{\"a\":1,\"type\":\"ev\"}",
        ),
        (Some("ev"), "{\"type\":\"  \"}", "{\"type\":\"ev\"}"),
        (Some("ev"), "{\"type\":null}", "{\"type\":\"ev\"}"),
        // Unchanged: a type of its own, whatever its value.
        (Some("ev"), "{\"type\":\"own\"}", "{\"type\":\"own\"}"),
        (
            Some("ev"),
            "{\"a\":1,\"type\":\"own\"}",
            "{\"a\":1,\"type\":\"own\"}",
        ),
        (Some("ev"), "{\"type\":\" own\"}", "{\"type\":\" own\"}"),
        // The last key, as key-sorting serializers write it, read without a parse.
        (
            Some("ev"),
            "{ \"a\" : {\"b\":1} , \"type\" : \"own\" }\n",
            "{ \"a\" : {\"b\":1} , \"type\" : \"own\" }\n",
        ),
        (
            Some("ev"),
            "{\"a\":{\"b\":1},\"type\":\" \"}",
            "{\"a\":{\"b\":1},\"type\":\"ev\"}",
        ),
        // A string that only looks like a last `type` key.
        (
            Some("ev"),
            "{\"a\":\"x\\\",\\\"type\\\":\\\"y\"}",
            "{\"type\":\"ev\",\"a\":\"x\\\",\\\"type\\\":\\\"y\"}",
        ),
        (
            Some("ev"),
            "{\"type\":\"\\u0061\"}",
            "{\"type\":\"\\u0061\"}",
        ),
        (Some("ev"), "{\"type\":5}", "{\"type\":5}"),
        // Unchanged: no event name, blank payload, [DONE], not an object, invalid JSON.
        (None, "{\"a\":1}", "{\"a\":1}"),
        (Some("  "), "{\"a\":1}", "{\"a\":1}"),
        (Some("ev"), "  ", "  "),
        (Some("ev"), "[DONE]", "[DONE]"),
        (Some("ev"), "[{}]", "[{}]"),
        (Some("ev"), "\"text\"", "\"text\""),
        (Some("ev"), "{\"a\":", "{\"a\":"),
        (Some("ev"), "{} trailing", "{} trailing"),
    ];
    for (event, data, expected) in table {
        let frame = frame(*event, data);
        assert_eq!(payload_with_type(&frame), *expected, "{event:?} {data:?}");
    }
}

#[test]
fn payload_with_type_borrows_when_nothing_changes() {
    for data in ["{\"type\":\"own\"}", "{\"a\":[1],\"type\":\"own\"}"] {
        let f = frame(Some("ev"), data);
        assert!(
            matches!(payload_with_type(&f), std::borrow::Cow::Borrowed(_)),
            "{data}"
        );
    }
}
