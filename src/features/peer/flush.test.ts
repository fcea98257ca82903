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
import { createPeerFeature, type PeerFeature } from './index.js';

type Json = { type: string } & Record<string, unknown>;

/**
 * A connection whose socket takes `writable` more messages and then fails every write (it died mid-flush), as
 * Session.deliverWritten reports it. What it accepted but never wrote must not count as sent.
 */
class Device implements DeviceConnection {
  readonly connectionId: string;
  readonly written: Json[] = [];
  /** What the feature uses of a Session when this device sends (receipts go to send.json). */
  readonly send = { json: (m: Json) => this.deliver(m) };
  readonly log = silentLogger();
  constructor(
    readonly deviceId: string,
    private writable = Infinity,
  ) {
    this.connectionId = `conn-${deviceId}-${Math.random()}`;
  }
  replacedBy(): void {}
  deliver(message: Json): boolean {
    this.written.push(message);
    return true;
  }
  deliverText(json: string): boolean {
    return this.deliver(JSON.parse(json) as Json);
  }
  deliverWritten(message: Json): Promise<boolean> {
    // Settled later, like a socket write callback.
    return new Promise((resolve) =>
      setImmediate(() => {
        if (this.writable-- <= 0) return resolve(false);
        this.written.push(message);
        resolve(true);
      }),
    );
  }
}

const waitFor = async (check: () => boolean, what: string): Promise<void> => {
  for (const until = Date.now() + 3000; !check(); await new Promise((r) => setTimeout(r, 5))) if (Date.now() > until) throw new Error(`timed out: ${what}`);
};

describe('peer offline queue flush: removed only once written', () => {
  let dir: string;
  let db: Db;
  let peer: PeerFeature;
  let ctx: ServerContext;
  let directory: DeviceDirectory;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'linus-peer-flush-'));
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
    peer = createPeerFeature({ ctx, db, providers: new ProviderRegistry(config, createProviderFactories(), log), directory });
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
  const texts = (d: Device): string[] => d.written.filter((m) => m.event === 'message').map((m) => String((m.payload as Json).text));

  it('a message whose write failed stays queued and comes, in order, with the next connection', async () => {
    const sender = new Device('flush:s');
    online(sender);
    for (const text of ['q1', 'q2', 'q3', 'q4', 'q5']) ctx.messages.dispatch(sender as unknown as Session, 'peer', { type: 'peer', to: ['flush:t'], payload: { text } });
    await waitFor(() => sender.written.filter((m) => m.status === 'done').length === 5, 'five receipts');
    assert.ok(sender.written.filter((m) => m.status === 'done').every((r) => (r.enqueued as string[]).includes('flush:t')));

    // The first connection writes two messages, then its socket dies.
    const first = new Device('flush:t', 2);
    online(first);
    await waitFor(() => sender.written.some((m) => m.event === 'redelivered'), 'first redelivered ack');
    assert.deepEqual(texts(first), ['q1', 'q2']);
    ctx.registry.unregister(first);
    assert.equal(await peer.queue.count('flush:t', Date.now()), 3, 'the three unwritten messages are still queued');

    const second = new Device('flush:t');
    online(second);
    await waitFor(() => texts(second).length === 3, 'the rest on the next connection');
    assert.deepEqual(texts(second), ['q3', 'q4', 'q5']);
    assert.equal(await peer.queue.count('flush:t', Date.now()), 0);
    assert.deepEqual(sender.written.filter((m) => m.event === 'redelivered').map((m) => m.count), [2, 3]);
  });
});
