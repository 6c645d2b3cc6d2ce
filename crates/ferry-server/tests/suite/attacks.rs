//! Attacks and faults of issue 15 (hostile clients, broken upstreams), each through the
//! running gateway on real sockets; the figures are in `docs/RELIABILITY.md`.

use std::time::Duration;

use ferry_server::Config;
use serde_json::json;
use tokio::time::{Instant, timeout};

use super::common::*;

/// Every wait in this file is bounded by this.
const BOUND: Duration = Duration::from_secs(30);

/// Four `count_tokens` requests, each one 128 KB word (quadratic BPE merging took seconds
/// per request on the async workers), then `/health`: it answers at once while they run,
/// and every count answers with a plausible number.
#[tokio::test]
async fn huge_words_in_count_tokens_never_delay_health() {
    let server = TestServer::start(Config::for_tests()).await;
    let word = "a".repeat(128 * 1024);
    let body = serde_json::to_vec(&json!({
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": word}],
    }))
    .unwrap();
    let started = Instant::now();
    let counts: Vec<_> = (0..4)
        .map(|_| {
            let req = server
                .post("/v1/messages/count_tokens")
                .header("content-type", "application/json")
                .body(body.clone())
                .send();
            #[expect(clippy::disallowed_methods, reason = "the requests run side by side")]
            tokio::spawn(req)
        })
        .collect();
    // Let the counts reach the server first.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let health_sent = Instant::now();
    let health = timeout(BOUND, server.client.get(server.url("/health")).send())
        .await
        .expect("health answers")
        .unwrap();
    let health_ms = health_sent.elapsed().as_millis();
    assert_eq!(health.status(), 200);
    for c in counts {
        let resp = timeout(BOUND, c)
            .await
            .expect("count in time")
            .unwrap()
            .unwrap();
        assert_eq!(resp.status(), 200);
        let n = json_body(resp).await["input_tokens"].as_u64().unwrap();
        // o200k packs runs of one letter at several bytes a token.
        assert!((1_000..=140_000).contains(&n), "{n}");
    }
    let counts_ms = started.elapsed().as_millis();
    eprintln!("health answered in {health_ms} ms; the four counts took {counts_ms} ms");
    // A generous bound: on the async workers, health waited for every count (tens of s).
    assert!(health_ms < 2_000, "health took {health_ms} ms");
}
