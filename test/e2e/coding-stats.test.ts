import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { validateConfig } from '../../src/config/load.js';
import { TestDevice, type Json } from '../support/device.js';
import { FakeOpenAi } from '../support/fake-openai.js';
import { startTestServer, tempDir, type TestServer } from '../support/server.js';
import { sleep } from '../support/wait.js';

/** Coding mode (C5) and the server.stats broadcast (C6), end to end over real sockets. */

async function connect(server: TestServer, deviceId: string): Promise<TestDevice> {
  const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId });
  await dev.hello();
  return dev;
}

async function settle(dev: TestDevice): Promise<void> {
  dev.send({ type: 'ping' });
  await dev.next('pong');
}

const ack = (event: string) => (m: Json) => m.type === 'coding' && m.status === 'ok' && m.event === event;
const relayed = (event: string) => (m: Json) => m.type === 'coding' && m.event === event && typeof m.from === 'string';
const isInsight = (m: Json) => m.type === 'coding' && m.event === 'insight';
const isSummary = (m: Json) => m.type === 'coding' && m.event === 'summary';

const LLM_ANSWER = JSON.stringify({
  insights: ['one', 'two', 'three', 'four', 'five', 'six', 'seven'],
  risks: ['r1', 'r2', 'r3', 'r4', 'r5'],
  actions: ['a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7', 'a8'],
  nextSteps: ['n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7'],
});

