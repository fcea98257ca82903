import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { validateConfig } from '../../src/config/load.js';
import { ConfigStore } from '../../src/config/store.js';
import { WorkflowService } from '../../src/features/workflow/index.js';
import { registerWorkflowApi, type MeetingSummaryLookup } from '../../src/features/workflow/api.js';
import { SqliteTaskStore } from '../../src/features/workflow/store.js';
import { DeviceDirectory } from '../../src/hub/directory.js';
import { LocalDeviceRegistry, type DeviceConnection } from '../../src/hub/registry.js';
import { silentLogger } from '../../src/observability/log.js';
import { Metrics } from '../../src/observability/metrics.js';
import { openDatabase } from '../../src/store/sqlite.js';
import { ApiRoutes } from '../../src/transport/api.js';
import { HttpRoutes } from '../../src/transport/http-app.js';
import { SecretThrottle } from '../../src/transport/secret-throttle.js';
import { TestDevice, type Json } from '../support/device.js';
import { metricValue, startTestServer, tempDir, type TestServer } from '../support/server.js';
import { sleep, waitFor } from '../support/wait.js';

/** A device id whose default workflow group (its first 8 characters) is `group`. */
const idIn = (group: string, n: number) => `${group}:00:00:${String(n).padStart(2, '0')}`;

const isSnap = (m: Json) => m.type === 'workflow' && m.event === 'update' && Array.isArray(m.tasks);
const snapOf = (group: string) => (m: Json) => isSnap(m) && m.groupKey === group;
const isAck = (event: string) => (m: Json) => m.type === 'workflow' && m.status === 'ok' && m.event === event;
const isError = (m: Json) => m.type === 'workflow' && m.status === 'error';
const isCommand = (intent: string) => (m: Json) =>
  m.type === 'workflow' && m.event === 'command' && m.intent === intent;
const tasksOf = (m: Json) => m.tasks as Json[];
const ids = (m: Json) => tasksOf(m).map((t) => t.id);

/** Everything the server sent this device before now: a ping's pong comes after all of it on the same socket. */
async function settle(dev: TestDevice): Promise<void> {
  dev.send({ type: 'ping' });
  await dev.next('pong');
}

/** How many messages the device has received so far (a mark for `arrived`). */
const at = (dev: TestDevice) => dev.received.length;

/** The first message matching `pred` at or after index `from` of what the device received (stale ones are skipped). */
function arrived(dev: TestDevice, from: number, pred: (m: Json) => boolean, timeoutMs = 3000): Promise<Json> {
  return waitFor(() => dev.received.slice(from).find(pred), timeoutMs, 'a matching message');
}

/** Snapshots that reached a device from index `from` of its received list. */
const snapsSince = (dev: TestDevice, from: number) => dev.received.slice(from).filter(isSnap);

/** Base config: cheap VAD, no API rate limit (the tests call the API in bursts). */
const BASE = { selected_module: { VAD: 'EnergyVAD' }, server: { api_rate_limit: 0 } };

async function http(
  server: { url(path?: string): string },
  path: string,
  init: RequestInit = {},
): Promise<{ status: number; body: Json }> {
  const res = await fetch(server.url(path), init);
  return { status: res.status, body: (await res.json()) as Json };
}

const postJson = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});

