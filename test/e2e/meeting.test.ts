import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { validateConfig } from '../../src/config/load.js';
import { FALLBACK_BULLETS } from '../../src/features/meeting/summary.js';
import { freePort, killAllCli, spawnCli, waitForHealth } from '../support/cli.js';
import { TestDevice, type Json } from '../support/device.js';
import { FakeOpenAi, refusedPort } from '../support/fake-openai.js';
import { startTestServer, tempDir, type TestServer } from '../support/server.js';
import { join16, silence, speechPcm, streamPcm } from '../support/speech.js';
import { sleep, waitFor } from '../support/wait.js';

// ---------------------------------------------------------------- helpers

const SEVEN = ['title', 'duration', 'bullets', 'decisions', 'actions', 'risks', 'nextSteps'] as const;

const isAck = (m: Json) => m.type === 'meeting' && m.phase === 'snippet' && m.status !== undefined;
const isFinalizeAck = (m: Json) => m.type === 'meeting' && m.phase === 'finalize' && m.status === undefined;
const isSummary = (m: Json) => m.type === 'meeting' && m.phase === 'summary' && m.checkpoint === false;
const isPush = (m: Json) =>
  m.type === 'meeting' && m.phase === 'transcript' && m.final === undefined && m.from === undefined;
const isFinalTranscript = (m: Json) =>
  m.type === 'meeting' && m.phase === 'transcript' && m.final === true && m.from === undefined;
const fromOther = (m: Json) => m.type === 'meeting' && m.from !== undefined;

function llmBlock(baseUrl: string, timeoutMs = 5000): Record<string, unknown> {
  return {
    Fake: { type: 'openai', base_url: baseUrl, model_name: 'fake-model', api_key: 'test-key', timeout_ms: timeoutMs },
  };
}

/** Server config: the fake server as the (meeting) LLM, a 3 s push interval (the lowest allowed), a generous API rate limit. */
function config(
  opts: {
    llm?: string;
    meeting?: Record<string, unknown>;
    server?: Record<string, unknown>;
    extra?: Record<string, unknown>;
  } = {},
): Record<string, unknown> {
  return {
    selected_module: { LLM: opts.llm ? 'Fake' : '' },
    LLM: opts.llm ? llmBlock(opts.llm) : {},
    meeting: { transcript_push_interval_ms: 3000, ...opts.meeting },
    server: { api_rate_limit: 1000, ...opts.server },
    ...opts.extra,
  };
}

/** Swaps the config of a running server (hot reload), as a validated snapshot. */
function reload(server: TestServer, raw: Record<string, unknown>): void {
  const merged = {
    ...raw,
    server: { ip: '127.0.0.1', port: 0, ...(raw.server as Record<string, unknown> | undefined) },
    log: { log_level: 'silent' },
  };
  server.ctx.config.replace(validateConfig(merged).config);
}

async function device(server: TestServer | string, deviceId: string, hello = true): Promise<TestDevice> {
  const url = typeof server === 'string' ? server : server.url('/xiaozhi/v1/', 'ws');
  const dev = await TestDevice.connect({ url, deviceId, clientId: `${deviceId}-client` });
  if (hello) await dev.hello();
  return dev;
}

/** One snippet message, waiting for its acknowledgement. */
async function snippet(dev: TestDevice, texts: string | string[], extra: Json = {}): Promise<Json> {
  const items = (Array.isArray(texts) ? texts : [texts]).map((text) => ({ text, ...extra }));
  dev.send({ type: 'meeting', phase: 'snippet', items });
  return dev.next(isAck, 3000);
}

async function startMeeting(dev: TestDevice): Promise<Json> {
  dev.send({ type: 'mode', state: 'start', mode: 'meeting' });
  return dev.next((m) => m.type === 'mode' && m.state === 'start');
}

async function api(
  server: TestServer,
  path: string,
  init: RequestInit = {},
): Promise<{ status: number; body: Json; headers: Headers }> {
  const res = await fetch(server.url(path), init);
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as Json, headers: res.headers };
}

async function data(server: TestServer, path: string): Promise<Json & Json[]> {
  const r = await api(server, path);
  assert.equal(r.status, 200, `${path}: ${JSON.stringify(r.body)}`);
  assert.equal(r.body.success, true);
  return r.body.data as Json & Json[];
}