describe('coding mode (C5)', () => {
  let fake: FakeOpenAi;
  let server: TestServer;
  const open: TestDevice[] = [];
  before(async () => {
    fake = await FakeOpenAi.start();
    server = await startTestServer({
      selected_module: { LLM: 'Chat' },
      LLM: {
        Chat: { type: 'openai', base_url: fake.baseUrl, model_name: 'chat-model', api_key: 'k', timeout_ms: 3000 },
        Coder: { type: 'openai', base_url: fake.baseUrl, model_name: 'coder-model', api_key: 'k', timeout_ms: 3000 },
      },
      llm_by_mode: { coding: 'Coder' },
    });
  });
  after(async () => {
    await Promise.all(open.map((d) => d.close()));
    await server.stop();
    await fake.stop();
  });
  const dev = async (id: string) => {
    const d = await connect(server, id);
    open.push(d);
    return d;
  };

  it('acks every event without echoing text, relays it to the others with `from`', async () => {
    const a = await dev('cod:a1');
    const b = await dev('cod:b1');
    a.send({ type: 'coding', event: 'start' });
    assert.deepEqual(await a.next(ack('start')), { type: 'coding', status: 'ok', event: 'start' });
    assert.deepEqual(await b.next(relayed('start')), { type: 'coding', event: 'start', from: 'cod:a1' });

    a.send({ type: 'coding', event: 'log', level: 'info', text: 'secret build output' });
    const logAck = await a.next(ack('log'));
    assert.deepEqual(logAck, { type: 'coding', status: 'ok', event: 'log' });
    assert.ok(!JSON.stringify(logAck).includes('secret'));
    const relayedLog = await b.next(relayed('log'));
    assert.equal(relayedLog.text, 'secret build output');
    assert.equal(relayedLog.level, 'info');
    assert.equal(relayedLog.from, 'cod:a1');

    a.send({ type: 'coding', event: 'phase', phase: 'build' });
    await a.next(ack('phase'));
    assert.equal((await b.next(relayed('phase'))).phase, 'build');

    a.send({ type: 'coding', event: 'clear' });
    await a.next(ack('clear'));
    await b.next(relayed('clear'));
    await settle(a);
    assert.equal(
      a.all((m) => m.type === 'coding' && typeof m.from === 'string' && m.event !== 'insight').length,
      0,
      'the sender does not get its own relays',
    );
  });

  it('an error log gets an insight at once from the coding LLM, capped (5/4/6/6), to the device and the others', async () => {
    fake.chat = { chunks: [LLM_ANSWER] };
    const a = await dev('cod:a2');
    const b = await dev('cod:b2');
    a.send({ type: 'coding', event: 'start' });
    await a.next(ack('start'));
    const before = fake.requests.length;
    a.send({ type: 'coding', event: 'log', level: 'error', text: 'Error: Cannot find module ./x.js' });
    const insight = await a.next(isInsight, 4000);
    assert.equal(insight.source, 'llm');
    assert.equal(insight.from, 'cod:a2');
    assert.deepEqual(insight.insights, ['one', 'two', 'three', 'four', 'five']);
    assert.deepEqual(insight.risks, ['r1', 'r2', 'r3', 'r4']);
    assert.equal((insight.actions as string[]).length, 6);
    assert.equal((insight.nextSteps as string[]).length, 6);
    assert.ok('phase' in insight);
    const forB = await b.next(isInsight, 4000);
    assert.deepEqual(forB.insights, insight.insights);
    assert.equal(forB.from, 'cod:a2');
    const req = fake.requests[before]!;
    assert.equal(req.body.model, 'coder-model', 'the coding purpose of llm_by_mode');
    assert.equal(req.body.max_tokens, 512);
  });

  it('a burst of info logs gives ONE debounced insight', async () => {
    fake.chat = { chunks: [LLM_ANSWER] };
    const a = await dev('cod:a3');
    a.send({ type: 'coding', event: 'start' });
    await a.next(ack('start'));
    const before = fake.requests.length;
    for (let i = 0; i < 6; i++) a.send({ type: 'coding', event: 'log', level: 'info', text: `compiling ${i}` });
    for (let i = 0; i < 6; i++) await a.next(ack('log'));
    await a.next(isInsight, 5000);
    await sleep(500); // a second insight for the same burst would come right after the first
    assert.equal(fake.requests.length - before, 1, 'one LLM call for the burst');
    await settle(a);
    assert.equal(a.all(isInsight).length, 1);
  });

  it('falls back to heuristics when the LLM is down; stop gives exactly one summary', async () => {
    fake.chat = { status: 500 };
    const a = await dev('cod:a4');
    const b = await dev('cod:b4');
    a.send({ type: 'coding', event: 'start' });
    await a.next(ack('start'));
    a.send({ type: 'coding', event: 'step', name: 'unit tests', status: 'fail' });
    await a.next(ack('step'));
    const step = await b.next(relayed('step'));
    assert.deepEqual([step.name, step.status, step.from], ['unit tests', 'fail', 'cod:a4']);
    const insight = await a.next(isInsight, 4000);
    assert.equal(insight.source, 'heuristic');
    assert.ok((insight.insights as string[]).length > 0);
    assert.ok(
      (insight.risks as string[]).some((r) => /unit tests/.test(r)),
      JSON.stringify(insight.risks),
    );
    assert.ok((insight.nextSteps as string[]).some((r) => /Re-run/.test(r)));

    a.send({ type: 'coding', event: 'stop' });
    assert.deepEqual(await a.next(ack('stop')), { type: 'coding', status: 'ok', event: 'stop' });
    const summary = await a.next(isSummary, 4000);
    assert.equal(summary.source, 'heuristic');
    for (const k of ['insights', 'risks', 'actions', 'nextSteps']) assert.ok(Array.isArray(summary[k]), k);
    assert.equal((await b.next(isSummary, 4000)).from, 'cod:a4');

    a.send({ type: 'coding', event: 'stop' });
    assert.equal((await a.next(ack('stop'))).idempotent, true);
    await settle(a);
    assert.equal(a.all(isSummary).length, 1, 'a second stop does not summarise again');
  });

  it('mode end coding summarises once; bad events get SCHEMA_INVALID', async () => {
    fake.chat = { chunks: [LLM_ANSWER] };
    const a = await dev('cod:a5');
    a.send({ type: 'mode', state: 'start', mode: 'coding' });
    await a.next((m) => m.type === 'mode' && m.status === 'ok');
    a.send({ type: 'coding', event: 'log', level: 'warn', text: 'deprecated API' });
    await a.next(ack('log'));
    a.send({ type: 'mode', state: 'end', mode: 'coding' });
    const summary = await a.next(isSummary, 4000);
    assert.equal(summary.source, 'llm');
    for (const bad of [{ event: 'dance' }, { event: 'log' }, { event: 'step' }, { event: 'phase', phase: '' }]) {
      a.send({ type: 'coding', ...bad });
      const err = await a.next((m) => m.type === 'coding' && m.status === 'error');
      assert.equal(err.code, 'SCHEMA_INVALID');
    }
  });
});

