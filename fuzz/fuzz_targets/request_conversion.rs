//! `anthropic::parse_request` then `convert::request::convert` on arbitrary bytes.
//!
//! Properties: neither panics nor overflows the stack (deeply nested JSON included); a
//! request that converts serialises to JSON that parses back; the tool-name mapping of the
//! request round-trips every declared name.
#![no_main]

use ferry_apicompat::{anthropic, convert};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = anthropic::parse_request(data) else {
        return;
    };
    for opts in [
        convert::request::Options::new(),
        convert::request::Options::new().with_model("gpt-5.1-codex"),
        convert::request::Options::new().with_model("gpt-4.1"),
    ] {
        if let Ok(converted) = convert::request::convert(&req, &opts) {
            let json =
                serde_json::to_vec(&converted.value).expect("a converted request serialises");
            let _: serde_json::Value =
                serde_json::from_slice(&json).expect("the serialised request is JSON");
        }
    }
    let names = convert::ToolNames::from_request(&req);
    for tool in req.tools.iter().flatten() {
        let upstream = names.to_upstream(&tool.name);
        assert_eq!(
            names.to_client(&upstream),
            tool.name,
            "tool name does not round-trip"
        );
    }
});
