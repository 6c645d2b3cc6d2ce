"""End-to-end tests: Claude Code (`claude -p`, print mode) against a running `ferry serve`.

Run by `cargo xtask e2e` (and `cargo xtask test`), which installs the pinned Claude Code into
target/e2e-node, starts ferry and sets:
  FERRY_E2E_BASE_URL  http://127.0.0.1:PORT of the running ferry
  FERRY_E2E_KEY       a client key configured in ferry's [[client_keys]]
  FERRY_E2E_SCENARIO  `simulated` or `sim-upstream` (see test_sdk.py)
  FERRY_E2E_CLAUDE    the `claude` executable
  FERRY_E2E_LOG       ferry's log file (JSON lines; the `ferry::usage` records are read back)
The upstream is ferry's simulated Responses upstream; the prompts use its directives
(`[[tool:NAME:ARG]]`, `[[fail:MESSAGE]]`, ...) documented in crates/ferry-sim/src/lib.rs.

Each run gets an empty HOME and working directory, a clean environment (no ANTHROPIC_* or
CLAUDE_* variable of the caller leaks in), stdin closed and a timeout; Claude Code's own
network traffic (telemetry, updates) is off. Standard library only. Prints one line per test
and `N passed, M failed`, and exits non-zero if anything failed.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

BASE_URL = os.environ["FERRY_E2E_BASE_URL"]
KEY = os.environ["FERRY_E2E_KEY"]
SCENARIO = os.environ.get("FERRY_E2E_SCENARIO", "simulated")
CLAUDE = os.environ.get("FERRY_E2E_CLAUDE", "")
LOG = os.environ.get("FERRY_E2E_LOG", "")

# A run that takes longer than this is a hang (a healthy one takes about a second here).
RUN_TIMEOUT = 120
# How long ferry gets to write a request's usage record after Claude Code has exited.
RECORD_WAIT = 5.0


class Run:
    """One finished `claude -p` run: exit code, the parsed JSON result, stderr, duration,
    and the `ferry::usage` records of the requests it made."""

    def __init__(self, argv, returncode, stdout, stderr, seconds, records):
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.seconds = seconds
        self.records = records
        self.json = parse_result(stdout)

    def __repr__(self):
        return (
            f"claude {self.argv[1:]!r}: exit {self.returncode} after {self.seconds:.1f}s\n"
            f"stdout: {self.stdout[:2000]}\nstderr: {self.stderr[-2000:]}\n"
            f"ferry usage records: {json.dumps(self.records)[:2000]}"
        )


def parse_result(stdout):
    """The `--output-format json` result object (the last JSON line of stdout), or None."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and value.get("type") == "result":
            return value
    return None


def usage_records(offset):
    """The `ferry::usage` records written to ferry's log after byte `offset`."""
    with open(LOG, "rb") as f:
        f.seek(offset)
        data = f.read()
    records = []
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("target") == "ferry::usage":
            records.append(entry)
    return records


def log_size():
    return os.path.getsize(LOG)


def wait_for_records(offset, at_least):
    """Polls the log until `at_least` usage records follow `offset` (or RECORD_WAIT passes)."""
    deadline = time.monotonic() + RECORD_WAIT
    records = usage_records(offset)
    while len(records) < at_least and time.monotonic() < deadline:
        time.sleep(0.05)
        records = usage_records(offset)
    return records


