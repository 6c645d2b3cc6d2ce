"""End-to-end: message threads (`message-threads-2026-08-12`) with the official Anthropic
Python SDK's own tool runner, defaults untouched (threads on), against a running `ferry serve`.

Run by `cargo xtask e2e` / `cargo xtask test` like `test_sdk.py` (same environment:
FERRY_E2E_BASE_URL, FERRY_E2E_KEY, FERRY_E2E_SCENARIO).

The simulated upstream's `[[tool-loop:probe:2]]` directive (crates/ferry-sim/src/lib.rs)
calls `probe` until the input holds two tool outputs, and each call's `note` reports what
that upstream request carried. After the first turn the SDK sends only the tool result with
`thread: continue`, so the reports show whether ferry rebuilt the whole conversation.
"""

import os
import re
import sys
import traceback
import urllib.request

import anthropic
from anthropic import beta_tool

BASE_URL = os.environ["FERRY_E2E_BASE_URL"]
KEY = os.environ["FERRY_E2E_KEY"]
MODEL = "claude-opus-4-8"
SYSTEM = "You are a probe. Call the probe tool when asked."


def client():
    return anthropic.Anthropic(base_url=BASE_URL, api_key=KEY, max_retries=0, timeout=30.0)


def metric(name):
    """The value of one Prometheus series on ferry's /metrics (0 when absent)."""
    text = urllib.request.urlopen(f"{BASE_URL}/metrics", timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def threads_metrics():
    return {
        r: metric(f'ferry_threads_total{{result="{r}"}}')
        for r in ("created", "continued", "stored", "not_found")
    }


def report(text):
    """`outputs=O;calls=C;items=I;developer=D;tools=T` as a dict of ints."""
    m = re.search(r"outputs=\d+;calls=\d+;items=\d+;developer=\d+;tools=\d+", text)
    assert m, f"no report in {text!r}"
    return {k: int(v) for k, v in (p.split("=") for p in m.group(0).split(";"))}


def expected(turn):
    """What the upstream must have received on turn `turn` (1-based) of the whole conversation:
    the system prompt (one developer message), the user prompt, and every earlier call and
    output."""
    done = turn - 1
    return {"outputs": done, "calls": done, "items": 2 + 2 * done, "developer": 1, "tools": 1}


def run_tool_runner(stream):
    notes = []

    @beta_tool
    def probe(note: str) -> str:
        """Records what the upstream saw.

        Args:
            note: the upstream's report.
        """
        notes.append(note)
        return f"noted {len(notes)}"

    before = threads_metrics()
    runner = client().beta.messages.tool_runner(
        model=MODEL,
        max_tokens=512,
        system=SYSTEM,
        tools=[probe],
        messages=[{"role": "user", "content": "probe twice [[tool-loop:probe:2]]"}],
        stream=stream,
    )
    replies = []
    for item in runner:
        replies.append(item.get_final_message() if stream else item)
    after = threads_metrics()

    assert len(replies) == 3, f"{len(replies)} replies: {replies}"
    assert [r.stop_reason for r in replies] == ["tool_use", "tool_use", "end_turn"], replies
    assert len(notes) == 2, notes
    # Every turn reached the upstream whole: system prompt, tools, and the full history.
    assert report(notes[0]) == expected(1), notes[0]
    assert report(notes[1]) == expected(2), notes[1]
    final = "".join(b.text for b in replies[2].content if b.type == "text")
    assert final.startswith("Tool loop done"), final
    assert report(final) == expected(3), final
    # The SDK really threaded: one create, then two continues that sent only the new
    # messages, each reply stored for the next turn; nothing fell back to a replay.
    delta = {k: after[k] - before[k] for k in after}
    assert delta == {"created": 1, "continued": 2, "stored": 3, "not_found": 0}, delta


def test_sdk_supports_threads():
    assert anthropic.Anthropic._supports_message_threads, anthropic.__version__


def test_tool_runner_threads_a_three_turn_conversation():
    run_tool_runner(stream=False)


def test_streaming_tool_runner_threads_a_three_turn_conversation():
    run_tool_runner(stream=True)


def test_thread_send_keeps_the_history():
    """`beta.messages.thread()`: the second turn sends only its message; the reply shows the
    upstream got the system prompt and the first turn too."""
    before = threads_metrics()
    thread = client().beta.messages.thread(model=MODEL, max_tokens=256, system=SYSTEM)
    first = thread.send({"role": "user", "content": "remember the word heliotrope"})
    assert first.stop_reason == "end_turn", first
    second = thread.send({"role": "user", "content": "[[tool-loop:probe:0]] what did I say?"})
    text = "".join(b.text for b in second.content if b.type == "text")
    # No tools were declared: the report counts system + turn 1 (user, assistant) + turn 2.
    got = report(text)
    assert got["developer"] == 1 and got["items"] == 4 and got["tools"] == 0, text
    after = threads_metrics()
    assert after["continued"] - before["continued"] == 1, (before, after)


def test_an_unknown_thread_is_thread_not_found():
    try:
        client().beta.messages.create(
            model=MODEL,
            max_tokens=64,
            messages=[{"role": "user", "content": "hi"}],
            thread={"type": "continue", "previous_message_id": "msg_never_stored"},
            betas=["message-threads-2026-08-12"],
        )
    except anthropic.NotFoundError as e:
        assert e.error_code == "thread_not_found", e.body
    else:
        raise AssertionError("a continue of an unknown thread was answered")


def main():
    tests = [(n, f) for n, f in sorted(globals().items()) if n.startswith("test_") and callable(f)]
    failed = 0
    for name, fn in tests:
        try:
            fn()
            print(f"PASS {name}")
        except Exception:
            failed += 1
            print(f"FAIL {name}")
            traceback.print_exc()
    print(f"{len(tests) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