/** A webhook receiver: records requests; `respond` decides each answer (status, or 'hang'). */
class Receiver {
  readonly requests: { headers: http.IncomingHttpHeaders; body: string }[] = [];
  respond: (n: number) => number | 'hang' = () => 200;
  readonly #server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      this.requests.push({ headers: req.headers, body: Buffer.concat(parts).toString('utf8') });
      const answer = this.respond(this.requests.length);
      if (answer !== 'hang') res.writeHead(answer).end('{}');
    });
  });

  async start(): Promise<this> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', r));
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/hook`;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}

function assertSeven(s: Json): void {
  for (const k of SEVEN) assert.ok(k in s, `summary has ${k}`);
  for (const k of ['bullets', 'decisions', 'actions', 'risks', 'nextSteps'] as const)
    assert.ok(Array.isArray(s[k]), `${k} is an array`);
  assert.match(String(s.duration), /^\d{2,}:\d{2}:\d{2}$/);
  assert.ok((s.bullets as unknown[]).length <= 6);
  for (const k of ['decisions', 'actions', 'risks', 'nextSteps'] as const)
    assert.ok((s[k] as unknown[]).length <= 4, `${k} ≤ 4`);
  assert.equal(s.bulletsLength, (s.bullets as unknown[]).length);
}

const MINUTES = JSON.stringify({
  title: 'Release review for version two',
  bullets: [
    'Version two ships on Friday',
    'Release notes are needed',
    'version two ships on friday.',
    'Payment API is flaky',
    'QA signed off',
    'Docs are late',
    'Support is briefed',
    'Marketing is ready',
  ],
  decisions: ['Ship version two on Friday'],
  actions: ['Li writes the release notes', 'Wang fixes the payment API'],
  risks: ['Payment API flakiness'],
  nextSteps: ['Go/no-go call on Thursday'],
});

// ---------------------------------------------------------------- tests

describe('meeting: from mode start to summary (fake LLM), broadcast and webhook', () => {
  let fake: FakeOpenAi;
  let receiver: Receiver;
  let server: TestServer;
  const SECRET = 'hook-secret';
  before(async () => {
    fake = await FakeOpenAi.start();
    receiver = await new Receiver().start();
    server = await startTestServer(
      config({
        llm: fake.baseUrl,
        meeting: {
          broadcast: { enabled: true, mode: 'group' },
          webhook: { url: receiver.url, secret: SECRET, headers: { 'X-Team': 'linus' } },
        },
      }),
    );
  });
  after(async () => {
    await server.stop();
    await receiver.stop();
    await fake.stop();
  });

  it('runs a meeting: cue, acks, transcript push, finalize ack, progress, final transcript, capped summary, broadcast, signed webhook', async () => {
    const a = await device(server, 'aa:bb:cc:00:00:01');
    const b = await device(server, 'aa:bb:cc:00:00:02'); // same group (first 8 characters)
    const c = await device(server, 'dd:ee:ff:00:00:01'); // another group

    const modeAck = await startMeeting(a);
    assert.deepEqual(modeAck, { type: 'mode', status: 'ok', state: 'start', mode: 'meeting' });
    const cueStart = await a.next((m) => m.type === 'tts' && m.state === 'start');
    assert.equal(cueStart.url, 'config/assets/evening.wav');
    assert.equal(cueStart.text, '已进入会议模式');
    await a.next((m) => m.type === 'tts' && m.state === 'stop');

    const texts = [
      'We agree to ship version two on Friday',
      'Li will write the release notes',
      'The payment API is still flaky',
    ];
    for (const t of texts) {
      const ack = await snippet(a, t, { speakerId: 'li' });
      assert.equal(ack.status, 'ok');
      assert.equal(ack.accepted, 1);
      assert.equal(typeof ack.sessionId, 'string');
    }
    const seen = await waitFor(
      () => (b.all(fromOther).filter((m) => m.phase === 'snippet').length >= 3 ? b.all(fromOther) : undefined),
      3000,
      'broadcast snippets on b',
    );
    assert.deepEqual(
      seen.filter((m) => m.phase === 'snippet').map((m) => ((m.items as Json[])[0] as Json).text),
      texts,
    );
    assert.ok(seen.every((m) => m.from === 'aa:bb:cc:00:00:01'));

    const push = await a.next(isPush, 6000);
    assert.deepEqual(
      (push.items as Json[]).map((i) => [i.text, i.speakerId]),
      texts.map((t) => [t, 'li']),
    );
    assert.equal(push.totalSegments, 3);
    assert.ok((push.items as Json[]).every((i) => typeof i.ts === 'number'));

    fake.chat = { chunks: [MINUTES] };
    const llmCalls = fake.requests.length;
    a.send({ type: 'meeting', phase: 'finalize' });
    const ack = await a.next(isFinalizeAck);
    assert.equal(ack.sessionId, push.sessionId);
    assert.equal(typeof ack.startedAt, 'number');
    assert.equal(typeof ack.pendingCount, 'number');
    const final = await a.next(isFinalTranscript, 10_000);
    assert.deepEqual(
      (final.items as Json[]).map((i) => i.text),
      texts,
    );
    const summary = await a.next(isSummary, 10_000);
    await a.next((m) => m.phase === 'progress' && m.stage === 'done');
    assert.deepEqual(
      a.all((m) => m.phase === 'progress').map((m) => m.stage),
      ['prepare', 'llm_start', 'llm_done', 'done'],
    );
    assert.ok(a.all((m) => m.phase === 'progress').every((m) => typeof m.elapsedMs === 'number'));

    assertSeven(summary);
    assert.equal(summary.title, 'Release review for version two');
    assert.deepEqual(summary.bullets, [
      'Version two ships on Friday',
      'Release notes are needed',
      'Payment API is flaky',
      'QA signed off',
      'Docs are late',
      'Support is briefed',
    ]);
    assert.deepEqual(summary.actions, ['Li writes the release notes', 'Wang fixes the payment API']);
    assert.equal(summary.sourceSegments, 3);
    assert.equal(summary.idempotent, undefined);
    assert.ok(String(summary.duration) >= '00:00:05', 'at least meeting.min_duration_ms');

    // One LLM call, through the meeting purpose, JSON-only, with the transcript and max_tokens 800.
    assert.equal(fake.requests.length, llmCalls + 1);
    const req = fake.last('/v1/chat/completions').body;
    assert.equal(req.max_tokens, 800);
    assert.notEqual(req.stream, true);
    const prompt = (req.messages as { content: string }[]).map((m) => m.content).join('\n');
    assert.match(prompt, /JSON/);
    for (const t of texts) assert.ok(prompt.includes(t), `prompt has "${t}"`);

    // Broadcast: b (same group) gets the summary and the final transcript with `from`; c gets nothing.
    await waitFor(() => b.all((m) => fromOther(m) && m.phase === 'summary').length === 1, 3000, 'summary broadcast');
    assert.equal(c.all((m) => m.type === 'meeting').length, 0);

    // Webhook: compact JSON, HMAC-SHA256 signature over the body, configured headers.
    const hook = await waitFor(() => receiver.requests[0], 5000, 'webhook');
    assert.equal(hook.headers['x-meeting-signature'], createHmac('sha256', SECRET).update(hook.body).digest('hex'));
    assert.equal(hook.headers['x-team'], 'linus');
    assert.match(String(hook.headers['content-type']), /application\/json; charset=utf-8/);
    const payload = JSON.parse(hook.body) as Json;
    assert.equal(payload.sessionId, ack.sessionId);
    assert.equal(payload.deviceId, 'aa:bb:cc:00:00:01');
    assert.equal((payload.summary as Json).title, summary.title);
    assert.equal(typeof payload.durationMs, 'number');
    assert.ok(!hook.body.includes('\n'), 'compact JSON');

    // Stored and served by the API.
    const detail = await data(server, `/supie/meetings/${String(ack.sessionId)}`);
    assert.equal(detail.status, 'done');
    assert.deepEqual((detail.summary as Json).bullets, summary.bullets);

    // The meeting left meeting mode: a new start is a new meeting (not idempotent), with its cue.
    const again = await startMeeting(a);
    assert.equal(again.idempotent, undefined);
    await a.next((m) => m.type === 'tts' && m.state === 'start' && m.url !== undefined);
    await snippet(a, 'second meeting');
    a.send({ type: 'mode', state: 'end', mode: 'meeting' });
    await a.next((m) => m.type === 'mode' && m.state === 'end');
    const ack2 = await a.next(isFinalizeAck);
    assert.notEqual(ack2.sessionId, ack.sessionId);
    const summary2 = await a.next(isSummary, 10_000);
    assert.equal(summary2.sourceSegments, 1);
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  it('a checkpoint summary every checkpoint_interval_min: checkpoint:true, nothing cleared, used by the final summary', async () => {
    reload(server, config({ llm: fake.baseUrl, meeting: { checkpoint_interval_min: 0.05 } }));
    try {
      fake.chat = { chunks: [JSON.stringify({ title: 'Part one', bullets: ['Budget was discussed'] })] };
      const d = await device(server, 'cp:00:00:01');
      await startMeeting(d);
      await snippet(d, 'the budget for next quarter is tight');
      const cp = await d.next((m) => m.phase === 'summary' && m.checkpoint === true, 8000);
      assertSeven(cp);
      assert.deepEqual(cp.bullets, ['Budget was discussed']);
      const detail = await data(server, `/supie/meetings/${String(cp.sessionId)}`);
      assert.equal(detail.checkpointCount, 1);
      assert.equal(detail.status, 'open');

      await snippet(d, 'we hire two engineers');
      fake.chat = { chunks: [MINUTES] };
      d.send({ type: 'meeting', phase: 'finalize' });
      const summary = await d.next(isSummary, 10_000);
      assert.equal(summary.sourceSegments, 2, 'the checkpoint cleared nothing');
      const prompt = (fake.last('/v1/chat/completions').body.messages as { content: string }[])
        .map((m) => m.content)
        .join('\n');
      assert.match(prompt, /Budget was discussed/, 'the final prompt carries the checkpoint');
      await d.close();
    } finally {
      reload(server, config({ llm: fake.baseUrl }));
    }
  });
});

describe('meeting: LLM down or not configured → fallback summary', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer(config({ llm: `http://127.0.0.1:${await refusedPort()}/v1` }));
  });
  after(() => server.stop());

  it('answers the fixed three-line summary, all seven fields present, with an unreachable LLM and with none', async () => {
    for (const [i, llm] of [
      [0, 'unreachable'],
      [1, 'none'],
    ] as const) {
      if (llm === 'none') reload(server, config({}));
      const d = await device(server, `fb:00:00:0${i}`);
      await startMeeting(d);
      await snippet(d, ['我们讨论了预算', '下周再开会']);
      d.send({ type: 'meeting', phase: 'finalize' });
      await d.next(isFinalizeAck);
      const s = await d.next(isSummary, 10_000);
      assertSeven(s);
      assert.deepEqual(s.bullets, FALLBACK_BULLETS.zh, llm);
      assert.equal(s.sourceSegments, 2);
      await d.next((m) => m.phase === 'progress' && m.stage === 'done');
      await d.close();
    }
  });

  it('a meeting without a single segment gets the empty skeleton', async () => {
    const d = await device(server, 'fb:00:00:09');
    await startMeeting(d);
    d.send({ type: 'meeting', phase: 'finalize' });
    const s = await d.next(isSummary, 5000);
    assertSeven(s);
    assert.deepEqual([s.bullets, s.decisions, s.actions, s.risks, s.nextSteps], [[], [], [], [], []]);
    assert.equal(s.sourceSegments, 0);
    assert.equal(s.duration, '00:00:05');
    await d.close();
  });
});