def claude(prompt, *flags, auth="ANTHROPIC_API_KEY", env=None, expect_requests=1):
    """Runs `claude -p PROMPT --output-format json FLAGS` in a fresh HOME and working
    directory with `auth` set to the client key, and waits for ferry's usage records of at
    least `expect_requests` requests (at least `num_turns` on success)."""
    home = tempfile.mkdtemp(prefix="ferry-e2e-claude-home-")
    cwd = tempfile.mkdtemp(prefix="ferry-e2e-claude-cwd-")
    run_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "LANG": "C.UTF-8",
        "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
        "ANTHROPIC_BASE_URL": BASE_URL,
        auth: KEY,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK": "1",
        # Lets `--dangerously-skip-permissions` run as root (CI containers are root).
        "IS_SANDBOX": "1",
    }
    run_env.update(env or {})
    run_env = {k: v for k, v in run_env.items() if v is not None}
    argv = [CLAUDE, "-p", prompt, "--output-format", "json", *flags]
    offset = log_size()
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=run_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        # The whole process group: Claude Code and whatever tool it started.
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        raise AssertionError(
            f"claude {argv[1:]!r} hung: no exit within {RUN_TIMEOUT}s\n"
            f"stdout: {stdout.decode(errors='replace')[:2000]}\n"
            f"stderr: {stderr.decode(errors='replace')[-2000:]}"
        ) from None
    finally:
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(cwd, ignore_errors=True)
    seconds = time.monotonic() - started
    stdout = stdout.decode(errors="replace")
    result = parse_result(stdout)
    if result and not result.get("is_error"):
        expect_requests = max(expect_requests, result.get("num_turns") or 0)
    records = wait_for_records(offset, expect_requests)
    return Run(argv, proc.returncode, stdout, stderr.decode(errors="replace"), seconds, records)


def assert_success(run):
    assert run.returncode == 0, run
    assert run.json is not None, run
    assert run.json["is_error"] is False, run
    assert run.json["subtype"] == "success", run
    assert isinstance(run.json.get("result"), str) and run.json["result"].strip(), run


def assert_streamed(run, requests):
    """Exactly `requests` requests, every one streamed and answered with 200."""
    assert len(run.records) == requests, run
    for record in run.records:
        assert record["stream"] is True, ("a request without stream", record, run)
        assert record["status"] == 200, ("a request was not answered with 200", record, run)


# Runs shared between tests (a later test reuses an earlier run instead of paying again).
RUNS = {}


def bash_round_trip():
    if "bash" not in RUNS:
        RUNS["bash"] = claude(
            "run [[tool:Bash:echo hello]]",
            "--dangerously-skip-permissions",
            expect_requests=2,
        )
    return RUNS["bash"]


# --- the tests, in run order ------------------------------------------------------------


def test_say_hi():
    run = claude("say hi")
    assert_success(run)
    assert run.json["result"].startswith('Simulated reply to: "say hi".'), run
    assert run.json["num_turns"] == 1, run
    assert run.json["stop_reason"] == "end_turn", run
    assert run.json["usage"]["input_tokens"] > 0, run
    assert run.json["usage"]["output_tokens"] > 0, run
    assert_streamed(run, 1)
    # The model name goes through verbatim; the account maps it.
    assert run.records[0]["model"].startswith("claude-"), run
    assert run.records[0]["upstream_model"] == "gpt-5.1", run


def test_bash_tool_round_trip():
    run = bash_round_trip()
    assert_success(run)
    assert run.json["num_turns"] >= 2, run
    assert "hello" in run.json["result"], run
    assert run.json["result"] == "The tool returned: hello", run
    assert run.json["permission_denials"] == [], run
    assert_streamed(run, run.json["num_turns"])


def test_auth_token():
    # ANTHROPIC_AUTH_TOKEN makes Claude Code send `Authorization: Bearer` (no x-api-key).
    run = claude("say hi with a bearer token", auth="ANTHROPIC_AUTH_TOKEN")
    assert_success(run)
    assert "bearer token" in run.json["result"], run
    assert_streamed(run, 1)
    assert run.records[0]["client"] == "e2e", run


def test_wrong_key_is_an_authentication_error():
    # Claude Code retries a 401; CLAUDE_CODE_MAX_RETRIES=0 keeps it to one request.
    wrong = "sk-ferry-e2e-wrong-4c9e"
    offset = log_size()
    run = claude("say hi", env={"ANTHROPIC_API_KEY": wrong, "CLAUDE_CODE_MAX_RETRIES": "0"})
    assert run.returncode != 0, run
    assert run.json is not None and run.json["is_error"] is True, run
    assert run.json.get("api_error_status") == 401, run
    assert "authenticate" in run.json["result"], run
    assert [r["status"] for r in run.records] == [401], run
    with open(LOG, "rb") as f:
        f.seek(offset)
        assert wrong.encode() not in f.read(), "the rejected key appears in ferry's log"


