//! The exact SSE ferry emits for representative upstream streams (insta snapshots).

use ferry_testkit::upstream::{mount_sse_once, start};
use ferry_testkit::*;
use serde_json::json;

use super::common::*;

/// Snapshots live in `tests/snapshots/` (style guide §7).
fn snapshot(name: &str, text: &str) {
    insta::with_settings!({ snapshot_path => "../snapshots", omit_expression => true, prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!(name, text);
    });
}

async fn emitted(evs: Vec<serde_json::Value>, req: serde_json::Value) -> String {
    let upstream = start().await;
    let _m = mount_sse_once(&upstream, sse(evs)).await;
    let server = TestServer::start(config(&upstream.uri())).await;
    server.messages(&req).await.text().await.unwrap()
}

#[tokio::test]
async fn text_stream() {
    let out = emitted(
        text_events(
            "resp_snap",
            &["Hello", ", world"],
            Usage::new(12, 3).cached(8),
        ),
        request("hi", true),
    )
    .await;
    snapshot("text_stream", &out);
}

#[tokio::test]
async fn reasoning_then_tool_call_stream() {
    let mut evs = vec![ev_created("resp_snap2"), ev_reasoning_added(0, "rs_1")];
    evs.push(ev_reasoning_summary_part_added(0, "rs_1", 0));
    evs.push(ev_reasoning_summary_delta(
        0,
        "rs_1",
        0,
        "Need to list files.",
    ));
    evs.push(ev_reasoning_done(
        0,
        "rs_1",
        "Need to list files.",
        Some("gAAAAAsnap"),
    ));
    evs.extend(function_call_events(
        1,
        "fc_1",
        "call_snap",
        "Bash",
        &["{\"command\":", "\"ls -la\"}"],
    ));
    evs.push(ev_completed(
        "resp_snap2",
        Usage {
            input: 40,
            output: 20,
            cached: 0,
            reasoning: 12,
        },
    ));
    let mut req = request_with_tools("list files", true);
    req["thinking"] = json!({"type": "adaptive"});
    snapshot("reasoning_then_tool_call_stream", &emitted(evs, req).await);
}

#[tokio::test]
async fn failure_after_output_stream() {
    let evs = vec![
        ev_created("resp_snap3"),
        ev_message_added(0, "m"),
        ev_text_delta(0, "m", "par"),
        ev_failed(
            "resp_snap3",
            "server_error",
            "The server had an error while processing your request.",
        ),
    ];
    snapshot(
        "failure_after_output_stream",
        &emitted(evs, request("hi", true)).await,
    );
}
