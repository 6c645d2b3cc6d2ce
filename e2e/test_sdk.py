"""End-to-end tests: the official Anthropic Python SDK against a running `ferry serve`.

Run by `cargo xtask e2e` (and `cargo xtask test`), which starts ferry and sets:
  FERRY_E2E_BASE_URL  http://127.0.0.1:PORT of the running ferry
  FERRY_E2E_KEY       a client key configured in ferry's [[client_keys]]
  FERRY_E2E_SCENARIO  `simulated` (in-process upstream) or `sim-upstream` (external upstream
                      reached over HTTP through an api_key account)
The upstream is ferry's simulated Responses upstream in both scenarios; its prompt directives
(`[[tool:NAME:ARG]]`, `[[status:CODE]]`, ...) are documented in crates/ferry-sim/src/lib.rs.

Plain asserts, no test framework: prints one line per test and `N passed, M failed`, and exits
non-zero if anything failed.
"""

import json
import os
import sys
import traceback
import urllib.error
import urllib.request

import anthropic

BASE_URL = os.environ["FERRY_E2E_BASE_URL"]
KEY = os.environ["FERRY_E2E_KEY"]
SCENARIO = os.environ.get("FERRY_E2E_SCENARIO", "simulated")
MODEL = "claude-opus-4-8"  # mapped to gpt-5.1 by the e2e config
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city", "unit"],
    },
}


def client(**kwargs):
    kwargs.setdefault("api_key", KEY)
    kwargs.setdefault("max_retries", 0)
    kwargs.setdefault("timeout", 30.0)
    return anthropic.Anthropic(base_url=BASE_URL, **kwargs)


def user(text):
    return {"role": "user", "content": text}


def blocks(message, kind):
    return [b for b in message.content if b.type == kind]


def text_of(message):
    return "".join(b.text for b in blocks(message, "text"))


# --- text --------------------------------------------------------------------------------


def test_create_text():
    raw = client().messages.with_raw_response.create(
        model=MODEL, max_tokens=200, messages=[user("Say hello to the e2e suite")]
    )
    assert raw.headers.get("request-id"), dict(raw.headers)
    msg = raw.parse()
    assert msg.type == "message" and msg.role == "assistant", msg
    assert msg.model == MODEL, msg.model
    assert msg.stop_reason == "end_turn", msg.stop_reason
    assert text_of(msg).startswith('Simulated reply to: "Say hello to the e2e suite".'), msg
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0, msg.usage


def test_stream_text_final_message():
    kinds = []
    deltas = []
    with client().messages.stream(
        model=MODEL, max_tokens=200, messages=[user("Stream me something")]
    ) as stream:
        for event in stream:
            kinds.append(event.type)
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                deltas.append(event.delta.text)
        final = stream.get_final_message()
    assert kinds[0] == "message_start", kinds
    assert "message_stop" in kinds, kinds
    assert len(deltas) >= 2, deltas
    assert text_of(final) == "".join(deltas), (text_of(final), deltas)
    assert final.stop_reason == "end_turn", final.stop_reason
    assert final.usage.output_tokens > 0, final.usage


def test_raw_stream_events_are_well_formed():
    events = list(
        client().messages.create(
            model=MODEL, max_tokens=100, stream=True, messages=[user("raw events")]
        )
    )
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop", kinds
    starts = [e.index for e in events if e.type == "content_block_start"]
    stops = [e.index for e in events if e.type == "content_block_stop"]
    assert starts == stops == list(range(len(starts))), (starts, stops)
    assert kinds.count("message_delta") == 1, kinds


# --- tools -------------------------------------------------------------------------------


def test_stream_tool_call_input_from_json_deltas():
    c = client()
    first = [user("[[tool:get_weather:Paris]] What is the weather in Paris?")]
    with c.messages.stream(
        model=MODEL, max_tokens=300, tools=[WEATHER_TOOL], messages=first
    ) as stream:
        partial = [
            e.delta.partial_json
            for e in stream
            if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
        ]
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use", final
    calls = blocks(final, "tool_use")
    assert len(calls) == 1, final.content
    call = calls[0]
    assert call.name == "get_weather", call
    assert call.input == {"city": "Paris", "unit": "celsius"}, call.input
    assert json.loads("".join(partial)) == call.input, partial
    assert call.id, call

    # The tool result goes back; the model answers with text.
    second = first + [
        {"role": "assistant", "content": [b.model_dump() for b in final.content]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": call.id, "content": "sunny, 21C"}
            ],
        },
    ]
    answer = c.messages.create(
        model=MODEL, max_tokens=300, tools=[WEATHER_TOOL], messages=second
    )
    assert answer.stop_reason == "end_turn", answer
    assert "sunny, 21C" in text_of(answer), answer.content