describe('server.stats broadcast (C6)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ server: { stats_interval_ms: 60_000 } });
  });
  after(() => server.stop());

  const isStats = (m: Json) => m.type === 'server' && m.event === 'stats';
  const listing =
    (...ids: string[]) =>
    (m: Json) =>
      isStats(m) && ids.every((id) => (m.online as string[]).includes(id));
  const notListing = (id: string) => (m: Json) => isStats(m) && !(m.online as string[]).includes(id);

  it('goes to every device on register and unregister, with the fork fields', async () => {
    const a = await connect(server, 'st:a');
    const first = await a.next(listing('st:a'));
    assert.deepEqual(Object.keys(first).sort(), [
      'cpuPercent',
      'deviceCount',
      'event',
      'memPercent',
      'memTotalMB',
      'memUsedMB',
      'online',
      'ts',
      'type',
    ]);
    for (const k of ['cpuPercent', 'memPercent', 'memUsedMB', 'memTotalMB', 'ts', 'deviceCount'])
      assert.equal(typeof first[k], 'number', k);
    assert.ok((first.memTotalMB as number) > 0);
    assert.ok((first.cpuPercent as number) >= 0 && (first.cpuPercent as number) <= 100);

    const b = await connect(server, 'st:b');
    const both = await a.next(listing('st:a', 'st:b'));
    assert.equal(both.deviceCount, (both.online as string[]).length);
    await b.next(listing('st:a', 'st:b'));
    await b.close();
    await a.next(notListing('st:b'));
    await a.close();
  });

  it('a device opts out of presence broadcasts by hello flag or devices.yaml (its entry, its group); others still get them', async () => {
    const dataDir = tempDir();
    writeFileSync(
      join(dataDir, 'devices.yaml'),
      stringify({
        groups: { quiet: { presence: false } },
        devices: { 'st:yaml-out': { presence: false }, 'st:group-out': { group: 'quiet' } },
      }),
    );
    const own = await startTestServer({ server: { stats_interval_ms: 60_000 } }, { dataDir });
    try {
      const helloOut = await TestDevice.connect({ url: own.url('/xiaozhi/v1/', 'ws'), deviceId: 'st:hello-out' });
      await helloOut.hello({ features: { mcp: true, presence: false } });
      const optedOut = [helloOut, await connect(own, 'st:yaml-out'), await connect(own, 'st:group-out')];
      const listening = await connect(own, 'st:in');
      const late = await connect(own, 'st:late');
      // One broadcast goes to every target in the same turn: once st:in has it, the others would have it too,
      // and a pong sent after it arrives after it.
      await listening.next(listing('st:late'), 5000);
      for (const dev of optedOut) {
        await settle(dev);
        assert.equal(dev.all(listing('st:late')).length, 0, `${dev.opts.deviceId} opted out`);
      }
      await Promise.all([...optedOut, listening, late].map((d) => d.close()));
    } finally {
      await own.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('is sent on the interval (read each cycle, so a reload applies from the next one)', async () => {
    const periodic = await startTestServer({ server: { stats_interval_ms: 100 } });
    try {
      const a = await connect(periodic, 'st:p');
      await a.next(listing('st:p'));
      // No presence change from here on: these come from the interval.
      for (let i = 0; i < 3; i++) await a.next(listing('st:p'), 3000);
      periodic.ctx.config.replace(
        validateConfig({
          server: { ip: '127.0.0.1', port: 0, stats_interval_ms: 60_000 },
          log: { log_level: 'silent' },
        }).config,
      );
      await sleep(400); // the cycle armed before the reload may still fire once
      const count = a.all(isStats).length;
      await sleep(400);
      assert.equal(a.all(isStats).length, count, 'the 60 s interval is in force');
      await a.close();
    } finally {
      await periodic.stop();
    }
  });
});