describe('workflow over WebSocket: events, groups, idempotency, schema errors', () => {
  const A = 'a1:00:0a';
  const B = 'a1:00:0b';
  const A1 = idIn(A, 1);
  const A2 = idIn(A, 2);
  const B1 = idIn(B, 1);
  let server: TestServer;
  let a1: TestDevice;
  let a2: TestDevice;
  let b1: TestDevice;

  before(async () => {
    server = await startTestServer({ ...BASE, workflow: { device_alias: { [A1.toUpperCase()]: 'Alice' } } });
    const connect = async (deviceId: string) => {
      const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId });
      await dev.hello();
      return dev;
    };
    [a1, a2, b1] = await Promise.all([connect(A1), connect(A2), connect(B1)]);
  });
  after(async () => {
    await Promise.all([a1, a2, b1].map((d) => d.close()));
    await server.stop();
  });

  it('update creates tasks; every device of the changed group gets its group snapshot, the other group gets nothing', async () => {
    const [fa1, fa2, fb1] = [at(a1), at(a2), at(b1)] as const;
    a1.send({
      type: 'workflow',
      event: 'update',
      tasks: [
        { id: 't1', title: 'Write the spec', priority: 1, description: 'all of it', assignees: ['bob'] },
        { id: 't2', title: 'Review', priority: 0 },
      ],
    });
    const ack = await a1.next(isAck('update'));
    assert.deepEqual(ack.created, ['t1', 't2']);
    for (const [dev, from] of [
      [a1, fa1],
      [a2, fa2],
    ] as const) {
      const snap = await arrived(dev, from, snapOf(A));
      assert.deepEqual(ids(snap), ['t2', 't1'], 'open tasks by priority, P0 first');
      const t1 = tasksOf(snap).find((t) => t.id === 't1')!;
      assert.equal(t1.status, 'open');
      assert.equal(t1.description, 'all of it');
      assert.deepEqual(t1.assignees, ['bob']);
      assert.equal(t1.groupKey, A);
    }
    await settle(b1);
    assert.equal(snapsSince(b1, fb1).length, 0, 'no snapshot crosses into another group');
    // The caller got exactly one snapshot (the push), not a second answer.
    await settle(a1);
    assert.equal(snapsSince(a1, fa1).length, 1);
  });

  it('update is field-level: only the fields sent change, unknown fields are kept and merged', async () => {
    const [fa1, fa2] = [at(a1), at(a2)] as const;
    a2.send({ type: 'workflow', event: 'update', tasks: [{ id: 't1', priority: 0, due: 'friday' }] });
    await a2.next(isAck('update'));
    const snap = await arrived(a1, fa1, snapOf(A));
    const t1 = tasksOf(snap).find((t) => t.id === 't1')!;
    assert.equal(t1.title, 'Write the spec');
    assert.equal(t1.priority, 0);
    assert.equal(t1.description, 'all of it');
    assert.deepEqual(t1.assignees, ['bob']);
    assert.equal(t1.due, 'friday');
    await arrived(a2, fa2, snapOf(A));
  });

  it('target group: task.groupKey > message groupKey > sender group; the caller still gets its own group', async () => {
    const fa1 = a1.received.length;
    let fa2 = at(a2);
    let fb1 = at(b1);
    const startA2 = fa2;
    a1.send({ type: 'workflow', event: 'update', tasks: [{ id: 'x1', title: 'for B, per task', groupKey: B }] });
    await a1.next(isAck('update'));
    const own = await arrived(a1, fa1, isSnap);
    assert.equal(own.groupKey, A, 'the caller gets its own group, not the full list');
    assert.ok(!ids(own).includes('x1'));
    assert.deepEqual(ids(await arrived(b1, fb1, snapOf(B))), ['x1']);

    fa2 = at(a2);
    fb1 = at(b1);
    a1.send({
      type: 'workflow',
      event: 'update',
      groupKey: B,
      tasks: [
        { id: 'x2', title: 'for B, per message' },
        { id: 'a9', title: 'task level wins', groupKey: A },
      ],
    });
    await a1.next(isAck('update'));
    assert.deepEqual(ids(await arrived(b1, fb1, snapOf(B))).sort(), ['x1', 'x2']);
    assert.ok(ids(await arrived(a2, fa2, snapOf(A))).includes('a9'));
    await settle(a2);
    assert.equal(snapsSince(a2, startA2).filter(snapOf(B)).length, 0);
  });

  it('update with an empty task list, and list, answer the caller with its snapshot (even an empty one)', async () => {
    let from = b1.received.length;
    b1.send({ type: 'workflow', event: 'update', tasks: [] });
    await b1.next(isAck('update'));
    assert.deepEqual(ids(await arrived(b1, from, snapOf(B))).sort(), ['x1', 'x2']);
    from = b1.received.length;
    b1.send({ type: 'workflow', event: 'list' });
    await b1.next(isAck('list'));
    await arrived(b1, from, snapOf(B));

    const lonely = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: idIn('a1:00:0c', 1) });
    lonely.send({ type: 'workflow', event: 'list' });
    const empty = await lonely.next(isSnap);
    assert.deepEqual(empty.tasks, []);
    await lonely.close();
  });

  it('complete is idempotent: a repeated complete is acked with idempotent:true and broadcasts nothing', async () => {
    const [fa1, fa2] = [at(a1), at(a2)] as const;
    a1.send({ type: 'workflow', event: 'complete', ids: ['t2'] });
    const ack = await a1.next(isAck('complete'));
    assert.equal(ack.idempotent, undefined);
    const snap = await arrived(a2, fa2, snapOf(A));
    assert.equal(tasksOf(snap).find((t) => t.id === 't2')?.status, 'done');
    await arrived(a1, fa1, snapOf(A));

    const from = a2.received.length;
    a1.send({ type: 'workflow', event: 'complete', ids: ['t2'] });
    assert.equal((await a1.next(isAck('complete'))).idempotent, true);
    await settle(a2);
    assert.equal(snapsSince(a2, from).length, 0);
  });

  it('assign: default owner is the caller as alias|device-id; the same owner again is idempotent with no broadcast', async () => {
    let fa2 = a2.received.length;
    a1.send({ type: 'workflow', event: 'assign', id: 't1' });
    const ack = await a1.next(isAck('assign'));
    assert.equal(ack.owner, `Alice|${A1}`);
    assert.equal(ack.idempotent, undefined);
    const snap = await arrived(a2, fa2, snapOf(A));
    assert.equal(tasksOf(snap).find((t) => t.id === 't1')?.owner, `Alice|${A1}`);

    fa2 = a2.received.length;
    a1.send({ type: 'workflow', event: 'assign', id: 't1' });
    assert.equal((await a1.next(isAck('assign'))).idempotent, true);
    await settle(a2);
    assert.equal(snapsSince(a2, fa2).length, 0);

    // An explicit owner: a bare id of a device with an alias is shown as alias|id.
    a2.send({ type: 'workflow', event: 'assign', id: 'a9', owner: A1.toUpperCase() });
    assert.equal((await a2.next(isAck('assign'))).owner, `Alice|${A1}`);
  });

  it('delete removes tasks in the group and pushes the new list', async () => {
    const fa1 = a1.received.length;
    a2.send({ type: 'workflow', event: 'delete', ids: ['a9', 'nope'] });
    const ack = await a2.next(isAck('delete'));
    assert.deepEqual(ack.notFound, ['nope']);
    assert.ok(!ids(await arrived(a1, fa1, snapOf(A))).includes('a9'));
  });

  it('schema errors are answered in the fork shape, nothing is written, the session lives on', async () => {
    const cases: [Json, RegExp][] = [
      [{ event: 'update', tasks: [{ id: 't1', priority: 7 }] }, /^priority must be integer 0\.\.3/],
      [{ event: 'update', tasks: [{ id: 't1', priority: 'high' }] }, /^priority must be integer 0\.\.3/],
      [{ event: 'update', tasks: [{ title: 'no id' }] }, /^id must be non-empty string/],
      [{ event: 'update', tasks: [{ id: 't1', status: 'finished' }] }, /^status must be open\|done/],
      [{ event: 'update', tasks: 'all' }, /^tasks must be array/],
      [{ event: 'update', tasks: [null] }, /^task must be object/],
      [{ event: 'delete', ids: [] }, /^ids must be non-empty string array$/],
      [{ event: 'delete', ids: 't1' }, /^ids must be non-empty string array$/],
      [{ event: 'complete', ids: [1, 2] }, /^ids must be non-empty string array$/],
      [{ event: 'assign' }, /^id must be non-empty string/],
      [{ event: 'assign', id: 't1', owner: 5 }, /^owner must be non-empty string/],
      [{ event: 'list', groupKey: '' }, /^groupKey must be non-empty string/],
      [{ event: 'explode' }, /^event must be one of update\|list\|complete\|delete\|assign$/],
      [{}, /^event must be one of/],
    ];
    for (const [msg, re] of cases) {
      a1.send({ type: 'workflow', ...msg });
      const err = await a1.next(isError);
      assert.equal(err.code, 'SCHEMA_INVALID', JSON.stringify(msg));
      assert.match(String(err.message), re, JSON.stringify(msg));
    }
    a1.send({ type: 'workflow', event: 'assign', id: 'ghost' });
    assert.equal((await a1.next(isError)).code, 'NOT_FOUND');
    const from = a1.received.length;
    a1.send({ type: 'workflow', event: 'list' });
    const snap = await arrived(a1, from, snapOf(A));
    assert.equal(tasksOf(snap).find((t) => t.id === 't1')?.priority, 0, 'the rejected updates wrote nothing');
    await settle(a1);
  });
});