describe('meeting: concurrent and repeated finalize', () => {
  let fake: FakeOpenAi;
  let server: TestServer;
  before(async () => {
    fake = await FakeOpenAi.start();
    server = await startTestServer(config({ llm: fake.baseUrl, meeting: { llm: { timeout_ms: 1500 } } }));
  });
  after(async () => {
    await server.stop();
    await fake.stop();
  });

  it('one summary for three overlapping finalize requests; the others and a later one get it with idempotent:true', async () => {
    // The LLM never answers: the first finalize waits in it until its deadline, the others arrive meanwhile.
    fake.chat = { hang: true };
    const d = await device(server, 'cc:00:00:01');
    await startMeeting(d);
    await snippet(d, 'we must pick a date');
    const calls = fake.requests.length;
    d.send({ type: 'meeting', phase: 'finalize' });
    await d.next((m) => m.phase === 'progress' && m.stage === 'llm_start', 3000);
    d.send({ type: 'meeting', phase: 'finalize' });
    d.send({ type: 'mode', state: 'end', mode: 'meeting' });
    const summaries = [await d.next(isSummary, 10_000), await d.next(isSummary, 5000), await d.next(isSummary, 5000)];
    assert.equal(summaries.filter((s) => s.idempotent === undefined).length, 1);
    assert.equal(summaries.filter((s) => s.idempotent === true).length, 2);
    for (const s of summaries) {
      assert.deepEqual(s.bullets, summaries[0]!.bullets);
      assert.equal(s.sessionId, summaries[0]!.sessionId);
    }
    assert.equal(d.all(isFinalizeAck).length, 3, 'every request is acknowledged');
    assert.equal(fake.requests.length - calls, 1, 'one LLM call');

    d.send({ type: 'meeting', phase: 'finalize' });
    const later = await d.next(isSummary, 5000);
    assert.equal(later.idempotent, true);
    assert.equal(later.sessionId, summaries[0]!.sessionId);
    const recent = await data(server, '/supie/meetings/recent?deviceId=cc:00:00:01&status=all');
    assert.equal(recent.length, 1);
    await d.close();
  });

  it('a snippet sent just before finalize is in the summary; one sent just after is dropped, not stored', async () => {
    fake.chat = { chunks: [MINUTES] };
    const d = await device(server, 'cc:00:00:02');
    await startMeeting(d);
    await snippet(d, 'first');
    d.send({ type: 'meeting', phase: 'snippet', items: [{ text: 'right before finalize' }] });
    d.send({ type: 'meeting', phase: 'finalize' });
    d.send({ type: 'meeting', phase: 'snippet', items: [{ text: 'right after finalize' }] });
    const before = await d.next(isAck);
    assert.equal(before.accepted, 1);
    const ack = await d.next(isFinalizeAck);
    const afterAck = await d.next(isAck);
    assert.deepEqual([afterAck.status, afterAck.accepted, afterAck.dropped, afterAck.finalizing], ['ok', 0, 1, true]);
    const s = await d.next(isSummary, 10_000);
    assert.equal(s.sourceSegments, 2);
    const page = await data(server, `/supie/meetings/${String(ack.sessionId)}/transcript`);
    assert.deepEqual(
      (page.items as Json[]).map((i) => i.text),
      ['first', 'right before finalize'],
    );
    await d.close();
  });
});

