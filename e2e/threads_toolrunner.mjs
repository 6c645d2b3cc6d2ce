// End-to-end: message threads (`message-threads-2026-08-12`) with the official Anthropic
// TypeScript SDK's own `toolRunner`, defaults untouched (threads on), against a running
// `ferry serve`. The TypeScript twin of `test_threads.py`.
//
// Run by `cargo xtask e2e` / `cargo xtask test` with node, after it installed the pinned
// @anthropic-ai/sdk into FERRY_E2E_TS_SDK (a directory with node_modules/). Environment:
// FERRY_E2E_BASE_URL, FERRY_E2E_KEY, FERRY_E2E_TS_SDK.
//
// The simulated upstream's `[[tool-loop:probe:2]]` directive (crates/ferry-server/src/sim.rs)
// calls `probe` until the input holds two tool outputs; each call's `note` reports what that
// upstream request carried, so the notes show whether every turn reached it whole.

import { createRequire } from 'node:module';
import { join } from 'node:path';

const BASE_URL = process.env.FERRY_E2E_BASE_URL;
const KEY = process.env.FERRY_E2E_KEY;
const SDK_DIR = process.env.FERRY_E2E_TS_SDK;
if (!BASE_URL || !KEY || !SDK_DIR) {
  console.error('FERRY_E2E_BASE_URL, FERRY_E2E_KEY and FERRY_E2E_TS_SDK must be set');
  process.exit(2);
}
const require = createRequire(join(SDK_DIR, 'package.json'));
const { default: Anthropic, NotFoundError } = require('@anthropic-ai/sdk');
const { betaTool } = require('@anthropic-ai/sdk/helpers/beta/json-schema');
const { VERSION: version } = require('@anthropic-ai/sdk/version');

const MODEL = 'claude-opus-4-8';
const SYSTEM = 'You are a probe. Call the probe tool when asked.';

function client() {
  return new Anthropic({ baseURL: BASE_URL, apiKey: KEY, maxRetries: 0, timeout: 30_000 });
}

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

function assertEqual(got, want, what) {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  assert(g === w, `${what}: got ${g}, want ${w}`);
}

async function metric(name) {
  const text = await (await fetch(`${BASE_URL}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name + ' '));
  return line ? Number(line.split(' ').pop()) : 0;
}

async function threadsMetrics() {
  const out = {};
  for (const r of ['created', 'continued', 'stored', 'not_found']) {
    out[r] = await metric(`ferry_threads_total{result="${r}"}`);
  }
  return out;
}

function report(text) {
  const m = /outputs=\d+;calls=\d+;items=\d+;developer=\d+;tools=\d+/.exec(text);
  assert(m, `no report in ${JSON.stringify(text)}`);
  return Object.fromEntries(m[0].split(';').map((p) => [p.split('=')[0], Number(p.split('=')[1])]));
}

// What the upstream must have received on turn `turn` (1-based): the system prompt (one
// developer message), the user prompt, and every earlier call and output.
function expected(turn) {
  const done = turn - 1;
  return { outputs: done, calls: done, items: 2 + 2 * done, developer: 1, tools: 1 };
}

async function runToolRunner(stream) {
  const notes = [];
  const probe = betaTool({
    name: 'probe',
    description: 'Records what the upstream saw.',
    inputSchema: {
      type: 'object',
      properties: { note: { type: 'string' } },
      required: ['note'],
    },
    run: async ({ note }) => {
      notes.push(note);
      return `noted ${notes.length}`;
    },
  });
  const before = await threadsMetrics();
  const runner = client().beta.messages.toolRunner({
    model: MODEL,
    max_tokens: 512,
    system: SYSTEM,
    tools: [probe],
    messages: [{ role: 'user', content: 'probe twice [[tool-loop:probe:2]]' }],
    stream,
  });
  const replies = [];
  for await (const item of runner) {
    replies.push(stream ? await item.finalMessage() : item);
  }
  const after = await threadsMetrics();

  assertEqual(
    replies.map((r) => r.stop_reason),
    ['tool_use', 'tool_use', 'end_turn'],
    'stop reasons',
  );
  assertEqual(notes.length, 2, 'tool runs');
  assertEqual(report(notes[0]), expected(1), 'turn 1 upstream input');
  assertEqual(report(notes[1]), expected(2), 'turn 2 upstream input');
  const final = replies[2].content
    .filter((b) => b.type === 'text')
    .map((b) => b.text)
    .join('');
  assert(final.startsWith('Tool loop done'), final);
  assertEqual(report(final), expected(3), 'turn 3 upstream input');
  // The SDK really threaded: one create, two continues, three stored turns, no replay.
  const delta = Object.fromEntries(Object.keys(after).map((k) => [k, after[k] - before[k]]));
  assertEqual(delta, { created: 1, continued: 2, stored: 3, not_found: 0 }, 'ferry_threads_total');
}

const tests = {
  async sdk_supports_threads() {
    assert(client()._supportsMessageThreads, `@anthropic-ai/sdk ${version} has no message threads`);
  },
  async tool_runner_threads_a_three_turn_conversation() {
    await runToolRunner(false);
  },
  async streaming_tool_runner_threads_a_three_turn_conversation() {
    await runToolRunner(true);
  },
  async an_unknown_thread_is_thread_not_found() {
    try {
      await client().beta.messages.create({
        model: MODEL,
        max_tokens: 64,
        messages: [{ role: 'user', content: 'hi' }],
        thread: { type: 'continue', previous_message_id: 'msg_never_stored' },
        betas: ['message-threads-2026-08-12'],
      });
    } catch (e) {
      assert(e instanceof NotFoundError, `not a NotFoundError: ${e}`);
      assertEqual(e.error?.error?.details?.error_code, 'thread_not_found', 'error_code');
      return;
    }
    throw new Error('a continue of an unknown thread was answered');
  },
};

let failed = 0;
console.log(`@anthropic-ai/sdk ${version}`);
for (const [name, fn] of Object.entries(tests)) {
  try {
    await fn();
    console.log(`PASS ${name}`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${name}\n${e?.stack ?? e}`);
  }
}
console.log(`${Object.keys(tests).length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