describe('snapshot gate (seed #11) and working mode (C1)', () => {
  const G = 'a2:00:01';
  let server: TestServer;
  let owner: TestDevice;
  before(async () => {
    server = await startTestServer({ ...BASE, working: { disable_tts: true } });
    owner = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: idIn(G, 1) });
    await owner.hello();
    owner.send({
      type: 'workflow',
      event: 'update',
      tasks: [
        { id: 'k1', title: 'Second by priority', priority: 1 },
        { id: 'k2', title: 'First by priority', priority: 0 },
        { id: 'k3', title: 'Third by priority', priority: 2 },
      ],
    });
    await owner.next(isAck('update'));
  });
  after(async () => {
    await owner.close();
    await server.stop();
  });

  it('register + hello + mode start within 1500 ms give one snapshot, not three; after the window mode start sends again', async () => {
    const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: idIn(G, 2) });
    await dev.hello();
    dev.send({ type: 'mode', state: 'start', mode: 'working' });
    await dev.next((m) => m.type === 'mode' && m.status === 'ok' && m.state === 'start');
    await dev.next((m) => m.type === 'listen' && m.state === 'start' && m.mode === 'manual');
    dev.send({ type: 'workflow', event: 'list' });
    await dev.next(isAck('list'));
    const before = dev.received.slice(0, dev.received.findIndex(isAck('list')));
    assert.equal(
      before.filter(isSnap).length,
      1,
      `snapshots before the list answer: ${JSON.stringify(before.map((m) => m.type))}`,
    );
    assert.deepEqual(ids(before.find(isSnap)!), ['k2', 'k1', 'k3']);

    await sleep(1600);
    dev.send({ type: 'mode', state: 'end', mode: 'working' });
    await dev.next((m) => m.type === 'mode' && m.state === 'end');
    const from = dev.received.length;
    dev.send({ type: 'mode', state: 'start', mode: 'working' });
    await dev.next((m) => m.type === 'mode' && m.state === 'start');
    await arrived(dev, from, isSnap);
    await settle(dev);
    assert.equal(snapsSince(dev, from).length, 1);
    // A repeated start of the active mode is an ack only: no listen, no snapshot.
    const again = dev.received.length;
    dev.send({ type: 'mode', state: 'start', mode: 'working' });
    assert.equal((await dev.next((m) => m.type === 'mode' && m.state === 'start')).idempotent, true);
    await settle(dev);
    assert.deepEqual(
      dev.received.slice(again).map((m) => m.type),
      ['mode', 'pong'],
    );
    await dev.close();
  });

  it('working mode: replies are silenced, task commands typed as text are handled before the LLM', async () => {
    const W = idIn(G, 3);
    const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: W });
    await dev.hello();
    dev.send({ type: 'mode', state: 'start', mode: 'working' });
    await dev.next((m) => m.type === 'listen' && m.mode === 'manual');
    const session = [...server.sessions].find((s) => s.deviceId === W)!;
    assert.equal(session.listen.mode, 'manual');

    // Not a command: a chat turn, but working.disable_tts leaves only the tts start/stop placeholders.
    dev.send({ type: 'listen', state: 'detect', text: 'tell me a joke' });
    await dev.next((m) => m.type === 'tts' && m.state === 'start');
    await dev.next((m) => m.type === 'tts' && m.state === 'stop');
    assert.equal(dev.binary.length, 0);

    // "complete task 2": the second open task (k1) is done, pushed to the whole group.
    const ownerFrom = owner.received.length;
    dev.send({ type: 'listen', state: 'detect', text: 'complete task 2' });
    const done = await dev.next(isCommand('complete'));
    assert.deepEqual({ ok: done.ok, id: done.id, n: done.n }, { ok: true, id: 'k1', n: 2 });
    const pushed = await arrived(owner, ownerFrom, isSnap);
    assert.deepEqual(ids(pushed), ['k2', 'k3', 'k1'], 'done tasks go last');

    dev.send({ type: 'listen', state: 'detect', text: '认领第一个任务' });
    const claimed = await dev.next(isCommand('assign'));
    assert.deepEqual({ ok: claimed.ok, id: claimed.id, owner: claimed.owner }, { ok: true, id: 'k2', owner: W });

    // Without an ordinal, assign takes the first open task the caller does not own yet.
    dev.send({ type: 'listen', state: 'detect', text: 'claim task' });
    assert.equal((await dev.next(isCommand('assign'))).id, 'k3');

    const from = dev.received.length;
    dev.send({ type: 'listen', state: 'detect', text: '刷新列表' });
    await dev.next(isCommand('refresh'));
    const snap = await arrived(dev, from, isSnap);
    assert.deepEqual(
      tasksOf(snap).map((t) => [t.id, t.status, t.owner]),
      [
        ['k2', 'open', W],
        ['k3', 'open', W],
        ['k1', 'done', undefined],
      ],
    );

    dev.send({ type: 'listen', state: 'detect', text: 'complete task 9' });
    const none = await dev.next(isCommand('complete'));
    assert.equal(none.ok, false);
    await settle(dev);
    // Commands never reached the LLM or TTS: the only tts messages are the two placeholders of the joke.
    assert.equal(
      dev.received.slice(from).filter((m) => m.type === 'tts' || m.type === 'llm' || m.type === 'stt').length,
      0,
    );
    assert.equal(dev.all('tts').length, 2);

    dev.send({ type: 'mode', state: 'end', mode: 'working' });
    await dev.next((m) => m.type === 'mode' && m.state === 'end');
    assert.equal(session.listen.mode, 'auto');
    await dev.close();
  });

  it('voice phrases switch into working mode: stt with the intent, the mode flow, no chat echo and no TTS', async () => {
    for (const [n, phrase] of [
      [4, '切换到工作模式'],
      [5, 'Enter working mode'],
    ] as const) {
      const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: idIn(G, n) });
      await dev.hello();
      dev.send({ type: 'listen', state: 'detect', text: phrase });
      const stt = await dev.next('stt');
      assert.equal(stt.text, phrase);
      assert.equal(stt.intent, 'mode_switch');
      assert.equal(stt.target_mode, 'working');
      await dev.next((m) => m.type === 'mode' && m.status === 'ok' && m.state === 'start' && m.mode === 'working');
      await dev.next((m) => m.type === 'listen' && m.state === 'start' && m.mode === 'manual');
      // Now in working mode: a command is understood.
      dev.send({ type: 'listen', state: 'detect', text: '刷新任务' });
      await dev.next(isCommand('refresh'));
      await settle(dev);
      assert.equal(dev.all((m) => m.type === 'tts' || m.type === 'llm').length, 0);
      assert.equal(dev.all('stt').length, 1);
      await dev.close();
    }
  });

  it('outside working mode the same words are a normal chat turn, not a task command', async () => {
    const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: idIn(G, 6) });
    await dev.hello();
    dev.send({ type: 'listen', state: 'detect', text: 'complete task 1' });
    const stt = await dev.next('stt');
    assert.equal(stt.intent, undefined);
    await dev.next((m) => m.type === 'tts' && m.state === 'stop', 20_000);
    assert.equal(dev.all((m) => m.type === 'workflow' && m.event === 'command').length, 0);
    await dev.close();
  });
});