describe('meeting: transcript pushes', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer(config());
  });
  after(() => server.stop());

  it('an interval change applies from the next cycle; pushes are sent even when empty', async () => {
    const d = await device(server, 'iv:00:00:01');
    await startMeeting(d);
    reload(server, config({ meeting: { transcript_push_interval_ms: 4000 } }));
    const first = await d.next(isPush, 6000);
    const second = await d.next(isPush, 7000);
    assert.equal(first.intervalMs, 3000, 'the running cycle keeps its interval');
    assert.equal(second.intervalMs, 4000, 'the next cycle uses the new one');
    assert.deepEqual(first.items, []);
    assert.equal(first.totalSegments, 0);
    await d.close();
  });

  it('no transcript push after finalize (seed #14); the final transcript carries the last 50 segments', async () => {
    reload(server, config());
    const d = await device(server, 'sd:14:00:01');
    await startMeeting(d);
    // 55 snippets, 10 per message, one message per rate window.
    for (let batch = 0; batch < 6; batch++) {
      const texts = Array.from({ length: batch < 5 ? 10 : 5 }, (_, i) => `segment number ${batch * 10 + i + 1}`);
      const ack = await snippet(d, texts);
      assert.equal(ack.accepted, texts.length);
      if (batch < 5) await sleep(1010);
    }
    d.send({ type: 'meeting', phase: 'finalize' });
    await d.next(isFinalizeAck);
    const ackIndex = d.received.findIndex(isFinalizeAck);
    const final = await d.next(isFinalTranscript, 5000);
    assert.equal((final.items as Json[]).length, 50);
    assert.equal((final.items as Json[])[0]!.text, 'segment number 6');
    assert.equal((final.items as Json[])[49]!.text, 'segment number 55');
    assert.equal(final.totalSegments, 55);
    await d.next(isSummary, 5000);
    await sleep(3500); // longer than one push interval
    assert.deepEqual(d.received.slice(ackIndex).filter(isPush), [], 'no periodic push after the finalize ack');
    await d.close();
  });
});

