import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../../../test/support/wait.js';
import { RecordingDevice, startPeerHarness, type PeerHarness } from './peer-fixtures.js';
import type { EnqueueItem, FlushView, PeerQueue } from './queue.js';
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
  waiting(now: number, limit: number) {
    return this.inner.waiting(now, limit);
  }
  exclusive<T>(_deviceId: string, _now: number, fn: (q: FlushView) => Promise<T>): Promise<T> {
    return fn(this);
  }
  close() {
    return this.inner.close();
  }
}

describe('peer routing order with a slow (remote-like) queue', () => {
  let h: PeerHarness;
  before(() => {
    h = startPeerHarness('lanes', (db) => ({ queue: new SlowQueue(new SqlitePeerQueue(db), 60, 5) }));
  });
  after(() => h.close());

  it('a flush waits for enqueues still in flight, and messages sent during the flush come after the queued ones', async () => {
    const a = new RecordingDevice('lane:a');
    const t = new RecordingDevice('lane:t');
    h.online(a);
    h.send(a, 'lane:t', 'q1');
    h.send(a, 'lane:t', 'q2');
    // The target registers while both enqueues are still on their way to the store.
    h.online(t);
    // Sent while the flush is reading the (slow) store.
    h.send(a, 'lane:t', 'live');
    await waitFor(() => h.texts(t).length === 3, 3000, 'three messages at the target');
    assert.deepEqual(h.texts(t), ['q1', 'q2', 'live']);
    await waitFor(() => a.inbox.some((m) => m.event === 'redelivered'), 3000, 'redelivered ack');
    assert.deepEqual(
      a.inbox.find((m) => m.event === 'redelivered'),
      { type: 'peer', event: 'redelivered', to: 'lane:t', count: 2 },
    );
    const receipts = a.inbox.filter((m) => m.status === 'done');
    assert.deepEqual(
      receipts.map((r) => [r.enqueued, r.delivered]),
      [
        [['lane:t'], []],
        [['lane:t'], []],
        [[], ['lane:t']],
      ],
    );
  });
});
