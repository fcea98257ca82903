/**
 * Cluster mode end to end (issue #10, D16, D17): three `linus serve` processes on one PostgreSQL schema and one
 * Redis key prefix of this run, devices over real WebSockets on different nodes. One cluster is shared by the
 * tests of this file (three node processes are heavy on a small box); the tests run in order and each uses
 * devices of its own. The schema and the prefix are dropped at the end. Skips, with the reason printed, only when
 * PostgreSQL or Redis cannot be reached.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { freePort, killAllCli, spawnCli, waitForHealth, type CliProcess } from '../support/cli.js';
import { TestDevice, UpgradeRefused, type Json } from '../support/device.js';
import { PG_SKIP, PG_URL, testSchema, type TestSchema } from '../support/pg.js';
import { adminClient, dropPrefix, REDIS_URL, redisSkipReason, TcpProxy, testPrefix } from '../support/redis.js';
import { tempDir } from '../support/server.js';
import { waitFor } from '../support/wait.js';

const ADMIN = 'cluster-admin-secret';
/** How long a cross-node step may take on a busy box (the whole suite runs two files at a time). */
const WAIT = 10_000;
const SKIP = PG_SKIP || (await redisSkipReason()) || false;

const isMessage = (m: Json) => m.type === 'peer' && m.event === 'message';
const isReceipt = (m: Json) => m.type === 'peer' && m.status === 'done';
const isError = (m: Json) => m.type === 'peer' && m.status === 'error';
const isAnswer = (m: Json) => isReceipt(m) || (isError(m) && m.code !== 'TARGET_OFFLINE');
const redeliveredTo = (to: string) => (m: Json) => m.type === 'peer' && m.event === 'redelivered' && m.to === to;
const isSnap = (m: Json) => m.type === 'workflow' && m.event === 'update' && Array.isArray(m.tasks);

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

interface Node {
  id: string;
  port: number;
  dir: string;
  proc: CliProcess;
}

/** One `linus serve` node of the cluster on `schemaUrl` / `redisUrl` / `prefix`, serving once /health answers. */
async function startNode(
  id: string,
  c: { schemaUrl: string; redisUrl: string; prefix: string },
  extra: Record<string, unknown> = {},
): Promise<Node> {
  const dir = tempDir(`linus-cluster-${id}-`);
  const p = await freePort();
  writeFileSync(
    join(dir, 'config.yaml'),
    stringify({
      server: {
        ip: '127.0.0.1',
        port: p,
        watch_config: false,
        admin_secret: ADMIN,
        audio_workers: 1,
        stats_interval_ms: 60_000,
        handover_close_ms: 200,
      },
      log: { log_level: 'info' },
      selected_module: { LLM: '' },
      meeting: { broadcast: { enabled: true, mode: 'group' } },
      cluster: { node_id: id, key_prefix: c.prefix },
      ...extra,
    }),
  );
  const proc = spawnCli(['serve', '--data-dir', dir], {
    env: { LINUS_DATABASE_URL: c.schemaUrl, LINUS_REDIS_URL: c.redisUrl },
  });
  await waitForHealth(proc, p, 60_000);
  return { id, port: p, dir, proc };
}