describe('meeting: snippet validation, dedup and rate limit', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer(config());
  });
  after(() => server.stop());

  it('schema errors answer SCHEMA_INVALID naming the missing field, and the session goes on', async () => {
    const d = await device(server, 'sc:00:00:01');
    const errorOf = async (msg: Json) => {
      d.send(msg);
      const e = await d.next((m) => m.type === 'meeting' && m.status === 'error');
      assert.equal(e.code, 'SCHEMA_INVALID');
      return String(e.message);
    };
    assert.match(await errorOf({ type: 'meeting', phase: 'snippet' }), /missing items/);
    assert.match(
      await errorOf({ type: 'meeting', phase: 'snippet', items: [{ tag: 'a' }] }),
      /missing items\[0\]\.text/,
    );
    assert.match(await errorOf({ type: 'meeting', phase: 'snippet', items: [{ text: 42 }] }), /items\[0\]\.text/);
    assert.match(await errorOf({ type: 'meeting', phase: 'snippet', items: 'hello' }), /items must be array/);
    assert.match(await errorOf({ type: 'meeting', phase: 'nonsense' }), /phase/);
    const ok = await snippet(d, 'still fine');
    assert.equal(ok.status, 'ok');
    await d.close();
  });

  it('a repeated text within 60 s is stored once; texts are normalised and cut to 2 KB', async () => {
    const d = await device(server, 'dd:00:00:01');
    const first = await snippet(d, 'Hello team');
    assert.deepEqual([first.accepted, first.duplicates], [1, 0]);
    const again = await snippet(d, ' hello,  TEAM! ');
    assert.deepEqual([again.accepted, again.duplicates], [0, 1]);
    await snippet(d, `${'测'.repeat(1000)}`);
    const empty = await snippet(d, '   ');
    assert.equal(empty.accepted, 0);
    const page = await data(server, `/supie/meetings/${String(first.sessionId)}/transcript`);
    assert.equal(page.total, 2);
    const items = page.items as Json[];
    assert.equal(items[0]!.text, 'Hello team');
    assert.equal(Buffer.byteLength(String(items[1]!.text)), 2046);
    await d.close();
  });

  it('more than 10 snippets per second per connection are refused with RATE_LIMITED', async () => {
    const d = await device(server, 'rl:00:00:01');
    for (let i = 0; i < 15; i++) d.send({ type: 'meeting', phase: 'snippet', items: [{ text: `burst ${i}` }] });
    const replies: Json[] = [];
    for (let i = 0; i < 15; i++) replies.push(await d.next(isAck, 3000));
    assert.equal(replies.filter((r) => r.status === 'ok' && r.accepted === 1).length, 10);
    const limited = replies.filter((r) => r.code === 'RATE_LIMITED');
    assert.equal(limited.length, 5);
    const page = await data(server, `/supie/meetings/${String(replies[0]!.sessionId)}/transcript`);
    assert.equal(page.total, 10);
    await d.close();
  });
});

describe('meeting: handover, voice, restart', () => {
  let fake: FakeOpenAi;
  let server: TestServer;
  before(async () => {
    fake = await FakeOpenAi.start();
    server = await startTestServer(config({ llm: fake.baseUrl }));
  });
  after(async () => {
    await server.stop();
    await fake.stop();
  });

  it('a handover in the middle of a meeting loses no snippet; the mode and the timers move to the new connection', async () => {
    const id = 'ho:00:00:01';
    const a1 = await device(server, id);
    await startMeeting(a1);
    const before = ['one', 'two', 'three'].map((w) => `before handover ${w}`);
    for (const t of before) assert.equal((await snippet(a1, t)).accepted, 1);
    const a2 = await device(server, id);
    await a1.next((m) => m.type === 'system' && m.event === 'replaced');
    // The old connection is still open for handover_close_ms: what it sends is still taken.
    assert.equal((await snippet(a1, 'sent on the old connection')).accepted, 1);
    const afterTexts = ['after handover one', 'after handover two'];
    for (const t of afterTexts) assert.equal((await snippet(a2, t)).accepted, 1);
    const again = await startMeeting(a2);
    assert.equal(again.idempotent, true, 'meeting mode survived the handover');
    const push = await a2.next(isPush, 6000);
    assert.equal(push.totalSegments, 6);
    await a1.closed;
    assert.deepEqual(a1.all(isPush), [], 'the replaced connection pushes nothing');

    fake.chat = { chunks: [MINUTES] };
    a2.send({ type: 'meeting', phase: 'finalize' });
    const s = await a2.next(isSummary, 10_000);
    assert.equal(s.sourceSegments, 6);
    const page = await data(server, `/supie/meetings/${String(s.sessionId)}/transcript`);
    assert.deepEqual(
      (page.items as Json[]).map((i) => i.text),
      [...before, 'sent on the old connection', ...afterTexts],
    );
    await a2.close();
  });

  it('typed text and speech in meeting mode become snippets (speaker = device), never a chat turn; voice phrases switch modes', async () => {
    reload(server, config({ llm: fake.baseUrl, meeting: { prefer_device_vad: false } }));
    try {
      const id = 'vo:00:00:01';
      const d = await device(server, id);
      const calls = fake.requests.length;
      d.send({ type: 'listen', state: 'detect', text: 'start meeting' });
      const stt = await d.next('stt');
      assert.deepEqual([stt.intent, stt.target_mode], ['mode_switch', 'meeting']);
      await d.next((m) => m.type === 'mode' && m.state === 'start' && m.mode === 'meeting');

      d.send({ type: 'listen', state: 'detect', text: 'the roadmap is approved' });
      d.send({ type: 'listen', state: 'start', mode: 'auto' });
      await streamPcm(d, join16(silence(400), speechPcm('what time is it'), silence(1500)));
      // A push carries what arrived since the previous one: under load the two snippets can straddle a push.
      const pushed = () => d.all(isPush).flatMap((p) => p.items as Json[]);
      await waitFor(() => pushed().length >= 2, 12_000, 'pushes with both snippets');
      assert.deepEqual(
        pushed().map((i) => [i.text, i.speakerId]),
        [
          ['the roadmap is approved', id],
          ['what time is it', id],
        ],
      );
      assert.equal(fake.requests.length, calls, 'no chat LLM call in meeting mode');
      assert.equal(d.all('llm').length, 0);
      assert.equal(d.all('stt').length, 1, 'only the mode switch was echoed');

      d.send({ type: 'listen', state: 'detect', text: 'end meeting' });
      await d.next((m) => m.type === 'mode' && m.state === 'end' && m.mode === 'meeting');
      await d.next(isFinalizeAck);
      const s = await d.next(isSummary, 10_000);
      assert.equal(s.sourceSegments, 2);
      await d.close();
    } finally {
      reload(server, config({ llm: fake.baseUrl }));
    }
  });

  it('finalize resets the ASR stream (seed #8): an utterance cut by finalize never surfaces later', async () => {
    const d = await device(server, 'as:00:00:01');
    await startMeeting(d);
    await snippet(d, 'something to summarize');
    d.send({ type: 'listen', state: 'start', mode: 'manual' });
    await streamPcm(d, join16(speechPcm('what time is it'), silence(300)), { speed: 3 });
    fake.chat = { chunks: [MINUTES] };
    const calls = fake.requests.length;
    d.send({ type: 'meeting', phase: 'finalize' });
    await d.next(isSummary, 10_000);
    // The device ends its utterance only now: had the stream survived, this would become a chat turn.
    d.send({ type: 'listen', state: 'stop' });
    await sleep(2500);
    assert.deepEqual(d.all('stt'), []);
    assert.equal(fake.requests.length - calls, 1, 'only the summary call');
    await d.close();
  });

  it('meeting.disable_tts with chat allowed: the snippet is stored and the reply is tts start/stop placeholders only', async () => {
    reload(server, config({ llm: fake.baseUrl, meeting: { disable_tts: true, disable_chat_on_snippet: false } }));
    try {
      const d = await device(server, 'tt:00:00:01');
      await startMeeting(d);
      const cue = await d.next((m) => m.type === 'tts' && m.state === 'start');
      assert.equal(cue.url, undefined, 'placeholder cue only');
      await d.next((m) => m.type === 'tts' && m.state === 'stop');
      d.send({ type: 'listen', state: 'detect', text: 'please note the budget' });
      await d.next((m) => m.type === 'tts' && m.state === 'start');
      await d.next((m) => m.type === 'tts' && m.state === 'stop');
      const push = await d.next(isPush, 6000);
      assert.deepEqual(
        (push.items as Json[]).map((i) => i.text),
        ['please note the budget'],
      );
      assert.equal(d.binary.length, 0, 'no audio frames');
      await d.close();
    } finally {
      reload(server, config({ llm: fake.baseUrl }));
    }
  });
});

