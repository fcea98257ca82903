import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { validateConfig } from '../../config/load.js';
import { ConfigStore } from '../../config/store.js';
import { DeviceDirectory } from '../../hub/directory.js';
import { LocalDeviceRegistry, type DeviceConnection } from '../../hub/registry.js';
import { silentLogger } from '../../observability/log.js';
import { Metrics } from '../../observability/metrics.js';
import { createProviderFactories } from '../../providers/factories.js';
import { ProviderRegistry } from '../../providers/registry.js';
import { MessageTable } from '../../session/handlers.js';
import { Scope } from '../../session/scope.js';
import type { ServerContext, Session, SessionEvents } from '../../session/session.js';
import { openDatabase, type Db } from '../../store/sqlite.js';
import { createPeerFeature, type PeerDeps, type PeerFeature } from './index.js';
import type { EnqueueItem, PeerQueue } from './queue.js';
import { SqlitePeerQueue } from './sqlite-queue.js';

/**
 * Ordering with a queue whose calls take real time, as a PostgreSQL or Redis queue would (cluster mode): the feature
 * runs on the real message table, registry, config and SQLite queue; only the store round trip is slowed down, and
 * the devices are plain connections that record what they get.
 */
class SlowQueue implements PeerQueue {
  constructor(
    private readonly inner: PeerQueue,
    /** Writes take longer than reads, so a read issued after a write can overtake it. */
    private readonly writeMs: number,
    private readonly ms: number,
  ) {}
  #later = <T>(f: () => Promise<T>, ms = this.ms): Promise<T> => new Promise((r) => setTimeout(r, ms)).then(f);
  enqueue(items: readonly EnqueueItem[]) {
    return this.#later(() => this.inner.enqueue(items), this.writeMs);
  }
  peek(deviceId: string, limit: number, now: number) {
    return this.#later(() => this.inner.peek(deviceId, limit, now));
  }
  remove(refs: readonly string[]) {
    return this.#later(() => this.inner.remove(refs));
  }
  dropExpired(now: number, deviceId?: string) {
    return this.#later(() => this.inner.dropExpired(now, deviceId));
  }
  count(deviceId: string, now: number) {
    return this.inner.count(deviceId, now);
  }
  close() {
    return this.inner.close();
  }
}

type Json = { type: string } & Record<string, unknown>;

/** A device connection that records every message it is handed. */
class Device implements DeviceConnection {
  readonly connectionId: string;
  readonly inbox: Json[] = [];
  readonly send = { json: (m: Json) => this.deliver(m) };
  readonly log = silentLogger();
  constructor(readonly deviceId: string) {
    this.connectionId = `conn-${deviceId}`;
  }
  replacedBy(): void {}
  deliver(message: Json): boolean {
    this.inbox.push(message);
    return true;
  }
  deliverText(json: string): boolean {
    return this.deliver(JSON.parse(json) as Json);
  }
}

const waitFor = async (check: () => boolean, what: string): Promise<void> => {
  for (const until = Date.now() + 3000; !check(); await new Promise((r) => setTimeout(r, 5))) if (Date.now() > until) throw new Error(`timed out: ${what}`);
};

describe('peer routing order with a slow (remote-like) queue', () => {
  let dir: string;
  let db: Db;
  let peer: PeerFeature;
  let ctx: ServerContext;
  let directory: DeviceDirectory;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'linus-peer-lanes-'));
    db = openDatabase(dir);
    const config = new ConfigStore(validateConfig({ peer: { rate_limit_per_second: 100 } }).config);
    const log = silentLogger();
    ctx = {
      config,
      log,
      metrics: new Metrics({ defaultMetrics: false }),
      registry: new LocalDeviceRegistry(),
      authKey: 'k',
      background: new Scope('background'),
      messages: new MessageTable(),
      events: new EventEmitter<SessionEvents>(),
    };
    directory = new DeviceDirectory(join(dir, 'devices.yaml'), config, log);
    const deps: PeerDeps = { ctx, db, providers: new ProviderRegistry(config, createProviderFactories(), log), directory };
    peer = createPeerFeature(deps, { queue: new SlowQueue(new SqlitePeerQueue(db), 60, 5) });
  });
  after(async () => {
    await peer.close?.();
    directory.close();
    ctx.metrics.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const online = (d: Device): void => {
    ctx.registry.register(d);
    ctx.events.emit('registered', d as unknown as Session);
  };
  const sendPeer = (from: Device, to: string, text: string): void => ctx.messages.dispatch(from as unknown as Session, 'peer', { type: 'peer', to: [to], payload: { text } });
  const texts = (d: Device): string[] => d.inbox.filter((m) => m.event === 'message').map((m) => String((m.payload as Json).text));

  it('a flush waits for enqueues still in flight, and messages sent during the flush come after the queued ones', async () => {
    const a = new Device('lane:a');
    const t = new Device('lane:t');
    online(a);
    sendPeer(a, 'lane:t', 'q1');
    sendPeer(a, 'lane:t', 'q2');
    // The target registers while both enqueues are still on their way to the store.
    online(t);
    // Sent while the flush is reading the (slow) store.
    sendPeer(a, 'lane:t', 'live');
    await waitFor(() => texts(t).length === 3, 'three messages at the target');
    assert.deepEqual(texts(t), ['q1', 'q2', 'live']);
    await waitFor(() => a.inbox.some((m) => m.event === 'redelivered'), 'redelivered ack');
    assert.deepEqual(a.inbox.find((m) => m.event === 'redelivered'), { type: 'peer', event: 'redelivered', to: 'lane:t', count: 2 });
    const receipts = a.inbox.filter((m) => m.status === 'done');
    assert.deepEqual(receipts.map((r) => [r.enqueued, r.delivered]), [[['lane:t'], []], [['lane:t'], []], [[], ['lane:t']]]);
  });
});
