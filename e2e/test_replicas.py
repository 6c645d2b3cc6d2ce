"""End-to-end test: one session across two `ferry serve` processes that share one Redis.

Run by `cargo xtask e2e` (and `cargo xtask test`) in its `replicas` scenario only: a real
`redis-server`, `ferry sim-upstream`, and two `ferry serve` processes (A and B) with the same
config (`[session] store = "redis"`, one api_key account on the simulated upstream with
`continuation = true`). It sets:
  FERRY_E2E_BASE_URL_A, FERRY_E2E_BASE_URL_B  http://127.0.0.1:PORT of each replica
  FERRY_E2E_LOG_A, FERRY_E2E_LOG_B            each replica's log (JSON lines; the
                                              `ferry::usage` records are read back)
  FERRY_E2E_KEY                               a client key configured in [[client_keys]]

A Claude Code style tool round trip, alternating replicas: turn 1 on A makes the simulated
upstream call Bash; turn 2 on B sends the tool result; turn 3 on A adds a new question. Each
replica continues the upstream response the other one got (`previous_response_id`, found
through Redis), which the usage records show: `continued`, the prompt-cache key source, the
account and the `session` tag (a hash of the upstream session id) of all three turns.

Plain asserts, no test framework: prints one line per test and `N passed, M failed`, and exits
non-zero if anything failed.
"""

import json
import os
import sys
import time
import traceback
import urllib.request

import anthropic

BASE_URL = {"A": os.environ["FERRY_E2E_BASE_URL_A"], "B": os.environ["FERRY_E2E_BASE_URL_B"]}
LOG = {"A": os.environ["FERRY_E2E_LOG_A"], "B": os.environ["FERRY_E2E_LOG_B"]}
KEY = os.environ["FERRY_E2E_KEY"]
MODEL = "claude-opus-4-8"  # mapped to gpt-5.1 by the e2e config: continuation applies
# How long a replica gets to write a request's usage record after the answer ended.
RECORD_WAIT = 10.0

BASH_TOOL = {
    "name": "Bash",
    "description": "Executes a bash command and returns its output.",
    "input_schema": {
        "type": "object",
        "properties": {
            "command": {"type": "string", "description": "The command to execute"},
            "description": {"type": "string", "description": "What the command does"},
        },
        "required": ["command"],
    },
}

# A system prompt of a few thousand tokens, like Claude Code's: the simulated upstream counts
# cached tokens only from 1,024 (OpenAI's prompt-cache minimum).
SYSTEM = "You are a careful coding agent working in a terminal.\n" + "\n".join(
    f"Rule {i}: read the relevant files before editing them, keep changes small, run the "
    f"tests after every change, and report what you did in one short paragraph."
    for i in range(60)
)


def client(replica):
    return anthropic.Anthropic(
        base_url=BASE_URL[replica], api_key=KEY, max_retries=0, timeout=30.0
    )


def content_of(message):
    """The assistant content of an answer, as the next request carries it back."""
    return [b.model_dump(exclude_none=True) for b in message.content]


def usage_record(replica, request_id):
    """The `ferry::usage` record of `request_id` in the replica's log (waits for it)."""
    deadline = time.monotonic() + RECORD_WAIT
    while True:
        with open(LOG[replica], "rb") as f:
            for line in f.read().decode("utf-8", "replace").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if (
                    isinstance(entry, dict)
                    and entry.get("target") == "ferry::usage"
                    and entry.get("request_id") == request_id
                ):
                    return entry
        if time.monotonic() > deadline:
            raise AssertionError(f"no usage record of {request_id} in {LOG[replica]}")
        time.sleep(0.05)