describe('test_mode delayed register snapshot (seed #10)', () => {
  const G = 'a3:00:01';
  const DELAY = 400;
  const lines: string[] = [];
  let server: TestServer;
  before(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    server = await startTestServer(
      { ...BASE, workflow: { test_mode: true, snapshot_on_register_delay_ms: DELAY } },
      { logger: pino({ level: 'info' }, sink) },
    );
  });
  after(() => server.stop());

  it('the snapshot really waits for the delay, and a session closed meanwhile sends nothing', async () => {
    const maker = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: idIn(G, 1) });
    maker.send({ type: 'workflow', event: 'update', tasks: [{ id: 'd1', title: 'delayed' }] });
    await maker.next(isAck('update'));

    const t0 = performance.now();
    const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: idIn(G, 2) });
    await settle(dev);
    assert.equal(dev.all(isSnap).length, 0, 'nothing before the delay');
    const snap = await dev.next(isSnap, 5000);
    const elapsed = performance.now() - t0;
    assert.deepEqual(ids(snap), ['d1']);
    assert.ok(elapsed >= DELAY - 5, `snapshot after ${elapsed.toFixed(0)} ms, delay ${DELAY} ms`);

    const E = idIn(G, 3);
    const sentBefore = await metricValue(server, 'linus_messages_out_total', { type: 'workflow' });
    const gone = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: E });
    await gone.close();
    await waitFor(() => ![...server.sessions].some((s) => s.deviceId === E), 2000, 'the session to close');
    await sleep(DELAY + 300);
    assert.equal(await metricValue(server, 'linus_messages_out_total', { type: 'workflow' }), sentBefore);
    assert.equal(await metricValue(server, 'linus_send_failures_total'), 0);
    const log = lines.join('');
    assert.match(log, new RegExp(`op=snapshot source=register group=${G} to=${idIn(G, 2)}`));
    assert.doesNotMatch(log, new RegExp(`to=${E}`));
    assert.doesNotMatch(log, /error in session scope|workflow event failed/);
    await Promise.all([maker.close(), dev.close()]);
  });
});