describe('cluster: three nodes on PostgreSQL + Redis', { skip: SKIP }, () => {
  let schema: TestSchema;
  const prefix = testPrefix();
  const nodes: Node[] = [];
  const devices: TestDevice[] = [];
  const redis = adminClient();
  /** What a node of this cluster is started with. */
  let cluster: { schemaUrl: string; redisUrl: string; prefix: string };

  const connect = async (node: Node, deviceId: string): Promise<TestDevice> => {
    const dev = await TestDevice.connect({ url: `ws://127.0.0.1:${node.port}/xiaozhi/v1/`, deviceId });
    devices.push(dev);
    await dev.hello();
    return dev;
  };

  const health = async (node: Node): Promise<Json> =>
    (await (await fetch(`http://127.0.0.1:${node.port}/health`)).json()) as Json;
  /** The devices connected to this node itself (/health's `devices` counts the cluster's). */
  const localDevices = async (node: Node): Promise<number> =>
    ((await health(node)).cluster as Json).localDevices as number;

  /** A device's route in Redis names the node (what another node looks up before delivering to it). */
  const routed = (node: Node, deviceId: string) =>
    waitFor(
      async () => ((await redis.hget(`${prefix}routes`, deviceId)) ?? '').startsWith(`${node.id}\t`),
      WAIT,
      `${deviceId} routed to ${node.id}`,
    );

  const queued = async (deviceId: string): Promise<number> =>
    Number(
      (await schema.db.row<{ n: string }>('SELECT count(*) AS n FROM peer_queue WHERE device_id = $1', [deviceId]))
        ?.n ?? 0,
    );

  before(async () => {
    schema = await testSchema({ migrate: false });
    // Started together: the migrations run once, under the advisory lock, whoever comes first.
    const c = (cluster = { schemaUrl: schema.url, redisUrl: REDIS_URL, prefix });
    // n3 lacks the LLM block the others have: a reload selecting it is valid on n1 and n2 only.
    const spare = {
      LLM: { spare: { type: 'openai', base_url: 'http://127.0.0.1:9/v1', model_name: 'm', api_key: 'k' } },
    };
    nodes.push(...(await Promise.all([startNode('n1', c, spare), startNode('n2', c, spare), startNode('n3', c)])));
  });

  after(async () => {
    await Promise.all(devices.map((d) => d.close().catch(() => undefined)));
    await killAllCli();
    for (const n of nodes) rmSync(n.dir, { recursive: true, force: true });
    if (schema) await schema.drop();
    await dropPrefix(redis, prefix);
    redis.disconnect();
  });

  it('every node serves and reports its cluster link, the live nodes and its bus counters in /health', async () => {
    for (const n of nodes) {
      const h = await health(n);
      assert.equal(h.status, 'ok', JSON.stringify(h));
      const cluster = h.cluster as Json;
      assert.deepEqual(cluster.node, n.id);
      assert.equal(cluster.status, 'ok');
      assert.deepEqual((cluster.nodes as string[]).sort(), ['n1', 'n2', 'n3']);
      const bus = cluster.bus as Json;
      for (const key of ['sent', 'received', 'failed', 'timeouts', 'invalid', 'expired', 'handlerErrors'])
        assert.equal(typeof bus[key], 'number', `bus.${key} in ${JSON.stringify(bus)}`);
      assert.equal(bus.failed, 0);
    }
  });

  it('peer: delivered on another node with a receipt; offline → queued in PostgreSQL, delivered once on reconnect to a third node, sender told redelivered', async () => {
    const [n1, n2, n3] = nodes as [Node, Node, Node];
    const a = await connect(n1, 'cl:a0:00:00:00:01');
    const b = await connect(n2, 'cl:b0:00:00:00:01');
    await routed(n2, 'cl:b0:00:00:00:01');

    a.send({ type: 'peer', to: ['cl:b0:00:00:00:01'], payload: { text: 'cross-node hello' } });
    const receipt = await a.next(isAnswer, WAIT);
    assert.deepEqual(receipt.delivered, ['cl:b0:00:00:00:01'], JSON.stringify(receipt));
    const got = await b.next(isMessage, WAIT);
    assert.equal((got.payload as Json).text, 'cross-node hello');
    assert.equal(got.from, 'cl:a0:00:00:00:01');

    await b.close();
    await waitFor(async () => (await localDevices(n2)) === 0, WAIT, 'n2 to drop the device');
    a.send({ type: 'peer', to: ['cl:b0:00:00:00:01'], payload: { text: 'while you were away' } });
    const second = await a.next(isAnswer, WAIT);
    assert.deepEqual(second.enqueued, ['cl:b0:00:00:00:01'], JSON.stringify(second));
    assert.equal(await queued('cl:b0:00:00:00:01'), 1, 'the message is in the PostgreSQL queue');

    const b2 = await connect(n3, 'cl:b0:00:00:00:01');
    const late = await b2.next(isMessage, WAIT);
    assert.equal((late.payload as Json).text, 'while you were away');
    const told = await a.next(redeliveredTo('cl:b0:00:00:00:01'), WAIT);
    assert.equal(told.count, 1);
    await waitFor(async () => (await queued('cl:b0:00:00:00:01')) === 0, WAIT, 'the queue to be emptied');
    b2.send({ type: 'ping' });
    await b2.next('pong');
    assert.equal(b2.all(isMessage).length, 1, 'delivered once');
  });

  it('handover across nodes: the holder is told `replaced` and closes; the new node serves the device', async () => {
    const [n1, n2] = nodes as [Node, Node];
    const a = await connect(n1, 'cl:a0:00:00:00:02');
    const old = await connect(n1, 'cl:c0:00:00:00:02');
    await routed(n1, 'cl:c0:00:00:00:02');
    const closed = new Promise<void>((resolve) => old.ws.once('close', () => resolve()));
    const fresh = await connect(n2, 'cl:c0:00:00:00:02');
    const notice = await old.next((m) => m.type === 'system' && m.event === 'replaced', WAIT);
    assert.equal(notice.event, 'replaced');
    await closed;
    await routed(n2, 'cl:c0:00:00:00:02');
    a.send({ type: 'peer', to: ['cl:c0:00:00:00:02'], payload: { text: 'after the move' } });
    assert.deepEqual((await a.next(isAnswer, WAIT)).delivered, ['cl:c0:00:00:00:02']);
    assert.equal(((await fresh.next(isMessage, WAIT)).payload as Json).text, 'after the move');
  });

  it('tasks: an update on one node reaches the group on another; the HTTP API of a third shows them', async () => {
    const [n1, n2, n3] = nodes as [Node, Node, Node];
    // Same workflow group: the first 8 characters of the id.
    const writer = await connect(n1, 'wfclust1-a');
    const reader = await connect(n2, 'wfclust1-b');
    await routed(n2, 'wfclust1-b');
    writer.send({ type: 'workflow', event: 'update', tasks: [{ id: 'ct1', title: 'shared across nodes' }] });
    const snap = await reader.next((m) => isSnap(m) && JSON.stringify(m.tasks).includes('ct1'), WAIT);
    assert.equal(snap.groupKey, 'wfclust1');
    const res = await fetch(`http://127.0.0.1:${n3.port}/supie/workflow?groupKey=wfclust1`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    const body = (await res.json()) as { data: { items: Json[] } };
    assert.deepEqual(
      body.data.items.map((t) => t.title),
      ['shared across nodes'],
      JSON.stringify(body),
    );
  });

  it('relays: a coding event on one node reaches the devices on the others', async () => {
    const [n1, n2, n3] = nodes as [Node, Node, Node];
    const coder = await connect(n1, 'cl:c1:00:00:00:01');
    const far = [await connect(n2, 'cl:c1:00:00:00:02'), await connect(n3, 'cl:c1:00:00:00:03')];
    await routed(n3, 'cl:c1:00:00:00:03');
    coder.send({ type: 'coding', event: 'start' });
    for (const dev of far) {
      const m = await dev.next((x) => x.type === 'coding' && x.event === 'start', WAIT);
      assert.equal(m.from, 'cl:c1:00:00:00:01');
    }
  });

  it('relays: a meeting broadcast reaches the origin’s group on the other nodes, and only it', async () => {
    const [n1, n2, n3] = nodes as [Node, Node, Node];
    const isRelay = (m: Json) => m.type === 'meeting' && m.phase === 'snippet' && m.from === 'mbclust1-a';
    // Groups by id (the first 8 characters): mbclust1 on every node, mbother1 a stranger beside one of them.
    const origin = await connect(n1, 'mbclust1-a');
    const mates = [await connect(n2, 'mbclust1-b'), await connect(n3, 'mbclust1-d')];
    const stranger = await connect(n3, 'mbother1-c');
    origin.send({ type: 'mode', state: 'start', mode: 'meeting' });
    await origin.next((m) => m.type === 'mode' && m.state === 'start', WAIT);
    origin.send({ type: 'meeting', phase: 'snippet', items: [{ text: 'for the whole group' }] });
    for (const dev of mates) {
      const m = await dev.next(isRelay, WAIT);
      assert.equal((m.items as Json[])[0]?.text, 'for the whole group');
    }
    // n3 handed the relay to its devices in one pass: had the stranger got it, it came before this pong.
    stranger.send({ type: 'ping' });
    await stranger.next('pong');
    assert.equal(stranger.all(isRelay).length, 0, 'another group does not hear it');
    assert.equal(origin.all(isRelay).length, 0, 'nor does the origin (include_origin off)');
    origin.send({ type: 'mode', state: 'end', mode: 'meeting' });
  });

  it('meeting: started on one node, continued on another after the move, one summary; a repeat on a third is idempotent', async () => {
    const [n1, n2, n3] = nodes as [Node, Node, Node];
    const isAck = (m: Json) => m.type === 'meeting' && m.phase === 'snippet' && m.status !== undefined;
    const isSummary = (m: Json) => m.type === 'meeting' && m.phase === 'summary' && m.checkpoint === false;
    const snippet = async (dev: TestDevice, text: string) => {
      dev.send({ type: 'meeting', phase: 'snippet', items: [{ text }] });
      return dev.next(isAck, WAIT);
    };
    const first = await connect(n1, 'cl:90:00:00:00:01');
    first.send({ type: 'mode', state: 'start', mode: 'meeting' });
    await first.next((m) => m.type === 'mode' && m.state === 'start', WAIT);
    await snippet(first, 'we agreed on the budget');
    const moved = await connect(n2, 'cl:90:00:00:00:01');
    await first.next((m) => m.type === 'system' && m.event === 'replaced', WAIT);
    await snippet(moved, 'and we meet again next week');
    moved.send({ type: 'meeting', phase: 'finalize' });
    const summary = await moved.next(isSummary, 15_000);
    assert.equal(summary.sourceSegments, 2, JSON.stringify(summary));
    assert.equal(summary.idempotent, undefined);
    await moved.close();
    const again = await connect(n3, 'cl:90:00:00:00:01');
    again.send({ type: 'meeting', phase: 'finalize' });
    const repeat = await again.next(isSummary, 10_000);
    assert.equal(repeat.idempotent, true, JSON.stringify(repeat));
    assert.equal(repeat.sessionId, summary.sessionId);
  });

  it('mode: working mode set on one node holds on another after a reconnect (manual listening, idempotent start); ended, it is gone', async () => {
    const [n1, n2, n3] = nodes as [Node, Node, Node];
    const id = 'cl:b0:00:00:00:01';
    const isModeAck = (m: Json) => m.type === 'mode' && m.status === 'ok';
    const isManual = (m: Json) => m.type === 'listen' && m.state === 'start' && m.mode === 'manual';
    const first = await connect(n1, id);
    first.send({ type: 'mode', state: 'start', mode: 'working' });
    assert.equal((await first.next(isModeAck, WAIT)).idempotent, undefined);
    await waitFor(
      async () => (await redis.hget(`${prefix}device:${id}:state`, 'mode')) === '"working"',
      WAIT,
      'mode kept in Redis',
    );
    await first.close();
    const moved = await connect(n2, id);
    // Working mode on hello: the node puts the device back in manual listening.
    await moved.next(isManual, WAIT);
    moved.send({ type: 'mode', state: 'start', mode: 'working' });
    assert.equal((await moved.next(isModeAck, WAIT)).idempotent, true);
    moved.send({ type: 'mode', state: 'end', mode: 'working' });
    assert.equal((await moved.next(isModeAck, WAIT)).idempotent, undefined);
    await waitFor(async () => (await redis.hget(`${prefix}device:${id}:state`, 'mode')) === null, WAIT, 'mode removed');
    await moved.close();
    const third = await connect(n3, id);
    third.send({ type: 'mode', state: 'start', mode: 'working' });
    assert.equal((await third.next(isModeAck, WAIT)).idempotent, undefined);
  });

  it('stats and broadcast: the device count, the online list and a peer broadcast are the whole cluster’s', async () => {
    const [n1, n2, n3] = nodes as [Node, Node, Node];
    const watcher = await connect(n1, 'cl:d0:00:00:00:01');
    const second = await connect(n2, 'cl:d0:00:00:00:02');
    const third = await connect(n3, 'cl:d0:00:00:00:03');
    // Presence changes on the other nodes trigger a broadcast here; wait for one that lists all three.
    const stats = await watcher.next(
      (m) =>
        m.type === 'server' &&
        m.event === 'stats' &&
        ['cl:d0:00:00:00:02', 'cl:d0:00:00:00:03'].every((id) => (m.online as string[]).includes(id)),
      10_000,
    );
    // The whole cluster's count: every node's own devices together (n1's alone would be short of it).
    const perNode = await Promise.all(nodes.map(localDevices));
    const total = perNode.reduce((a, b) => a + b, 0);
    assert.ok(perNode[1]! > 0 && perNode[2]! > 0, `devices on n2 and n3: ${perNode.join(', ')}`);
    assert.equal(stats.deviceCount, total, `stats ${String(stats.deviceCount)} vs per node ${perNode.join(', ')}`);
    assert.equal((stats.online as string[]).length, total, 'every online device listed');

    // /health and the console's device list of n1 show the devices of n2 and n3, with their node and mode.
    assert.equal((await health(n1)).devices, total);
    const api = await fetch(`http://127.0.0.1:${n1.port}/api/devices`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    const listed = ((await api.json()) as { data: { devices: Json[] } }).data.devices;
    const view = (id: string) => listed.find((d) => d.deviceId === id);
    for (const [id, node] of [
      ['cl:d0:00:00:00:01', 'n1'],
      ['cl:d0:00:00:00:02', 'n2'],
      ['cl:d0:00:00:00:03', 'n3'],
    ] as const)
      assert.deepEqual(
        [view(id)?.online, view(id)?.node, view(id)?.mode],
        [true, node, 'chat'],
        JSON.stringify(view(id)),
      );
    assert.equal(listed.filter((d) => d.online).length, total);
    third.send({ type: 'mode', state: 'start', mode: 'working' });
    await third.next((m) => m.type === 'mode' && m.status === 'ok', WAIT);
    await waitFor(
      async () => (await redis.hget(`${prefix}device:cl:d0:00:00:00:03:state`, 'mode')) === '"working"',
      WAIT,
      'mode kept in Redis',
    );
    const detail = await fetch(`http://127.0.0.1:${n1.port}/api/devices/cl:d0:00:00:00:03`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    const one = ((await detail.json()) as { data: Json }).data;
    assert.deepEqual([one.online, one.node, one.mode], [true, 'n3', 'working'], JSON.stringify(one));

    // A broadcast names the devices of every node.
    watcher.send({ type: 'peer', to: ['broadcast'], payload: { text: 'to everyone' } });
    const receipt = await watcher.next(isAnswer, WAIT);
    for (const id of ['cl:d0:00:00:00:02', 'cl:d0:00:00:00:03'])
      assert.ok((receipt.delivered as string[]).includes(id), JSON.stringify(receipt));
    for (const dev of [second, third])
      assert.equal(((await dev.next(isMessage, WAIT)).payload as Json).text, 'to everyone');
  });

  it('config: a reload accepted on one node is applied by the others', async (t) => {
    const [n1, n2, n3] = nodes as [Node, Node, Node];
    const queueCap = (cap: number) =>
      fetch(`http://127.0.0.1:${n1.port}/admin/config/reload`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ patch: { peer: { offline_max_per_device: cap } } }),
      });
    const r = await queueCap(0);
    assert.equal(r.status, 200, await r.text());
    // The other tests queue messages: the queue is on again afterwards, whatever happens here.
    t.after(async () => {
      await queueCap(100);
    });
    // With the offline queue off, a message to an offline device is refused on every node.
    for (const n of [n2, n3]) {
      const dev = await connect(n, `cl:e0:00:00:00:0${n.id.slice(1)}`);
      await waitFor(
        async () => {
          dev.send({ type: 'peer', to: ['cl:ff:00:00:00:99'], payload: { text: 'anyone?' } });
          const answer = await dev.next(isAnswer, WAIT);
          return (answer.enqueued as string[]).length === 0;
        },
        WAIT,
        `${n.id} to apply the reload`,
      );
    }
    assert.match(n2.proc.stdout, /config reload from another node applied/);

    // One that n3 cannot take: it keeps its config and says so; the next one it takes clears that.
    const select = (llm: string) =>
      fetch(`http://127.0.0.1:${n1.port}/admin/config/reload`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ patch: { selected_module: { LLM: llm } } }),
      });
    assert.equal((await select('spare')).status, 200);
    const rejected = await waitFor(
      async () => {
        const h = await health(n3);
        return h.status === 'degraded' ? h : undefined;
      },
      WAIT,
      'n3 to report the rejected reload',
    );
    const why = (rejected.cluster as Json).configRejected as Json;
    assert.equal(why.from, 'n1');
    assert.match(String(why.error), /selected_module\.LLM/);
    assert.equal((await health(n2)).status, 'ok');
    assert.equal((await select('')).status, 200);
    await waitFor(async () => (await health(n3)).status === 'ok', WAIT, 'n3 to take the next reload');
  });

  it('device bindings: a device id bound through OTA on one node is refused (403) to another client id on another', async () => {
    const [n1, n2, n3] = nodes as [Node, Node, Node];
    const auth = (enabled: boolean) =>
      fetch(`http://127.0.0.1:${n1.port}/admin/config/reload`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ patch: { server: { auth: { enabled } } } }),
      });
    const ota = async (node: Node, deviceId: string, clientId: string) => {
      const r = await fetch(`http://127.0.0.1:${node.port}/xiaozhi/ota/`, {
        method: 'POST',
        headers: { 'device-id': deviceId, 'client-id': clientId, 'content-type': 'application/json' },
        body: JSON.stringify({ application: { version: '1.0.0' } }),
      });
      const body = (await r.json()) as Json;
      return { status: r.status, token: String((body.websocket as Json | undefined)?.token ?? ''), body };
    };
    const dev = 'cl:b0:00:00:00:01';
    assert.equal((await auth(true)).status, 200);
    try {
      const first = await ota(n1, dev, 'owner-client');
      assert.equal(first.status, 200, JSON.stringify(first.body));
      assert.notEqual(first.token, '');
      // n2 hands out tokens once it has applied the reload; the owner is accepted there too.
      await waitFor(async () => (await ota(n2, dev, 'owner-client')).token !== '', WAIT, 'n2 to turn auth on');
      const other = await ota(n2, dev, 'intruder-client');
      assert.equal(other.status, 403, JSON.stringify(other.body));
      assert.match(String(other.body.message), /bound to another client id/);
      const row = await schema.db.row<{ client_id: string }>(
        'SELECT client_id FROM device_bindings WHERE device_id = $1',
        [dev],
      );
      assert.equal(row?.client_id, 'owner-client');
    } finally {
      assert.equal((await auth(false)).status, 200);
      // The next tests connect without tokens: every node has auth off again.
      for (const n of [n1, n2, n3])
        await waitFor(async () => (await ota(n, dev, 'owner-client')).token === '', WAIT, `${n.id} to turn auth off`);
    }
  });

  it('kill -9 of a node: a message for its device is queued, not lost; the device reconnects elsewhere and gets it', async () => {
    const [n1] = nodes as [Node];
    // A node of its own to kill, so that the other tests keep their three in any order; the queue on, whatever
    // an earlier test left (n1 routes the message and decides whether to queue it).
    const doomed = await startNode('n4', cluster);
    nodes.push(doomed);
    const r = await fetch(`http://127.0.0.1:${n1.port}/admin/config/reload`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ patch: { peer: { offline_max_per_device: 100 } } }),
    });
    assert.equal(r.status, 200);
    const a = await connect(n1, 'cl:a0:00:00:00:03');
    const victim = await connect(doomed, 'cl:f0:00:00:00:03');
    await routed(doomed, 'cl:f0:00:00:00:03');
    await doomed.proc.kill();
    await new Promise<void>((resolve) => (victim.open ? victim.ws.once('close', () => resolve()) : resolve()));
    // The dead node's lease still names it for a few seconds: the request goes unanswered, the queue keeps it.
    a.send({ type: 'peer', to: ['cl:f0:00:00:00:03'], payload: { text: 'do not lose me' } });
    const receipt = await a.next(isAnswer, 10_000);
    assert.deepEqual(receipt.enqueued, ['cl:f0:00:00:00:03'], JSON.stringify(receipt));
    const back = await connect(n1, 'cl:f0:00:00:00:03');
    assert.equal(((await back.next(isMessage, WAIT)).payload as Json).text, 'do not lose me');
  });

  it('POST /admin/restart of one node drains only it: its device is served by another, the others keep theirs', async () => {
    const [n1, , n3] = nodes as [Node, Node, Node];
    // A node of its own to restart, as for kill -9: the other tests keep their three in any order.
    const restarting = await startNode('n5', cluster);
    nodes.push(restarting);
    const stay1 = await connect(n1, 'cl:a0:00:00:00:05');
    const stay3 = await connect(n3, 'cl:c0:00:00:00:05');
    const moving = await connect(restarting, 'cl:e0:00:00:00:05');
    await routed(restarting, 'cl:e0:00:00:00:05');
    const firstPid = (await health(restarting)).pid as number;
    const r = await fetch(`http://127.0.0.1:${restarting.port}/admin/restart`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    assert.equal(r.status, 202);
    assert.equal((await moving.closed).code, 1001);
    assert.ok(moving.received.some((m) => m.type === 'system' && m.event === 'shutdown'));

    // The device reconnects to another node and is served there; the other nodes' devices never left.
    const back = await connect(n1, 'cl:e0:00:00:00:05');
    await routed(n1, 'cl:e0:00:00:00:05');
    assert.equal(stay1.open && stay3.open, true, 'the devices of the other nodes stay connected');
    stay3.send({ type: 'peer', to: ['cl:e0:00:00:00:05'], payload: { text: 'after the restart' } });
    assert.equal(((await back.next(isMessage, WAIT)).payload as Json).text, 'after the restart');

    // The node comes back as a new process on its port (D14) and serves devices of the cluster again.
    const next = await waitFor(
      async () => {
        const h = await health(restarting).catch(() => undefined);
        return h && h.pid !== firstPid ? h : undefined;
      },
      30_000,
      'the replacement process',
    );
    const pid = next.pid as number;
    try {
      await connect(restarting, 'cl:e1:00:00:00:05');
      await routed(restarting, 'cl:e1:00:00:00:05');
    } finally {
      process.kill(pid, 'SIGTERM');
      await waitFor(() => !alive(pid), WAIT, 'the replacement to stop');
    }
  });
});