def test_create_tool_call():
    msg = client().messages.create(
        model=MODEL,
        max_tokens=300,
        tools=[WEATHER_TOOL],
        messages=[user("Please use the get_weather tool.")],
    )
    assert msg.stop_reason == "tool_use", msg
    call = blocks(msg, "tool_use")[0]
    assert call.name == "get_weather" and isinstance(call.input, dict), call
    assert set(call.input) == {"city", "unit"}, call.input


def test_parallel_tool_calls():
    with client().messages.stream(
        model=MODEL,
        max_tokens=300,
        tools=[WEATHER_TOOL],
        messages=[user("[[tool:get_weather:Paris]] [[tool:get_weather:Rome]]")],
    ) as stream:
        final = stream.get_final_message()
    calls = blocks(final, "tool_use")
    assert [c.input["city"] for c in calls] == ["Paris", "Rome"], final.content
    assert len({c.id for c in calls}) == 2, calls


# --- thinking ----------------------------------------------------------------------------


def test_thinking_block_and_replay():
    c = client()
    msg = c.messages.create(
        model=MODEL,
        max_tokens=4096,
        thinking={"type": "enabled", "budget_tokens": 2048},
        messages=[user("Think about this first")],
    )
    thinking = blocks(msg, "thinking")
    assert thinking, msg.content
    assert thinking[0].thinking.strip(), thinking[0]
    assert thinking[0].signature, thinking[0]
    assert msg.content[0].type == "thinking", [b.type for b in msg.content]
    assert text_of(msg), msg.content

    # The thinking block (with its signature) goes back on the next turn.
    again = c.messages.create(
        model=MODEL,
        max_tokens=4096,
        thinking={"type": "enabled", "budget_tokens": 2048},
        messages=[
            user("Think about this first"),
            {"role": "assistant", "content": [b.model_dump() for b in msg.content]},
            user("And now?"),
        ],
    )
    assert blocks(again, "thinking") and text_of(again), again.content


def test_stream_thinking():
    with client().messages.stream(
        model=MODEL,
        max_tokens=4096,
        thinking={"type": "enabled", "budget_tokens": 2048},
        messages=[user("Think while streaming")],
    ) as stream:
        final = stream.get_final_message()
    thinking = blocks(final, "thinking")
    assert thinking and thinking[0].thinking and thinking[0].signature, final.content
    assert text_of(final), final.content


# --- count_tokens, models ----------------------------------------------------------------


def test_count_tokens():
    c = client()
    short = c.messages.count_tokens(model=MODEL, messages=[user("hello")])
    longer = c.messages.count_tokens(
        model=MODEL, system="You are terse.", messages=[user("hello " * 200)]
    )
    with_tools = c.messages.count_tokens(
        model=MODEL, tools=[WEATHER_TOOL], messages=[user("hello")]
    )
    assert short.input_tokens > 0, short
    assert longer.input_tokens > short.input_tokens + 150, (short, longer)
    assert with_tools.input_tokens > short.input_tokens + 20, (short, with_tools)


def test_models_list():
    page = client().models.list()
    ids = [m.id for m in page.data]
    assert MODEL in ids, ids
    entry = next(m for m in page.data if m.id == MODEL).to_dict()
    assert entry["upstream_model"] == "gpt-5.1", entry
    assert entry["context_window"] == 400000, entry
    assert any(i.startswith("claude-haiku-4-5") for i in ids), ids


# --- prompt caching ----------------------------------------------------------------------


def test_cache_reads_grow_across_turns():
    c = client()
    system = " ".join(f"Background fact number {i} is about ferries." for i in range(600))
    history = [user("first question")]
    reads = []
    for turn in range(3):
        msg = c.messages.create(
            model=MODEL, max_tokens=200, system=system, messages=history
        )
        reads.append(msg.usage.cache_read_input_tokens or 0)
        history = history + [
            {"role": "assistant", "content": text_of(msg)},
            user(f"follow-up {turn}"),
        ]
    assert reads[0] == 0, reads
    assert 0 < reads[1] < reads[2], reads


# --- auth and errors ---------------------------------------------------------------------