describe('devices.yaml hot reload and restarts', () => {
  it('a device moved to another group by devices.yaml gets the new group snapshot, and its writes land there', async () => {
    const server = await startTestServer(BASE);
    try {
      const Y = idIn('a4:00:01', 1);
      const other = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: idIn('a4:00:02', 1) });
      other.send({ type: 'workflow', event: 'update', groupKey: 'team-x', tasks: [{ id: 'tx', title: 'team task' }] });
      await other.next(isAck('update'));

      const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: Y });
      await dev.hello();
      let from = dev.received.length;
      writeFileSync(
        join(server.dataDir, 'devices.yaml'),
        `devices:\n  "${Y.toUpperCase()}":\n    group: team-x\n    alias: Yan\n`,
      );
      const moved = await arrived(dev, from, snapOf('team-x'), 5000);
      assert.deepEqual(ids(moved), ['tx']);

      from = dev.received.length;
      dev.send({ type: 'workflow', event: 'update', tasks: [{ id: 'ty', title: 'written after the move' }] });
      await dev.next(isAck('update'));
      assert.deepEqual(ids(await arrived(dev, from, snapOf('team-x'))).sort(), ['tx', 'ty']);
      dev.send({ type: 'workflow', event: 'assign', id: 'ty' });
      assert.equal((await dev.next(isAck('assign'))).owner, `Yan|${Y}`);

      from = dev.received.length;
      rmSync(join(server.dataDir, 'devices.yaml'));
      const back = await arrived(dev, from, snapOf('a4:00:01'), 5000);
      assert.deepEqual(back.tasks, [], 'moved back: its own (empty) group, sent because it is a change');
      await Promise.all([dev.close(), other.close()]);
    } finally {
      await server.stop();
    }
  });

  it('tasks survive a server restart, unknown fields included', async () => {
    const dataDir = tempDir();
    const G = 'a5:00:01';
    try {
      let server = await startTestServer(BASE, { dataDir });
      const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: idIn(G, 1) });
      dev.send({
        type: 'workflow',
        event: 'update',
        tasks: [{ id: 'r1', title: 'persist me', priority: 3, description: 'kept', assignees: ['a', 'b'] }],
      });
      await dev.next(isAck('update'));
      dev.send({ type: 'workflow', event: 'complete', ids: ['r1'] });
      await dev.next(isAck('complete'));
      await dev.close();
      await server.stop();

      server = await startTestServer(BASE, { dataDir });
      const again = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: idIn(G, 2) });
      const snap = await again.next(isSnap); // the register snapshot
      assert.deepEqual(
        tasksOf(snap).map((t) => ({
          id: t.id,
          title: t.title,
          priority: t.priority,
          status: t.status,
          description: t.description,
          assignees: t.assignees,
        })),
        [{ id: 'r1', title: 'persist me', priority: 3, status: 'done', description: 'kept', assignees: ['a', 'b'] }],
      );
      const res = await http(server, `/supie/workflow?groupKey=${G}`);
      assert.equal(((res.body.data as Json).items as Json[])[0]?.id, 'r1');
      await again.close();
      await server.stop();
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('HTTP API: GET /supie/workflow, import-from-meeting, auth', () => {
  const G = 'a6:00:01';
  let server: TestServer;
  before(async () => {
    server = await startTestServer(BASE);
    const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: idIn(G, 1) });
    dev.send({
      type: 'workflow',
      event: 'update',
      tasks: Array.from({ length: 12 }, (_, i) => ({ id: `h${i}`, title: `task ${i}` })),
    });
    await dev.next(isAck('update'));
    await dev.close();
  });
  after(() => server.stop());

  it('lists a group by groupKey, by deviceId, or by a full device id given as groupKey', async () => {
    for (const q of [
      `groupKey=${G}`,
      `groupKey=${G.toUpperCase()}`,
      `deviceId=${idIn(G, 7)}`,
      `groupKey=${encodeURIComponent(idIn(G, 9))}`,
    ]) {
      const res = await http(server, `/supie/workflow?${q}`);
      assert.equal(res.status, 200, q);
      const data = res.body.data as Json;
      assert.equal(res.body.success, true);
      assert.equal(data.groupKey, G, q);
      assert.equal(data.total, 12);
      assert.equal((data.items as Json[]).length, 12);
    }
  });

  it('clamps pagination; out of range gives no items and the true total', async () => {
    const page = async (q: string) => (await http(server, `/supie/workflow?groupKey=${G}&${q}`)).body.data as Json;
    const p1 = await page('limit=5&offset=10');
    assert.deepEqual(
      [(p1.items as Json[]).map((t) => t.id), p1.limit, p1.offset, p1.total],
      [['h10', 'h11'], 5, 10, 12],
    );
    const p2 = await page('limit=0&offset=-3');
    assert.deepEqual([(p2.items as Json[]).length, p2.limit, p2.offset], [1, 1, 0]);
    const p3 = await page('limit=999999');
    assert.equal(p3.limit, 500);
    const p4 = await page('limit=abc&offset=1000');
    assert.deepEqual([(p4.items as Json[]).length, p4.total], [0, 12]);
  });

  it('refuses missing or bad ids with 400', async () => {
    for (const q of ['', 'deviceId=../../etc/passwd', `deviceId=${'x'.repeat(300)}`, 'groupKey=%0A', 'groupKey=']) {
      const res = await http(server, `/supie/workflow?${q}`);
      assert.equal(res.status, 400, q);
      assert.equal(res.body.success, false);
      assert.equal(typeof res.body.error, 'string');
    }
  });

  it('import-from-meeting: 404 for a meeting nobody knows, 400 for a missing or bad id or body', async () => {
    let res = await http(server, '/supie/workflow/import-from-meeting', postJson({ meetingId: 'm-404', groupKey: G }));
    assert.deepEqual([res.status, res.body], [404, { success: false, error: 'meeting not found' }]);
    res = await http(server, '/supie/workflow/import-from-meeting', postJson({ groupKey: G }));
    assert.equal(res.status, 400);
    res = await http(server, '/supie/workflow/import-from-meeting', postJson({ meetingId: '../../x' }));
    assert.equal(res.status, 400);
    res = await http(server, '/supie/workflow/import-from-meeting', { method: 'POST', body: '{nope' });
    assert.equal(res.status, 400);
    res = await http(server, '/supie/workflow/import-from-meeting', postJson([1, 2]));
    assert.equal(res.status, 400);
  });

  it('with server.meeting_api_token set, the token is required in any of its three forms', async () => {
    const guarded = await startTestServer({ ...BASE, server: { ...BASE.server, meeting_api_token: 's3cret' } });
    try {
      const path = `/supie/workflow?groupKey=${G}`;
      assert.equal((await http(guarded, path)).status, 401);
      assert.equal((await http(guarded, path, { headers: { authorization: 'Bearer wrong' } })).status, 401);
      assert.equal((await http(guarded, path, { headers: { authorization: 'Bearer s3cret' } })).status, 200);
      assert.equal((await http(guarded, path, { headers: { 'x-api-token': 's3cret' } })).status, 200);
      assert.equal((await http(guarded, `${path}&token=s3cret`)).status, 200);
      assert.equal(
        (await http(guarded, '/supie/workflow/import-from-meeting', postJson({ meetingId: 'm1' }))).status,
        401,
      );
    } finally {
      await guarded.stop();
    }
  });
});

