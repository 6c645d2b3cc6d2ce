//! Plain text answers, streamed and as JSON.

use ferry_testkit::upstream::{Invariants, mount_sse_once, start};
use ferry_testkit::{Usage, sse, text_events};
use pretty_assertions::assert_eq;
use serde_json::json;

use super::common::*;

#[tokio::test]
async fn streams_text() {
    let upstream = start().await;
    let mock = mount_sse_once(
        &upstream,
        sse(text_events("resp_1", &["Hel", "lo"], Usage::new(10, 2))),
    )
    .await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let resp = server.messages(&request("hi", true)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    assert!(
        resp.headers()["request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    let text = resp.text().await.unwrap();
    println!("{text}");
    let events = parse_sse(&text);
    assert_eq!(
        names(&events),
        vec![
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(streamed_text(&events), "Hello");
    mock.set_invariants(Invariants {
        expect_prompt_cache_key: true,
        ..Invariants::default()
    });
    let req = mock.single_request();
    assert_eq!(req.body["model"], json!("gpt-5.1"));
    assert_eq!(req.path, "/responses");
}

#[tokio::test]
async fn answers_json() {
    let upstream = start().await;
    let _mock = mount_sse_once(
        &upstream,
        sse(text_events(
            "resp_1",
            &["Hel", "lo"],
            Usage::new(10, 2).cached(4),
        )),
    )
    .await;
    let server = TestServer::start(config(&upstream.uri())).await;
    let resp = server.messages(&request("hi", false)).await;
    assert_eq!(resp.status(), 200);
    let body = json_body(resp).await;
    println!("{body:#}");
}
