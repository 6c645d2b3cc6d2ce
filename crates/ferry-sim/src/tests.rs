//! The simulator's unit tests (moved with it from ferry-server).

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use tokio::net::TcpListener;

use crate::plan::{response_id_tokens, split_pieces};
use crate::render::{error_body, overflow_body};
use crate::{PacedBody, SimBody, SimOptions, run_sim_upstream, sim_events, simulate};

fn opts() -> SimOptions {
    SimOptions {
        deltas: 4,
        created_at: Some(1_700_000_000),
        ..SimOptions::default()
    }
}

/// Parses frames back into (event name, payload), checking the framing.
fn parse(frames: &[Bytes]) -> Vec<(String, Value)> {
    frames
        .iter()
        .map(|f| {
            let text = std::str::from_utf8(f).unwrap();
            let text = text.strip_suffix("\n\n").unwrap();
            let (event, data) = text.split_once('\n').unwrap();
            let event = event.strip_prefix("event: ").unwrap().to_owned();
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(data["type"], json!(event));
            (event, data)
        })
        .collect()
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(e, _)| e.as_str()).collect()
}

fn user(text: &str) -> Value {
    json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
}

#[test]
fn tool_loop_calls_until_n_outputs_and_reports_what_it_received() {
    let tools = json!([{"type": "function", "name": "probe", "parameters": {
        "type": "object", "properties": {"note": {"type": "string"}}, "required": ["note"]}}]);
    let developer = json!({"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "sys"}]});
    let call = |id: &str| json!({"type": "function_call", "call_id": id, "name": "probe", "arguments": "{}"});
    let output = |id: &str| json!({"type": "function_call_output", "call_id": id, "output": "ok"});
    let mut input = vec![developer, user("go [[tool-loop:probe:2]]")];
    let answer = |input: &[Value]| {
        let req = json!({"model": "gpt-5.1", "stream": false, "tools": tools, "input": input});
        match simulate(&req, &opts()).body {
            SimBody::Json(v) => v,
            SimBody::Events(_) => panic!("asked for JSON"),
        }
    };
    let first = answer(&input);
    assert_eq!(first["output"][0]["type"], json!("function_call"));
    let args: Value =
        serde_json::from_str(first["output"][0]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(
        args["note"],
        json!("outputs=0;calls=0;items=2;developer=1;tools=1")
    );
    input.extend([call("c1"), output("c1")]);
    let second = answer(&input);
    let args: Value =
        serde_json::from_str(second["output"][0]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(
        args["note"],
        json!("outputs=1;calls=1;items=4;developer=1;tools=1")
    );
    input.extend([call("c2"), output("c2")]);
    let third = answer(&input);
    assert_eq!(
        third["output"][0]["content"][0]["text"],
        json!("Tool loop done: outputs=2;calls=2;items=6;developer=1;tools=1")
    );
}

#[test]
fn text_answer_is_a_complete_stream() {
    let req = json!({"model": "gpt-5.1", "stream": true, "input": [user("hello there")]});
    let events = parse(&sim_events(&req, &opts()));
    assert_eq!(
        names(&events),
        vec![
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let seqs: Vec<u64> = events
        .iter()
        .map(|(_, v)| v["sequence_number"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..12).collect::<Vec<u64>>());
    let deltas: String = events
        .iter()
        .filter(|(e, _)| e == "response.output_text.delta")
        .map(|(_, v)| v["delta"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, "Simulated reply to: \"hello there\".");
    let done = &events.last().unwrap().1["response"];
    assert_eq!(done["status"], json!("completed"));
    assert_eq!(done["output"][0]["content"][0]["text"], json!(deltas));
    assert_eq!(done["created_at"], json!(1_700_000_000));
    assert_eq!(done["model"], json!("gpt-5.1"));
    let usage = &done["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["input_tokens"].as_u64().unwrap() + usage["output_tokens"].as_u64().unwrap()
    );
}

#[test]
fn same_request_same_answer() {
    let req = json!({"model": "gpt-5.1", "stream": true, "input": [user("hi")]});
    assert_eq!(sim_events(&req, &opts()), sim_events(&req, &opts()));
    let other = json!({"model": "gpt-5.1", "stream": true, "input": [user("ho")]});
    let id = |r: &Value| parse(&sim_events(r, &opts()))[0].1["response"]["id"].clone();
    assert_ne!(id(&req), id(&other));
}

#[test]
fn reasoning_comes_first_with_summary_and_ciphertext() {
    let req = json!({
        "model": "gpt-5.1", "stream": true, "input": [user("think")],
        "reasoning": {"effort": "medium", "summary": "auto"},
        "include": ["reasoning.encrypted_content"],
    });
    let events = parse(&sim_events(&req, &opts()));
    assert_eq!(events[2].1["item"]["type"], json!("reasoning"));
    let summary: String = events
        .iter()
        .filter(|(e, _)| e == "response.reasoning_summary_text.delta")
        .map(|(_, v)| v["delta"].as_str().unwrap())
        .collect();
    assert!(
        summary.starts_with("**Considering the request**"),
        "{summary}"
    );
    let done = &events.last().unwrap().1["response"];
    assert_eq!(done["output"][0]["summary"][0]["text"], json!(summary));
    assert!(
        done["output"][0]["encrypted_content"]
            .as_str()
            .unwrap()
            .starts_with("gAAAAA")
    );
    assert_eq!(done["output"][1]["type"], json!("message"));
    assert_eq!(
        done["usage"]["output_tokens_details"]["reasoning_tokens"],
        json!(128)
    );
}

#[test]
fn no_reasoning_item_when_effort_is_none() {
    let req = json!({"stream": true, "input": [user("x")], "reasoning": {"effort": "none"}});
    let events = parse(&sim_events(&req, &opts()));
    let done = &events.last().unwrap().1["response"];
    assert_eq!(done["output"].as_array().unwrap().len(), 1);
    assert_eq!(done["output"][0]["type"], json!("message"));
}

fn weather_tool() -> Value {
    json!({
        "type": "function", "name": "get_weather", "description": "Weather", "strict": false,
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer"},
        }, "required": ["city", "unit"]},
    })
}

#[test]
fn a_json_tool_argument_is_sent_exactly() {
    let req = json!({
        "stream": true, "tools": [weather_tool()],
        "input": [user(r#"[[tool:get_weather:{"city": "Oslo", "unit": "kelvin", "extra": false}]]"#)],
    });
    let events = parse(&sim_events(&req, &opts()));
    let call = &events.last().unwrap().1["response"]["output"][0];
    let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(
        args,
        json!({"city": "Oslo", "unit": "kelvin", "extra": false})
    );
}

#[test]
fn tool_directive_calls_the_tool_with_plausible_arguments() {
    let req = json!({
        "stream": true, "tools": [weather_tool()],
        "input": [user("[[tool:get_weather:Paris]] what is the weather?")],
    });
    let events = parse(&sim_events(&req, &opts()));
    assert_eq!(
        names(&events)[2..],
        [
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let args: String = events
        .iter()
        .filter(|(e, _)| e == "response.function_call_arguments.delta")
        .map(|(_, v)| v["delta"].as_str().unwrap())
        .collect();
    let args: Value = serde_json::from_str(&args).unwrap();
    assert_eq!(args, json!({"city": "Paris", "unit": "celsius"}));
    let call = &events.last().unwrap().1["response"]["output"][0];
    assert_eq!(call["name"], json!("get_weather"));
    assert!(call["call_id"].as_str().unwrap().starts_with("call_"));
}

#[test]
fn overflow_directive_fails_only_over_its_limit() {
    let reply = |limit: u64| {
        simulate(
            &json!({"stream": true, "input": [user(&format!("[[overflow:{limit}]] {}", "x".repeat(4000)))]}),
            &opts(),
        )
    };
    let over = reply(100);
    assert_eq!(over.status, 400);
    assert_eq!(over.body, SimBody::Json(overflow_body()));
    assert_eq!(reply(100_000).status, 200);
}

#[test]
fn a_prompt_of_only_reminders_is_answered_as_their_text() {
    let text =
        |prompt: &str| match simulate(&json!({"stream": false, "input": [user(prompt)]}), &opts())
            .body
        {
            SimBody::Json(v) => v["output"][0]["content"][0]["text"].clone(),
            SimBody::Events(_) => Value::Null,
        };
    let resume = text("<system-reminder>\nOutput token limit hit. Resume.\n</system-reminder>");
    assert!(
        resume
            .as_str()
            .unwrap()
            .starts_with("Simulated reply to: \"Output token limit hit. Resume.\"."),
        "{resume}"
    );
    let prompt = text("<system-reminder>context</system-reminder>say hi");
    assert!(
        prompt
            .as_str()
            .unwrap()
            .starts_with("Simulated reply to: \"say hi\"."),
        "{prompt}"
    );
}

#[test]
fn naming_a_tool_calls_it_but_reminders_do_not() {
    let req =
        |text: &str| json!({"stream": false, "tools": [weather_tool()], "input": [user(text)]});
    let kind = |text: &str| match simulate(&req(text), &opts()).body {
        SimBody::Json(v) => v["output"][0]["type"].clone(),
        SimBody::Events(_) => Value::Null,
    };
    assert_eq!(
        kind("please use the get_weather tool"),
        json!("function_call")
    );
    assert_eq!(kind("call get_weather now"), json!("function_call"));
    assert_eq!(kind("what does get_weather do?"), json!("message"));
    assert_eq!(
        kind("Do NOT use get_weather, or any tool"),
        json!("message")
    );
    assert_eq!(kind("don't call get_weather"), json!("message"));
    assert_eq!(
        kind("<system-reminder>use get_weather</system-reminder>hello"),
        json!("message")
    );
}

#[test]
fn parallel_directives_give_parallel_calls() {
    let req = json!({
        "tools": [weather_tool()],
        "input": [user("[[tool:get_weather:Paris]] [[tool:get_weather:Rome]]")],
    });
    let SimBody::Json(v) = simulate(&req, &opts()).body else {
        panic!("expected JSON")
    };
    let cities: Vec<Value> = v["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            serde_json::from_str::<Value>(o["arguments"].as_str().unwrap()).unwrap()["city"].clone()
        })
        .collect();
    assert_eq!(cities, vec![json!("Paris"), json!("Rome")]);
}

#[test]
fn a_function_call_output_is_answered_with_text() {
    let req = json!({
        "tools": [weather_tool()],
        "input": [
            user("[[tool:get_weather:Paris]]"),
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny, 21C"},
        ],
    });
    let SimBody::Json(v) = simulate(&req, &opts()).body else {
        panic!("expected JSON")
    };
    assert_eq!(
        v["output"][0]["content"][0]["text"],
        json!("The tool returned: sunny, 21C")
    );
}

#[test]
fn cached_tokens_grow_across_turns() {
    let long = "lorem ipsum dolor sit amet ".repeat(400);
    let turn = |n: usize| {
        let mut input = Vec::new();
        for i in 0..n {
            input.push(user(&format!("{long} {i}")));
            input.push(json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]}));
        }
        input.push(user("next"));
        let SimBody::Json(v) = simulate(&json!({"input": input}), &opts()).body else {
            panic!("expected JSON")
        };
        v["usage"]["input_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap()
    };
    let first = json!({"instructions": long, "input": [user("first")]});
    let SimBody::Json(v) = simulate(&first, &opts()).body else {
        panic!("expected JSON")
    };
    assert_eq!(
        v["usage"]["input_tokens_details"]["cached_tokens"],
        json!(0)
    );
    let (one, two, three) = (turn(0), turn(1), turn(2));
    assert_eq!(one, 0);
    assert!(two > 0 && two % 128 == 0, "{two}");
    assert!(three > two, "{three} > {two}");
}

#[test]
fn continuations_are_priced_as_the_whole_conversation() {
    let long = "lorem ipsum dolor sit amet ".repeat(400);
    let first = json!({"input": [user(&long)]});
    let SimBody::Json(one) = simulate(&first, &opts()).body else {
        panic!("expected JSON")
    };
    let id = one["id"].as_str().unwrap();
    let total = one["usage"]["total_tokens"].as_u64().unwrap();
    assert_eq!(response_id_tokens(id), Some(total));
    let next = json!({"previous_response_id": id, "input": [user("and then?")]});
    let SimBody::Json(two) = simulate(&next, &opts()).body else {
        panic!("expected JSON")
    };
    let usage = &two["usage"];
    assert_eq!(
        usage["input_tokens_details"]["cached_tokens"],
        json!(total / 128 * 128)
    );
    assert!(usage["input_tokens"].as_u64().unwrap() > total, "{usage}");
    assert_eq!(response_id_tokens("resp_abc"), None);
}

#[test]
fn json_mode_answers_json() {
    let req = json!({
        "input": [user("give json")],
        "text": {"format": {"type": "json_schema", "name": "x", "schema": {
            "type": "object", "properties": {"title": {"type": "string"}, "n": {"type": "integer"}},
            "required": ["title", "n"],
        }}},
    });
    let SimBody::Json(v) = simulate(&req, &opts()).body else {
        panic!("expected JSON")
    };
    let text: Value =
        serde_json::from_str(v["output"][0]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text["n"], json!(1));
    assert!(
        text["title"]
            .as_str()
            .unwrap()
            .starts_with("Simulated reply")
    );
}

#[test]
fn failure_directives() {
    let req = |d: &str| json!({"stream": true, "input": [user(d)]});
    let last = |d: &str| {
        let events = parse(&sim_events(&req(d), &opts()));
        events.last().unwrap().0.clone()
    };
    assert_eq!(last("[[fail:boom]]"), "response.failed");
    assert_eq!(last("[[incomplete]]"), "response.incomplete");
    assert_eq!(last("[[cut]]"), "response.output_text.delta");
    assert_eq!(last("[[status:429]]"), "response.failed");

    let reply = simulate(&req("[[status:429]]"), &opts());
    assert_eq!(reply.status, 429);
    assert!(reply.headers.contains(&("retry-after", "1".to_owned())));
    assert_eq!(reply.body, SimBody::Json(error_body(429)),);
    let failed = simulate(&json!({"input": [user("[[fail:boom]]")]}), &opts());
    let SimBody::Json(v) = failed.body else {
        panic!("expected JSON")
    };
    assert_eq!(
        v["error"],
        json!({"code": "server_error", "message": "boom"})
    );
}

#[test]
fn split_pieces_keeps_the_text_and_the_count() {
    for n in [1, 2, 3, 7, 50] {
        let text = "The quick brown fox jumps over the lazy dog";
        let pieces = split_pieces(text, n);
        assert_eq!(pieces.concat(), text);
        assert_eq!(pieces.len(), n.min(text.len()));
    }
    assert_eq!(split_pieces("ab", 5), vec!["a", "b"]);
}

#[test]
fn deltas_option_sets_the_number_of_text_deltas() {
    let req = json!({"stream": true, "input": [user("count me")]});
    let count = |n: usize| {
        let o = SimOptions {
            deltas: n,
            ..opts()
        };
        parse(&sim_events(&req, &o))
            .iter()
            .filter(|(e, _)| e == "response.output_text.delta")
            .count()
    };
    assert_eq!(count(1), 1);
    assert_eq!(count(10), 10);
    assert_eq!(count(50), 50);
}

/// 200 ms to the first frame, then 10 ms between frames.
fn paced_opts() -> SimOptions {
    SimOptions {
        ttft: Duration::from_millis(200),
        event_interval: Duration::from_millis(10),
        ..opts()
    }
}

#[tokio::test]
async fn paced_body_waits_between_events() {
    tokio::time::pause();
    let frames = vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")];
    let o = paced_opts();
    let start = tokio::time::Instant::now();
    let mut body = PacedBody::new(frames, &o);
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first, Bytes::from_static(b"a"));
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_millis(202),
        "{waited:?}"
    );
    let second = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(second, Bytes::from_static(b"b"));
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(210) && waited < Duration::from_millis(213),
        "{waited:?}"
    );
    assert!(body.frame().await.is_none());
}

#[tokio::test]
async fn paced_body_keeps_an_absolute_schedule() {
    tokio::time::pause();
    let frames: Vec<Bytes> = (0..5).map(|i| Bytes::from(i.to_string())).collect();
    let o = paced_opts();
    let start = tokio::time::Instant::now();
    let mut body = PacedBody::new(frames, &o);
    body.frame().await.unwrap().unwrap();
    // A reader 35 ms late: frames 1-3 (due at 210, 220, 230 ms) are sent at once, and
    // frame 4 keeps its 240 ms slot instead of moving to 245 ms.
    tokio::time::sleep(Duration::from_millis(35)).await;
    let late = start.elapsed();
    assert!(late >= Duration::from_millis(235), "{late:?}");
    for _ in 1..4 {
        body.frame().await.unwrap().unwrap();
        assert_eq!(start.elapsed(), late);
    }
    body.frame().await.unwrap().unwrap();
    let last = start.elapsed();
    assert!(
        last >= Duration::from_millis(240) && last < Duration::from_millis(242),
        "{last:?}"
    );
    assert!(body.frame().await.is_none());
}

#[tokio::test]
async fn server_answers_responses_requests() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    #[expect(
        clippy::disallowed_methods,
        reason = "the test's server runs beside its client"
    )]
    let server = tokio::spawn(run_sim_upstream(listener, opts(), async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        client
            .post(format!("http://{addr}{path}"))
            .bearer_auth("sk-test")
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };

    let streamed = post(
        "/v1/responses",
        json!({"stream": true, "input": [user("hi")]}),
    )
    .await
    .unwrap();
    assert_eq!(streamed.status(), 200);
    assert_eq!(
        streamed.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    let text = streamed.text().await.unwrap();
    assert!(text.starts_with("event: response.created\n"), "{text}");
    assert!(text.contains("event: response.completed\n"), "{text}");

    let plain = post("/responses", json!({"input": [user("hi")]}))
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    let v: Value = serde_json::from_str(&plain.text().await.unwrap()).unwrap();
    assert_eq!(v["status"], json!("completed"));

    let limited = post("/v1/responses", json!({"input": [user("[[status:429]]")]}))
        .await
        .unwrap();
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "1");

    let missing = post("/v1/chat/completions", json!({})).await.unwrap();
    assert_eq!(missing.status(), 404);
    let bad = client
        .post(format!("http://{addr}/v1/responses"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn zero_delay_body_is_one_chunk() {
    let frames = vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")];
    let body = PacedBody::new(frames, &opts());
    let all = body.collect().await.unwrap().to_bytes();
    assert_eq!(all, Bytes::from_static(b"ab"));
}

#[tokio::test]
async fn a_paced_json_answer_takes_as_long_as_its_stream() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let o = SimOptions {
        deltas: 4,
        ttft: Duration::from_millis(30),
        event_interval: Duration::from_millis(10),
        ..opts()
    };
    #[expect(
        clippy::disallowed_methods,
        reason = "the test's server runs beside its client"
    )]
    let server = tokio::spawn(run_sim_upstream(listener, o, async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let post = |body: Value| {
        client
            .post(format!("http://{addr}/v1/responses"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    let start = tokio::time::Instant::now();
    let plain = post(json!({"input": [user("hi")]})).await.unwrap();
    assert_eq!(plain.status(), 200);
    let v: Value = serde_json::from_str(&plain.text().await.unwrap()).unwrap();
    assert_eq!(v["status"], json!("completed"));
    // 30 ms to the first token, then 4 deltas 10 ms apart.
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(70), "{took:?}");
    // An error is not generated: it comes at once.
    let start = tokio::time::Instant::now();
    let limited = post(json!({"input": [user("[[status:429]]")]}))
        .await
        .unwrap();
    assert_eq!(limited.status(), 429);
    assert!(start.elapsed() < Duration::from_millis(70));
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