describe('import-from-meeting through the meeting seam (summaryOf)', () => {
  const G = 'a7:00:01';
  const dir = tempDir();
  const db = openDatabase(dir);
  const registry = new LocalDeviceRegistry();
  const config = new ConfigStore(validateConfig({ server: { api_rate_limit: 0 } }).config);
  const directory = new DeviceDirectory(join(dir, 'devices.yaml'), config, silentLogger());
  const service = new WorkflowService({ store: new SqliteTaskStore(db), registry, directory, log: silentLogger() });
  /** Stands in for the meeting feature, which is not wired yet: one known meeting. */
  const summaryOf: MeetingSummaryLookup = async (id) =>
    id === 'meet-1'
      ? { title: 'Weekly', actions: ['Ship v2', '  ', 'Fix login'], nextSteps: ['Plan Q3'], deviceId: idIn(G, 9) }
      : undefined;
  const httpServer = createServer();
  const router = new HttpRoutes(httpServer, (server, handle) => server.on('request', handle), silentLogger());
  const metrics = new Metrics({ defaultMetrics: false });
  registerWorkflowApi(
    new ApiRoutes(
      router,
      config,
      new SecretThrottle(metrics, silentLogger(), () => config.current.server.failed_secrets),
    ),
    service,
    summaryOf,
  );
  /** An online device of the group, seen through the registry as the hub sees any connection. */
  const inbox: Json[] = [];
  const online: DeviceConnection = {
    connectionId: 'c1',
    deviceId: idIn(G, 1),
    replacedBy() {},
    deliver: (m) => inbox.push(m) > 0,
    deliverText: (j) => inbox.push(JSON.parse(j) as Json) > 0,
  };
  const elsewhere: Json[] = [];
  const outside: DeviceConnection = {
    connectionId: 'c2',
    deviceId: idIn('a7:00:02', 1),
    replacedBy() {},
    deliver: (m) => elsewhere.push(m) > 0,
    deliverText: (j) => elsewhere.push(JSON.parse(j) as Json) > 0,
  };
  const base = { url: (path = '/') => `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}${path}` };

  before(async () => {
    registry.register(online);
    registry.register(outside);
    await router.app.ready();
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  });
  after(async () => {
    await new Promise((resolve) => httpServer.close(resolve));
    await router.app.close();
    directory.close();
    metrics.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('turns actions and next steps into tasks with stable ids, pushes them to the group, and re-import changes nothing', async () => {
    const res = await http(base, '/supie/workflow/import-from-meeting', postJson({ meetingId: 'meet-1' }));
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.data, {
      imported: 3,
      ids: ['MEET-meet-1-A1', 'MEET-meet-1-A3', 'MEET-meet-1-N1'],
      created: 3,
      groupKey: G,
    });
    const snap = inbox.find(isSnap)!;
    assert.deepEqual(
      tasksOf(snap).map((t) => [t.id, t.title, t.source, t.meetingId, t.kind]),
      [
        ['MEET-meet-1-A1', 'Ship v2', 'meeting', 'meet-1', 'action'],
        ['MEET-meet-1-A3', 'Fix login', 'meeting', 'meet-1', 'action'],
        ['MEET-meet-1-N1', 'Plan Q3', 'meeting', 'meet-1', 'nextStep'],
      ],
    );
    assert.equal(elsewhere.length, 0, 'another group hears nothing');

    const again = await http(base, '/supie/workflow/import-from-meeting?sessionId=meet-1', postJson({}));
    assert.equal((again.body.data as Json).created, 0);
    assert.equal(inbox.filter(isSnap).length, 1, 'nothing changed, nothing pushed');

    const elsewhereImport = await http(
      base,
      '/supie/workflow/import-from-meeting',
      postJson({ meetingId: 'meet-1', groupKey: 'a7:00:02' }),
    );
    assert.equal((elsewhereImport.body.data as Json).groupKey, 'a7:00:02');
    assert.equal(elsewhere.filter(isSnap).length, 1);
    assert.equal(
      (await http(base, '/supie/workflow/import-from-meeting', postJson({ meetingId: 'meet-2' }))).status,
      404,
    );
  });

  it('upsertTasks for other features: ids are made when missing, the target group is respected', async () => {
    const r = await service.upsertTasks(G, [{ title: 'from a peer', owner: idIn(G, 1), priority: 1 }], 'peer:test');
    assert.equal(r.created.length, 1);
    assert.match(r.created[0]!, /^T-[0-9a-f]{10}$/);
    assert.deepEqual(r.changedGroups, [G]);
    assert.ok(r.reached.has(online) && !r.reached.has(outside));
    await assert.rejects(
      service.upsertTasks(G, [{ id: 'p', priority: 9 }], 'peer:test'),
      /priority must be integer 0\.\.3/,
    );
  });
});