describe('meeting: resume after a server restart', () => {
  let fake: FakeOpenAi;
  let dataDir: string;
  before(async () => {
    fake = await FakeOpenAi.start();
    dataDir = tempDir();
  });
  after(async () => {
    await fake.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('an open meeting survives a restart: timers resume on reconnect, nothing is lost, one summary even across restarts', async () => {
    const id = 'rs:00:00:01';
    const s1 = await startTestServer(config({ llm: fake.baseUrl }), { dataDir });
    let d = await device(s1, id);
    await startMeeting(d);
    for (const t of ['first point', 'second point', 'third point']) await snippet(d, t);
    await s1.close();
    await d.closed;

    const s2 = await startTestServer(config({ llm: fake.baseUrl }), { dataDir });
    d = await device(s2, id);
    const push = await d.next(isPush, 6000);
    assert.equal(push.totalSegments, 3, 'the pending snippets were kept and merged');
    assert.equal((await startMeeting(d)).idempotent, true, 'meeting mode restored on reconnect');
    await snippet(d, 'fourth point');
    fake.chat = { chunks: [MINUTES] };
    d.send({ type: 'meeting', phase: 'finalize' });
    const summary = await d.next(isSummary, 10_000);
    assert.equal(summary.sourceSegments, 4);
    await s2.close();
    await d.closed;

    const s3 = await startTestServer(config({ llm: fake.baseUrl }), { dataDir });
    d = await device(s3, id);
    d.send({ type: 'meeting', phase: 'finalize' });
    const again = await d.next(isSummary, 5000);
    assert.equal(again.idempotent, true);
    assert.equal(again.sessionId, summary.sessionId);
    assert.deepEqual(again.bullets, summary.bullets);
    await d.close();
    await s3.close();
  });

  it('a finalize cut by a shutdown is finished at the next start, once', async () => {
    const id = 'rs:00:00:02';
    const s1 = await startTestServer(config({ llm: fake.baseUrl, meeting: { llm: { timeout_ms: 60_000 } } }), {
      dataDir,
    });
    let d = await device(s1, id);
    await startMeeting(d);
    await snippet(d, 'a point worth summarizing');
    fake.chat = { hang: true };
    d.send({ type: 'meeting', phase: 'finalize' });
    const ack = await d.next(isFinalizeAck);
    await d.next((m) => m.phase === 'progress' && m.stage === 'llm_start');
    await s1.close();
    await d.closed;
    assert.equal(d.all(isSummary).length, 0);

    fake.chat = { chunks: [MINUTES] };
    const calls = fake.requests.length;
    const s2 = await startTestServer(config({ llm: fake.baseUrl }), { dataDir });
    const detail = await waitFor(
      async () => {
        const r = await data(s2, `/supie/meetings/${String(ack.sessionId)}`);
        return r.status === 'done' ? r : undefined;
      },
      10_000,
      'the resumed finalize',
    );
    assert.equal((detail.summary as Json).title, 'Release review for version two');
    assert.equal(fake.requests.length - calls, 1);
    d = await device(s2, id);
    d.send({ type: 'meeting', phase: 'finalize' });
    const s = await d.next(isSummary, 5000);
    assert.equal(s.idempotent, true);
    assert.equal(s.sessionId, ack.sessionId);
    await d.close();
    await s2.close();
  });
});

describe('meeting: webhook outbox', () => {
  let receiver: Receiver;
  let dataDir: string;
  before(async () => {
    receiver = await new Receiver().start();
    dataDir = tempDir();
  });
  after(async () => {
    await receiver.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const run = async (server: TestServer, id: string) => {
    const d = await device(server, id);
    await startMeeting(d);
    await snippet(d, 'something to report');
    d.send({ type: 'meeting', phase: 'finalize' });
    await d.next(isSummary, 5000);
    await d.close();
  };

  it('a failed delivery is retried once after 2–5 s, with the same signed body', async () => {
    receiver.respond = (n) => (n === 1 ? 500 : 200);
    const server = await startTestServer(config({ meeting: { webhook: { url: receiver.url, secret: 's' } } }), {
      dataDir,
    });
    try {
      await run(server, 'wh:00:00:01');
      await waitFor(() => receiver.requests.length >= 2, 8000, 'the retry');
      const [first, second] = receiver.requests;
      assert.equal(first!.body, second!.body);
      assert.equal(first!.headers['x-meeting-signature'], second!.headers['x-meeting-signature']);
      assert.equal(first!.headers['x-meeting-delivery'], second!.headers['x-meeting-delivery']);
      await sleep(300);
      assert.equal(receiver.requests.length, 2);
    } finally {
      await server.close();
    }
  });

  it('a delivery cut by a shutdown is sent from the durable outbox after the restart', async () => {
    receiver.requests.length = 0;
    receiver.respond = (n) => (n === 1 ? 'hang' : 200);
    const s1 = await startTestServer(config({ meeting: { webhook: { url: receiver.url, secret: 's' } } }), { dataDir });
    await run(s1, 'wh:00:00:02');
    await waitFor(() => receiver.requests.length === 1, 5000, 'first attempt');
    await s1.close();
    const s2 = await startTestServer(config({ meeting: { webhook: { url: receiver.url, secret: 's' } } }), { dataDir });
    try {
      await waitFor(() => receiver.requests.length >= 2, 5000, 'delivery after restart');
      assert.equal(receiver.requests[1]!.body, receiver.requests[0]!.body);
      assert.equal(
        receiver.requests[1]!.headers['x-meeting-delivery'],
        receiver.requests[0]!.headers['x-meeting-delivery'],
      );
    } finally {
      await s2.close();
    }
  });
});

describe('meeting: HTTP API (D21)', () => {
  let server: TestServer;
  let meetingId: string;
  const TOKEN = 'api-token';
  const auth = { headers: { authorization: `Bearer ${TOKEN}` } };
  before(async () => {
    server = await startTestServer(config({ server: { meeting_api_token: TOKEN } }));
    const d = await device(server, 'ap:00:00:01');
    await startMeeting(d);
    const ack = await snippet(
      d,
      Array.from({ length: 7 }, (_, i) => `api segment ${i + 1}`),
    );
    meetingId = String(ack.sessionId);
    d.send({ type: 'meeting', phase: 'finalize' });
    await d.next(isSummary, 5000);
    await d.close();
  });
  after(() => server.stop());

  const get = (path: string, init: RequestInit = auth) => api(server, path, init);

  it('needs the token when meeting_api_token is set: Bearer, X-API-Token or ?token=', async () => {
    const none = await get('/supie/meetings/recent', {});
    assert.equal(none.status, 401);
    assert.equal(none.body.success, false);
    assert.equal((await get('/supie/meetings/recent', { headers: { authorization: 'Bearer wrong' } })).status, 401);
    assert.equal((await get('/supie/meetings/recent')).status, 200);
    assert.equal((await get('/supie/meetings/recent', { headers: { 'x-api-token': TOKEN } })).status, 200);
    assert.equal((await get(`/supie/meetings/recent?token=${TOKEN}`, {})).status, 200);
  });

  it('answers CORS preflights', async () => {
    const r = await fetch(server.url('/supie/meetings/recent'), {
      method: 'OPTIONS',
      headers: { origin: 'http://example.com', 'access-control-request-method': 'GET' },
    });
    assert.equal(r.status, 204);
    assert.equal(r.headers.get('access-control-allow-origin'), '*');
    assert.match(r.headers.get('access-control-allow-methods') ?? '', /GET/);
    const g = await get('/supie/meetings/recent');
    assert.equal(g.headers.get('access-control-allow-origin'), '*');
  });

  it('recent, detail, transcript and export', async () => {
    const recent = (await get('/supie/meetings/recent?deviceId=AP:00')).body.data as Json[];
    assert.equal(recent.length, 1);
    assert.equal(recent[0]!.sessionId, meetingId);
    assert.equal(recent[0]!.segmentsCount, 7);
    assert.deepEqual((await get('/supie/meetings/recent?deviceId=zz')).body.data, []);

    // An open meeting counts its lines before they are merged into segments (they wait as pending until a push).
    const open = await device(server, 'ap:00:00:02');
    await startMeeting(open);
    await snippet(open, ['open line 1', 'open line 2', 'open line 3']);
    const listed = (await get('/supie/meetings/recent?deviceId=ap:00:00:02&status=open')).body.data as Json[];
    assert.equal(listed[0]!.status, 'open');
    assert.equal(listed[0]!.segmentsCount, 3);
    await open.close();

    const detail = (await get(`/supie/meetings/${meetingId}`)).body.data as Json;
    assert.equal(detail.deviceId, 'ap:00:00:01');
    for (const k of SEVEN) assert.ok(k in (detail.summary as Json), k);
    assert.equal((detail.transcriptPreview as Json[]).length, 5);
    assert.equal(
      ((await get(`/supie/meetings/${meetingId}?preview=100`)).body.data as Json).transcriptPreview instanceof Array,
      true,
    );
    assert.equal(
      (((await get(`/supie/meetings/${meetingId}?preview=100`)).body.data as Json).transcriptPreview as Json[]).length,
      7,
    );
    assert.equal(
      (((await get(`/supie/meetings/${meetingId}?preview=0`)).body.data as Json).transcriptPreview as Json[]).length,
      1,
    );

    const exported = (await get(`/supie/meetings/${meetingId}/export`)).body.data as Json;
    assert.equal((exported.segments as Json[]).length, 7);
    assert.equal((exported.summary as Json).sourceSegments, 7);
    assert.equal((exported.meeting as Json).sessionId, meetingId);
  });

  it('clamps pagination: limit 1..500, offset ≥ 0, out of range gives no items and the true total', async () => {
    const page = async (q: string) => (await get(`/supie/meetings/${meetingId}/transcript${q}`)).body.data as Json;
    assert.deepEqual(
      await page('?limit=100000').then((p) => [p.limit, (p.items as Json[]).length, p.total]),
      [500, 7, 7],
    );
    assert.deepEqual(await page('?limit=0').then((p) => [p.limit, (p.items as Json[]).length]), [1, 1]);
    assert.deepEqual(await page('?limit=-3&offset=-5').then((p) => [p.limit, p.offset]), [1, 0]);
    assert.deepEqual(await page('?offset=1000').then((p) => [(p.items as Json[]).length, p.total]), [0, 7]);
    assert.deepEqual(await page('?offset=5&limit=10').then((p) => (p.items as Json[]).map((i) => i.text)), [
      'api segment 6',
      'api segment 7',
    ]);
    assert.equal((await get('/supie/meetings/recent?limit=100000&offset=-1')).status, 200);
    assert.equal((await get('/supie/meetings/recent?fromTs=abc')).status, 400);
  });

  it('bad ids are 400, unknown ids 404', async () => {
    for (const bad of ['a..b', 'x%2Fy', 'has%20space', 'a'.repeat(200)]) {
      for (const suffix of ['', '/transcript', '/export']) {
        const r = await get(`/supie/meetings/${bad}${suffix}`);
        assert.equal(r.status, 400, `${bad}${suffix}`);
        assert.equal(r.body.success, false);
      }
    }
    for (const suffix of ['', '/transcript', '/export']) {
      const r = await get(`/supie/meetings/no-such-meeting${suffix}`);
      assert.equal(r.status, 404);
      assert.deepEqual(r.body, { success: false, error: 'not found' });
    }
  });

  it('rate-limits per client address with 429', async () => {
    reload(server, config({ server: { meeting_api_token: TOKEN, api_rate_limit: 3 } }));
    try {
      const results = await Promise.all(Array.from({ length: 10 }, () => get('/supie/meetings/recent')));
      const limited = results.filter((r) => r.status === 429);
      assert.ok(limited.length >= 1, `${limited.length} answers were 429`);
      assert.equal(limited[0]!.body.success, false);
    } finally {
      reload(server, config({ server: { meeting_api_token: TOKEN } }));
    }
  });
});

describe('meeting: crash (SIGKILL) after acknowledgements', () => {
  let dataDir: string;
  before(() => {
    dataDir = tempDir();
  });
  after(async () => {
    await killAllCli();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('every acknowledged snippet is stored when the process is killed right after the acks', async () => {
    writeFileSync(
      join(dataDir, 'config.yaml'),
      [
        'server:',
        '  ip: 127.0.0.1',
        'log:',
        '  log_level: warn',
        'meeting:',
        '  transcript_push_interval_ms: 15000',
        '',
      ].join('\n'),
    );
    const port = await freePort();
    let proc = spawnCli(['serve', '--data-dir', dataDir, '--port', String(port)]);
    await waitForHealth(proc, port);
    const id = 'kk:00:00:01';
    const dev = await device(`ws://127.0.0.1:${port}/xiaozhi/v1/`, id);
    const settled: string[] = [];
    for (let round = 0; round < 2; round++) {
      const texts = Array.from({ length: 10 }, (_, i) => `crash round ${round} snippet ${i}`);
      for (const text of texts) dev.send({ type: 'meeting', phase: 'snippet', items: [{ text }] });
      for (let i = 0; i < texts.length; i++) assert.equal((await dev.next(isAck)).accepted, 1);
      settled.push(...texts);
      await sleep(1010);
    }
    // A last batch still in flight: kill as soon as the first acknowledgements arrive.
    const inFlight = Array.from({ length: 10 }, (_, i) => `in flight ${i}`);
    for (const text of inFlight) dev.send({ type: 'meeting', phase: 'snippet', items: [{ text }] });
    await dev.next(isAck);
    await dev.next(isAck);
    proc.signal('SIGKILL');
    await proc.exited;
    await dev.closed;
    // Every acknowledgement the server sent before it died has arrived by now.
    const acked = dev.all(isAck).filter((a) => a.accepted === 1).length - settled.length;

    proc = spawnCli(['serve', '--data-dir', dataDir, '--port', String(port)]);
    try {
      await waitForHealth(proc, port);
      const get = async (path: string) =>
        ((await (await fetch(`http://127.0.0.1:${port}${path}`)).json()) as Json).data as Json & Json[];
      const [meeting] = await get(`/supie/meetings/recent?deviceId=${id}&status=all`);
      assert.equal(meeting?.status, 'open');
      const page = await get(`/supie/meetings/${String(meeting!.sessionId)}/transcript?limit=500`);
      const stored = new Set((page.items as Json[]).map((i) => String(i.text)));
      for (const t of settled) assert.ok(stored.has(t), `acknowledged "${t}" is stored`);
      const storedInFlight = inFlight.filter((t) => stored.has(t)).length;
      assert.ok(storedInFlight >= acked, `${acked} in-flight snippets were acknowledged, ${storedInFlight} stored`);
    } finally {
      await proc.kill();
    }
  });
});