def metrics(replica):
    """`/metrics` of a replica as {series: value}."""
    with urllib.request.urlopen(BASE_URL[replica] + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            values[series] = float(value)
    return values


# The conversation so far, and for each turn: (replica, request id, answer).
MESSAGES = [
    {"role": "user", "content": "Run the greeting for me. [[tool:Bash:echo hello]]"}
]
TURNS = []


def send(replica, stream):
    """Sends the conversation to `replica`, appends the answer to it, records the turn."""
    if len(TURNS) != sum(1 for m in MESSAGES if m["role"] == "assistant"):
        raise AssertionError("an earlier turn failed; this one cannot run")
    kwargs = dict(
        model=MODEL, max_tokens=1024, system=SYSTEM, tools=[BASH_TOOL], messages=MESSAGES
    )
    if stream:
        with client(replica).messages.stream(**kwargs) as s:
            message = s.get_final_message()
            request_id = s.response.headers.get("request-id")
    else:
        raw = client(replica).messages.with_raw_response.create(**kwargs)
        message = raw.parse()
        request_id = raw.headers.get("request-id")
    assert request_id, f"no request-id header from replica {replica}"
    MESSAGES.append({"role": "assistant", "content": content_of(message)})
    TURNS.append((replica, request_id, message))
    return message


def test_turn1_on_a_calls_the_tool():
    msg = send("A", stream=False)
    assert msg.stop_reason == "tool_use", msg
    calls = [b for b in msg.content if b.type == "tool_use"]
    assert [(c.name, c.input.get("command")) for c in calls] == [("Bash", "echo hello")], msg
    MESSAGES.append(
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": calls[0].id, "content": "hello\n"}
            ],
        }
    )


def test_turn2_on_b_answers_the_tool_result():
    msg = send("B", stream=True)
    assert msg.stop_reason == "end_turn", msg
    text = "".join(b.text for b in msg.content if b.type == "text")
    assert "The tool returned" in text and "hello" in text, text
    MESSAGES.append({"role": "user", "content": "Thanks. What should I run next?"})


def test_turn3_on_a_continues_after_b():
    msg = send("A", stream=True)
    assert msg.stop_reason == "end_turn", msg
    text = "".join(b.text for b in msg.content if b.type == "text")
    assert text.startswith('Simulated reply to: "Thanks. What should I run next?"'), text


def test_usage_records_show_one_continued_session():
    assert len(TURNS) == 3, f"only {len(TURNS)} turns ran"
    records = [usage_record(replica, rid) for replica, rid, _ in TURNS]
    summary = [
        {k: r.get(k) for k in ("status", "continued", "prompt_cache_key_source", "account",
                               "session", "cache_read_tokens", "input_tokens", "response_id")}
        for r in records
    ]
    assert [r["status"] for r in records] == [200, 200, 200], summary
    assert [r.get("continued") for r in records] == [False, True, True], summary
    source = records[0].get("prompt_cache_key_source")
    assert source, summary
    assert [r.get("prompt_cache_key_source") for r in records] == [source] * 3, summary
    assert [r.get("account") for r in records] == [records[0]["account"]] * 3, summary
    session = records[0].get("session")
    assert isinstance(session, str) and len(session) == 8, summary
    int(session, 16)
    assert [r.get("session") for r in records] == [session] * 3, summary
    assert all(r["cache_read_tokens"] > 0 for r in records[1:]), summary
    # Each turn continued the upstream response of the turn before, whichever replica got it:
    # the simulated upstream's response ids end with the conversation's token count (8 hex),
    # and it prices a continuation as all of that read from the cache, in steps of 128
    # (crates/ferry-sim/src/lib.rs).
    for prev, r in zip(records, records[1:]):
        tokens = int(prev["response_id"][-8:], 16)
        assert r["cache_read_tokens"] == tokens // 128 * 128, (prev["response_id"], summary)
    # The usage the client got is the one recorded.
    for (_, _, msg), r in zip(TURNS, records):
        assert msg.usage.cache_read_input_tokens == r["cache_read_tokens"], (msg.usage, r)


def test_replica_b_had_no_cache_miss():
    assert [replica for replica, _, _ in TURNS] == ["A", "B", "A"], TURNS
    m = metrics("B")
    misses = {k: v for k, v in m.items() if k.startswith("ferry_cache_miss_total")}
    assert misses and sum(misses.values()) == 0, misses
    assert m.get('ferry_requests_total{status="200",stream="true"}') == 1, m
    sent = 'ferry_continuations_total{result="sent"}'
    assert (metrics("A").get(sent), m.get(sent)) == (1, 1), "continuations sent by A and B"


# -----------------------------------------------------------------------------------------


def main():
    tests = [(n, f) for n, f in globals().items() if n.startswith("test_") and callable(f)]
    passed = failed = 0
    print(f"e2e (replicas) against A={BASE_URL['A']} B={BASE_URL['B']} "
          f"with anthropic {anthropic.__version__}")
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