describe('cluster: Redis away', { skip: SKIP }, () => {
  let schema: TestSchema;
  let node: Node;
  /** A second node whose Redis stays up. */
  let other: Node;
  const prefix = testPrefix();
  const proxy = new TcpProxy();
  const devices: TestDevice[] = [];
  const health = async (): Promise<Json> =>
    (await (await fetch(`http://127.0.0.1:${node.port}/health`)).json()) as Json;
  const connect = async (deviceId: string, on = node): Promise<TestDevice> => {
    const dev = await TestDevice.connect({ url: `ws://127.0.0.1:${on.port}/xiaozhi/v1/`, deviceId });
    devices.push(dev);
    await dev.hello();
    return dev;
  };

  before(async () => {
    schema = await testSchema();
    await proxy.up();
    [node, other] = await Promise.all([
      startNode('solo', { schemaUrl: schema.url, redisUrl: proxy.url, prefix }),
      startNode('other', { schemaUrl: schema.url, redisUrl: REDIS_URL, prefix }),
    ]);
  });

  after(async () => {
    await Promise.all(devices.map((d) => d.close().catch(() => undefined)));
    await killAllCli();
    await proxy.down();
    for (const n of [node, other]) if (n) rmSync(n.dir, { recursive: true, force: true });
    if (schema) await schema.drop();
    const redis = adminClient();
    await dropPrefix(redis, prefix);
    redis.disconnect();
  });

  it('a cross-node delivery answered after the sender gave up (a stalled link) reaches the device once, not again from the queue', async () => {
    const target = await connect('rd:f0:00:00:00:01');
    const sender = await connect('rd:f1:00:00:00:01', other);
    const redis = adminClient();
    await waitFor(
      async () => ((await redis.hget(`${prefix}routes`, 'rd:f0:00:00:00:01')) ?? '').startsWith('solo\t'),
      WAIT,
      'the target routed to its node',
    );
    redis.disconnect();
    // What the target's node writes on its command connection stalls: it still reads the request (on its read
    // connection) and hands the message over, but its answer does not get through, so the sender gives up after
    // the bus deadline and queues the message.
    proxy.hold('toServer', ':cmd');
    try {
      sender.send({ type: 'peer', to: ['rd:f0:00:00:00:01'], payload: { text: 'once only' } });
      assert.equal(((await target.next(isMessage, WAIT)).payload as Json).text, 'once only');
      const receipt = await sender.next(isAnswer, WAIT);
      assert.deepEqual(receipt.enqueued, ['rd:f0:00:00:00:01'], JSON.stringify(receipt));
    } finally {
      proxy.release();
    }
    // The sender's nudge has the target's node flush the queue once its link moves again: removed, not sent again.
    await waitFor(
      async () =>
        (
          await schema.db.row<{ n: number }>('SELECT count(*)::int AS n FROM peer_queue WHERE device_id = $1', [
            'rd:f0:00:00:00:01',
          ])
        )?.n === 0,
      WAIT,
      'the queued copy removed',
    );
    target.send({ type: 'ping' });
    await target.next('pong');
    assert.equal(target.all(isMessage).length, 1, 'delivered once');
  });

  it('the node keeps serving its own devices, queues what it cannot route, says degraded and why; recovers', async () => {
    const a = await connect('rd:a0:00:00:00:01');
    const b = await connect('rd:b0:00:00:00:01');
    const elsewhere = await connect('rd:e0:00:00:00:01', other);
    const redis = adminClient();
    await waitFor(
      async () => ((await redis.hget(`${prefix}routes`, 'rd:e0:00:00:00:01')) ?? '').startsWith('other\t'),
      WAIT,
      'the device routed to the other node',
    );
    redis.disconnect();
    await proxy.down();
    const degraded = await waitFor(
      async () => {
        const h = await health();
        return h.status === 'degraded' ? h : undefined;
      },
      WAIT,
      '/health to say degraded',
    );
    assert.equal((degraded.cluster as Json).status, 'degraded');
    assert.ok((degraded.cluster as Json).reason, JSON.stringify(degraded));
    // Its own devices: delivered as ever.
    a.send({ type: 'peer', to: ['rd:b0:00:00:00:01'], payload: { text: 'same node' } });
    assert.deepEqual((await a.next(isAnswer, WAIT)).delivered, ['rd:b0:00:00:00:01']);
    assert.equal(((await b.next(isMessage, WAIT)).payload as Json).text, 'same node');
    // A device it cannot see may be on another node: kept in PostgreSQL, not refused and not lost.
    a.send({ type: 'peer', to: ['rd:c0:00:00:00:01'], payload: { text: 'somewhere' } });
    assert.deepEqual((await a.next(isAnswer, WAIT)).enqueued, ['rd:c0:00:00:00:01']);
    // One online on the other node all along: queued too, and delivered there once this node's link is back.
    a.send({ type: 'peer', to: ['rd:e0:00:00:00:01'], payload: { text: 'across the outage' } });
    assert.deepEqual((await a.next(isAnswer, WAIT)).enqueued, ['rd:e0:00:00:00:01']);
    await proxy.up();
    assert.equal(((await elsewhere.next(isMessage, 20_000)).payload as Json).text, 'across the outage');
    await waitFor(async () => (await health()).status === 'ok', 15_000, '/health to be ok again');
    const c = await connect('rd:c0:00:00:00:01');
    assert.equal(((await c.next(isMessage, WAIT)).payload as Json).text, 'somewhere');
  });

  it('away longer than the bus keeps broadcasts: back, the node applies the config reload it missed and resends task snapshots', async () => {
    const auth = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };
    const reload = async (on: Node, patch: Json) => {
      const r = await fetch(`http://127.0.0.1:${on.port}/admin/config/reload`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({ patch }),
      });
      assert.equal(r.status, 200, await r.text());
    };
    /** The token OTA hands out ('' while server.auth is off): tells which config the node has. */
    const otaToken = async (on: Node) => {
      const r = await fetch(`http://127.0.0.1:${on.port}/xiaozhi/ota/`, {
        method: 'POST',
        headers: { 'device-id': 'rg:0a:00:00:00:01', 'client-id': 'rg-client', 'content-type': 'application/json' },
        body: JSON.stringify({ application: { version: '1.0.0' } }),
      });
      return String((((await r.json()) as Json).websocket as Json | undefined)?.token ?? '');
    };
    let late: Node | undefined;
    const dev = await connect('rg:00:00:00:00:01');
    const gapsBefore = ((((await health()).cluster as Json).bus as Json).gaps as number) ?? 0;
    await proxy.down();
    await waitFor(async () => (await health()).status === 'degraded', WAIT, 'the node cut from Redis');
    try {
      // On the other node while this one is away: a reload and a task for the device's group...
      await reload(other, { server: { auth: { enabled: true } } });
      const created = await fetch(`http://127.0.0.1:${other.port}/supie/workflow/tasks`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({ groupKey: 'rg:00:00', title: 'made while you were away' }),
      });
      assert.equal(created.status, 200, await created.text());
      // ...whose broadcasts are gone before it reads again (as after a long outage: trimmed or expired).
      const redis = adminClient();
      await redis.xtrim(`${prefix}bus:all`, 'MAXLEN', 0);
      redis.disconnect();
      assert.equal(await otaToken(node), '', 'not applied while away');
      await proxy.up();
      const snap = await dev.next(
        (m) => isSnap(m) && (m.tasks as Json[]).some((t) => t.title === 'made while you were away'),
        20_000,
      );
      assert.equal(snap.groupKey, 'rg:00:00');
      await waitFor(async () => (await otaToken(node)) !== '', WAIT, 'the missed reload applied');
      const h = await health();
      assert.ok((((h.cluster as Json).bus as Json).gaps as number) > gapsBefore, JSON.stringify(h.cluster));
      const metrics = await (await fetch(`http://127.0.0.1:${node.port}/metrics`)).text();
      assert.match(metrics, /linus_cluster_bus_gaps_total\{reason="trimmed"\} [1-9]/);
      assert.match(node.proc.stdout, /config reload missed from another node applied/);
      // A node started after the reload takes it too, as it would take the manager API's config at start.
      late = await startNode('late', { schemaUrl: schema.url, redisUrl: REDIS_URL, prefix });
      assert.notEqual(await otaToken(late), '', 'the cluster reload applied at start');
    } finally {
      if (late) {
        await late.proc.kill();
        rmSync(late.dir, { recursive: true, force: true });
      }
      await proxy.up();
      await reload(other, { server: { auth: { enabled: false } } });
      await waitFor(async () => (await otaToken(node)) === '', WAIT, 'auth off again');
    }
  });
});