def test_auth_styles():
    # The SDK sends `Authorization: Bearer` for both api_key and auth_token.
    for c in (client(api_key=KEY), client(api_key=None, auth_token=KEY)):
        msg = c.messages.create(model=MODEL, max_tokens=50, messages=[user("auth")])
        assert text_of(msg), msg
    # Claude Code with ANTHROPIC_API_KEY sends x-api-key.
    c = anthropic.Anthropic(
        base_url=BASE_URL,
        api_key=None,
        auth_token=None,
        default_headers={"x-api-key": KEY},
        max_retries=0,
    )
    msg = c.messages.create(model=MODEL, max_tokens=50, messages=[user("x-api-key")])
    assert text_of(msg), msg


def test_wrong_key_is_authentication_error():
    for c in (client(api_key="sk-wrong"), client(api_key=None, auth_token="sk-wrong")):
        try:
            c.messages.create(model=MODEL, max_tokens=50, messages=[user("hi")])
        except anthropic.AuthenticationError as e:
            assert e.status_code == 401, e
            assert e.body["error"]["type"] == "authentication_error", e.body
            assert "sk-wrong" not in json.dumps(e.body), e.body
        else:
            raise AssertionError("a wrong key was accepted")


def test_malformed_request_is_bad_request():
    try:
        client().messages.create(
            model=MODEL,
            max_tokens=50,
            messages=[{"role": "user", "content": [{"type": "text", "text": 5}]}],
        )
    except anthropic.BadRequestError as e:
        assert e.status_code == 400, e
        assert e.body["error"]["type"] == "invalid_request_error", e.body
        assert "messages[0].content[0]" in e.body["error"]["message"], e.body
    else:
        raise AssertionError("a malformed request was accepted")


def test_failed_stream_ends_in_an_error_event():
    try:
        with client().messages.stream(
            model=MODEL, max_tokens=50, messages=[user("[[fail:simulated outage]]")]
        ) as stream:
            stream.get_final_message()
    except anthropic.APIStatusError as e:
        assert e.body["error"]["type"] in ("api_error", "overloaded_error"), e.body
    else:
        raise AssertionError("a failed upstream response looked like success")


# --- raw HTTP: health and a recorded Claude Code request ---------------------------------


def http(method, path, body=None, headers=None):
    req = urllib.request.Request(BASE_URL + path, data=body, method=method)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_health_endpoints():
    status, _, _ = http("HEAD", "/")
    assert status == 200, status
    status, _, _ = http("GET", "/health")
    assert status == 200, status
    status, _, _ = http("GET", "/ready")
    assert status == 200, status


def test_recorded_claude_code_request_streams():
    path = os.path.join(ROOT, "fixtures", "requests", "claude-code", "01_say_hi_main.json")
    with open(path, "rb") as f:
        body = f.read()
    status, headers, data = http(
        "POST",
        "/v1/messages?beta=true",
        body,
        {
            "content-type": "application/json",
            "x-api-key": KEY,
            "anthropic-version": "2023-06-01",
            "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
        },
    )
    assert status == 200, (status, data[:500])
    assert headers.get("content-type", "").startswith("text/event-stream"), headers
    text = data.decode()
    frames = [f for f in text.split("\n\n") if f.strip()]
    names = [f.split("\n", 1)[0] for f in frames]
    assert names[0] == "event: message_start", names
    assert names[-1] == "event: message_stop", names
    for frame in frames:
        lines = frame.split("\n")
        assert lines[0].startswith("event: ") and lines[1].startswith("data: "), frame
        json.loads(lines[1][len("data: "):])


# --- last: a 429 puts the only account in a cooldown ------------------------------------


def test_upstream_rate_limit_is_rate_limit_error():
    try:
        client().messages.create(
            model=MODEL, max_tokens=50, messages=[user("[[status:429]]")]
        )
    except anthropic.RateLimitError as e:
        assert e.status_code == 429, e
        assert e.body["error"]["type"] == "rate_limit_error", e.body
    else:
        raise AssertionError("an upstream 429 was not reported")


# -----------------------------------------------------------------------------------------


def main():
    tests = [(n, f) for n, f in globals().items() if n.startswith("test_") and callable(f)]
    passed = failed = 0
    print(f"e2e ({SCENARIO}) against {BASE_URL} with anthropic {anthropic.__version__}")
    for name, fn in tests:
        try:
            fn()
        except Exception:  # noqa: BLE001 - every failure is reported, then counted
            failed += 1
            print(f"FAIL {name}")
            traceback.print_exc(file=sys.stdout)
        else:
            passed += 1
            print(f"ok   {name}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