def test_cache_reads_on_the_second_turn():
    run = bash_round_trip()
    assert_success(run)
    usage = run.json["usage"]
    # The first turn writes the prompt cache, the second (same prefix + tool result) reads it.
    assert usage["cache_read_input_tokens"] > 0, usage
    assert len(run.records) >= 2, run
    assert run.records[0]["cache_read_tokens"] == 0, run.records
    assert run.records[1]["cache_read_tokens"] > 0, run.records
    assert usage["cache_read_input_tokens"] == sum(r["cache_read_tokens"] for r in run.records), (
        usage,
        run.records,
    )


def test_no_nonstreaming_fallback_by_default():
    # Without CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK, a stream Claude Code cannot parse makes
    # it silently re-send the request without `stream`; every request must still be streamed.
    run = claude(
        "run [[tool:Bash:echo fallback]]",
        "--dangerously-skip-permissions",
        env={"CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK": None},
        expect_requests=2,
    )
    assert_success(run)
    assert run.json["result"] == "The tool returned: fallback", run
    assert_streamed(run, run.json["num_turns"])


def test_incomplete_answer_is_max_tokens():
    # An incomplete upstream answer is `stop_reason: max_tokens`: Claude Code asks the model to
    # resume with a reminder-only user turn ("Output token limit hit. Resume directly ..."),
    # a second streamed request, which the simulator answers by quoting that reminder.
    run = claude("[[incomplete]]", expect_requests=2)
    assert_success(run)
    assert run.json["num_turns"] == 2, run
    assert run.json["result"].startswith('Simulated reply to: "Output token limit hit.'), run
    assert run.json["stop_reason"] == "end_turn", run
    assert_streamed(run, 2)


def test_upstream_failure_mid_stream_is_resumed():
    # The upstream fails after part of the answer (`response.failed`): ferry ends the stream
    # with an `error` event; Claude Code keeps the partial answer and asks the model to resume
    # ("Your response above was cut off mid-stream ..."), so the user gets a whole answer.
    run = claude("[[fail:simulated outage for claude code]]", expect_requests=2)
    assert_success(run)
    assert run.json["num_turns"] == 2, run
    assert run.json["result"].startswith(
        'Simulated reply to: "Your response above was cut off mid-stream.'
    ), run
    assert len(run.records) == 2, run
    assert all(r["stream"] is True for r in run.records), run
    assert run.records[0]["outcome"] == "upstream_failed", run
    assert run.records[1]["outcome"] == "ok", run


def test_upstream_error_status_surfaces():
    # An upstream 5xx before any content is a 502 with the Anthropic error shape; Claude Code
    # retries it (CLAUDE_CODE_MAX_RETRIES=0 keeps it to one request) and then shows it.
    started = time.monotonic()
    run = claude("[[status:500]]", env={"CLAUDE_CODE_MAX_RETRIES": "0"})
    assert time.monotonic() - started < 60, run
    assert run.returncode != 0, run
    assert run.json is not None and run.json["is_error"] is True, run
    assert run.json.get("api_error_status") == 502, run
    assert run.json["result"].startswith("API Error: 502 upstream temporarily unavailable"), run
    assert len(run.records) == 1 and run.records[0]["status"] == 502, run


def test_cut_upstream_stream_surfaces():
    # A stream cut without a terminal event ends with an `error` event. Claude Code re-asks
    # ("... cut off mid-stream. Resume ...", appended to the same user turn, which still holds
    # the directive, so every attempt is cut again) and, when it gives up, shows an API error.
    run = claude("[[cut]]", expect_requests=4)
    assert run.returncode != 0, run
    assert run.json is not None and run.json["is_error"] is True, run
    assert run.json["result"].startswith("API Error: Server error mid-response."), run
    assert len(run.records) >= 2, run
    assert all(r["stream"] is True for r in run.records), run
    assert all(r["outcome"] == "upstream_truncated" for r in run.records), run