describe('cluster: PostgreSQL away', { skip: SKIP }, () => {
  let schema: TestSchema;
  let node: Node;
  const prefix = testPrefix();
  const proxy = new TcpProxy(Number(new URL(PG_URL || 'postgres://x:5432').port || 5432));

  before(async () => {
    schema = await testSchema();
    await proxy.up();
    const url = new URL(schema.url);
    url.hostname = '127.0.0.1';
    url.port = String(proxy.port);
    node = await startNode('pgaway', { schemaUrl: url.toString(), redisUrl: REDIS_URL, prefix });
  });

  after(async () => {
    await killAllCli();
    await proxy.down();
    if (node) rmSync(node.dir, { recursive: true, force: true });
    if (schema) await schema.drop();
    const redis = adminClient();
    await dropPrefix(redis, prefix);
    redis.disconnect();
  });

  it('a WebSocket upgrade whose store check cannot reach PostgreSQL is answered 503, and 401 once it is back', async () => {
    const r = await fetch(`http://127.0.0.1:${node.port}/admin/config/reload`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ patch: { server: { activation: { enabled: true } } } }),
    });
    assert.equal(r.status, 200, await r.text());
    const refusal = async (): Promise<UpgradeRefused> => {
      const err: unknown = await TestDevice.connect({
        url: `ws://127.0.0.1:${node.port}/xiaozhi/v1/`,
        deviceId: 'pa:00:00:00:00:01',
      }).then(
        async (dev) => {
          await dev.close();
          return new Error('connected');
        },
        (e: unknown) => e,
      );
      assert.ok(err instanceof UpgradeRefused, String(err));
      return err;
    };
    // The activation check reads PostgreSQL: a device never activated is refused 401.
    assert.equal((await refusal()).status, 401);
    await proxy.down();
    const down = await refusal();
    assert.equal(down.status, 503);
    assert.match(down.body, /store is unreachable/);
    await proxy.up();
    await waitFor(async () => (await refusal()).status === 401, WAIT, 'the store check to answer again');
  });

  it('durable writes and store reads fail with a clear error (503 over HTTP), never an ack; all work again once it is back', async () => {
    const base = `http://127.0.0.1:${node.port}`;
    const auth = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };
    const reload = async (patch: Json) => {
      const r = await fetch(`${base}/admin/config/reload`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({ patch }),
      });
      assert.equal(r.status, 200, await r.text());
    };
    await reload({ server: { activation: { enabled: false } } });
    const dev = await TestDevice.connect({
      url: `ws://127.0.0.1:${node.port}/xiaozhi/v1/`,
      deviceId: 'pa:00:00:00:00:02',
    });
    try {
      await dev.hello();
      dev.send({ type: 'mode', state: 'start', mode: 'meeting' });
      await dev.next((m) => m.type === 'mode' && m.state === 'start');
      // Devices already connected keep their sessions; OTA now needs a binding, which lives in PostgreSQL.
      await reload({ server: { auth: { enabled: true } } });
      const snippet = async (text: string) => {
        dev.send({ type: 'meeting', phase: 'snippet', items: [{ text }] });
        return dev.next((m) => m.type === 'meeting' && m.phase === 'snippet' && m.status !== undefined, WAIT);
      };
      const peer = async () => {
        dev.send({ type: 'peer', to: ['pa:00:00:00:00:99'], payload: { text: 'later' } });
        return dev.next(isAnswer, WAIT);
      };
      const update = async (title: string) => {
        dev.send({ type: 'workflow', event: 'update', tasks: [{ id: 'w1', title }] });
        return dev.next((m) => m.type === 'workflow' && m.event === 'update' && m.status !== undefined, WAIT);
      };
      const httpTask = () =>
        fetch(`${base}/supie/workflow/tasks`, {
          method: 'POST',
          headers: auth,
          body: JSON.stringify({ groupKey: 'pa:group', title: 'over http' }),
        });
      const recent = () => fetch(`${base}/supie/meetings/recent?status=all`, { headers: auth });
      const ota = () =>
        fetch(`${base}/xiaozhi/ota/`, {
          method: 'POST',
          headers: {
            'device-id': 'pa:00:00:00:00:03',
            'client-id': 'pa-ota-client',
            'content-type': 'application/json',
          },
          body: '{}',
        });
      const unreachable = async (r: Response) => {
        const body = (await r.json()) as Json;
        assert.equal(r.status, 503, JSON.stringify(body));
        assert.equal(body.success, false);
        assert.match(String(body.error), /store is unreachable/);
      };

      await proxy.down();
      const ack = await snippet('said while the store is away');
      assert.equal(ack.status, 'error', JSON.stringify(ack));
      assert.match(String(ack.message), /could not be stored/);
      // The target is offline and its queue is in PostgreSQL: a failure in the receipt, nothing `enqueued`.
      const receipt = await peer();
      assert.deepEqual(receipt.enqueued, [], JSON.stringify(receipt));
      assert.deepEqual(
        (receipt.failed as Json[]).map((f) => [f.to, f.code]),
        [['pa:00:00:00:00:99', 'INTERNAL_ERROR']],
      );
      const wf = await update('while away');
      assert.equal(wf.status, 'error', JSON.stringify(wf));
      assert.match(String(wf.message), /store is unreachable/);
      await unreachable(await httpTask());
      await unreachable(await recent());
      await unreachable(await ota());
      const health = await fetch(`${base}/health`);
      assert.equal(health.status, 200, 'the node still serves');
      const h = (await health.json()) as Json;
      assert.equal(h.status, 'degraded', JSON.stringify(h));
      assert.match(String((h.store as Json | undefined)?.error), /store is unreachable/);

      await proxy.up();
      await waitFor(async () => (await recent()).status === 200, WAIT, 'the store to answer again');
      assert.equal((await snippet('said once it is back')).status, 'ok');
      const back = await peer();
      assert.equal(back.status, 'done', JSON.stringify(back));
      assert.deepEqual(back.enqueued, ['pa:00:00:00:00:99']);
      assert.equal((await update('back')).status, 'ok');
      assert.equal((await httpTask()).status, 200);
      assert.equal((await ota()).status, 200);
      const healed = (await (await fetch(`${base}/health`)).json()) as Json;
      assert.equal(healed.status, 'ok', JSON.stringify(healed));
    } finally {
      await dev.close();
    }
  });
});