def test_context_overflow_is_compacted():
    # The simulated upstream overflows (400 context_length_exceeded) once the conversation is
    # over 12,500 tokens: the first turn (about 12,150) fits, the second, with the Bash output,
    # does not. ferry answers the Anthropic API's "prompt is too long: N tokens > M maximum";
    # Claude Code compacts the conversation (a summary request) and continues from the summary,
    # which fits again, so the run succeeds.
    run = claude(
        "[[overflow:12500]] [[tool:Bash:seq 1 30000]]",
        "--dangerously-skip-permissions",
        expect_requests=4,
    )
    assert_success(run)
    assert run.json["result"].startswith(
        'Simulated reply to: "This session is being continued from a previous conversation'
    ), run
    statuses = [r["status"] for r in run.records]
    assert statuses.count(400) == 1, run
    assert statuses.index(400) == 1, run
    # After the overflow: at least the summary request and the continued turn, all answered.
    assert len(statuses) >= 4, run
    assert all(s == 200 for s in statuses[2:]), run
    assert all(r["stream"] is True for r in run.records), run


# -----------------------------------------------------------------------------------------


SUBAGENT_ARGS = json.dumps(
    {
        "description": "Say hi",
        "prompt": "say hi from the subagent",
        "subagent_type": "general-purpose",
        "run_in_background": False,
    },
    separators=(",", ":"),
)


def test_agent_tool_spawns_a_subagent():
    # The scripted upstream asks for Claude Code's Agent tool; Claude Code spawns a real
    # subagent offline, whose own requests (its prompt has no directive) get text replies.
    run = claude(
        f"delegate this: [[tool:Agent:{SUBAGENT_ARGS}]]",
        "--dangerously-skip-permissions",
        expect_requests=3,
    )
    assert_success(run)
    stats = run.json.get("subagent_stats") or {}
    assert stats.get("spawned") == 1 and stats.get("completed") == 1, run
    assert stats.get("failed") == 0, run
    assert (stats.get("by_type") or {}).get("general-purpose") == 1, run
    # The parent's Agent call, the subagent's turn, and the parent's next turn at least.
    assert len(run.records) >= 3, run
    for record in run.records:
        assert record["status"] == 200, (record, run)
        assert record["stream"] is True, (record, run)
    # One session: the subagent shares the parent's prompt cache key (ferry keeps one key
    # per session), so every request carries the same upstream session.
    sessions = {r.get("session") for r in run.records}
    assert len(sessions) == 1 and None not in sessions, run
    assert all(r["prompt_cache_key_source"] == "metadata" for r in run.records), run


def main():
    print(f"e2e claude code ({SCENARIO}) against {BASE_URL}")
    if not CLAUDE or not LOG:
        print("FAIL setup: FERRY_E2E_CLAUDE and FERRY_E2E_LOG must be set (cargo xtask e2e sets them)")
        print("0 passed, 1 failed")
        return 1
    home = tempfile.mkdtemp(prefix="ferry-e2e-claude-home-")
    try:
        version = subprocess.run(
            [CLAUDE, "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": os.environ.get("PATH", ""), "HOME": home},
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(f"claude --version: {version.stdout.strip() or version.stderr.strip()}")
    tests = [(n, f) for n, f in globals().items() if n.startswith("test_") and callable(f)]
    passed = failed = 0
    for name, fn in tests:
        started = time.monotonic()
        try:
            fn()
        except Exception:  # noqa: BLE001 - every failure is reported, then counted
            failed += 1
            print(f"FAIL {name}")
            traceback.print_exc(file=sys.stdout)
        else:
            passed += 1
            print(f"ok   {name} ({time.monotonic() - started:.1f}s)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
