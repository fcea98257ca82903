import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BACKENDS, type OpenedStores } from '../../../test/support/store-backends.js';
import type { PeerEnvelope } from './message.js';
import type { EnqueueItem, PeerQueue } from './queue.js';

let counter = 0;
function item(deviceId: string, text: string, opts: { at?: number; ttl?: number; cap?: number } = {}): EnqueueItem {
  const at = opts.at ?? 1000;
  const envelope: PeerEnvelope = {
    type: 'peer',
    event: 'message',
    id: `msg-${++counter}`,
    from: 'sender',
    to: deviceId,
    category: 'chat',
    payload: { text },
    ts: at,
  };
  return { deviceId, envelope, queuedAt: at, expiresAt: at + (opts.ttl ?? 10_000), maxPerDevice: opts.cap ?? 100 };
}

const texts = async (q: PeerQueue, deviceId: string, now = 1000) =>
  (await q.peek(deviceId, 1000, now)).map((m) => m.envelope.payload.text);

/** The PeerQueue contract (queue.ts), run against each backend (SQLite, PostgreSQL). */
for (const backend of BACKENDS)
  describe(`peer queue contract: ${backend.name}`, { skip: backend.skip }, () => {
    let opened: OpenedStores;
    let queue: PeerQueue;
    before(async () => {
      opened = await backend.open();
      queue = opened.stores.peerQueue;
    });
    after(() => opened.close());

    it('keeps messages durably in enqueue order; peek removes nothing; remove by ref', async () => {
      assert.deepEqual(await queue.enqueue([item('d1', 'a'), item('d1', 'b'), item('d2', 'x')]), [
        'queued',
        'queued',
        'queued',
      ]);
      assert.deepEqual(await texts(queue, 'd1'), ['a', 'b']);
      assert.deepEqual(await texts(queue, 'd1'), ['a', 'b'], 'peek again: still there');
      const [first] = await queue.peek('d1', 1, 1000);
      assert.equal(first?.from, 'sender');
      assert.equal(first?.deviceId, 'd1');
      assert.equal(first?.envelope.to, 'd1');
      await queue.remove([first!.ref]);
      assert.deepEqual(await texts(queue, 'd1'), ['b']);
      assert.equal(await queue.count('d1', 1000), 1);
      assert.deepEqual(await queue.waiting(1000, 10), [
        { deviceId: 'd1', count: 1 },
        { deviceId: 'd2', count: 1 },
      ]);
    });

    it('writes of one tick are committed together and keep their order', async () => {
      const all = Array.from({ length: 200 }, (_, i) => queue.enqueue([item('burst', `m${i}`, { cap: 1000 })]));
      assert.ok((await Promise.all(all)).every((o) => o[0] === 'queued'));
      assert.deepEqual(
        await texts(queue, 'burst'),
        Array.from({ length: 200 }, (_, i) => `m${i}`),
      );
      const refs = (await queue.peek('burst', 1000, 1000)).map((m) => m.ref);
      await Promise.all([queue.remove(refs.slice(0, 100)), queue.enqueue([item('burst', 'late', { cap: 1000 })])]);
      assert.equal(await queue.count('burst', 1000), 101);
      assert.equal((await texts(queue, 'burst')).at(-1), 'late');
    });

    it('a full device refuses new messages and never drops older ones; expired rows make room', async () => {
      const out = await queue.enqueue([1, 2, 3, 4].map((i) => item('capped', `c${i}`, { cap: 3 })));
      assert.deepEqual(out, ['queued', 'queued', 'queued', 'full']);
      assert.deepEqual(await texts(queue, 'capped'), ['c1', 'c2', 'c3']);
      // At 20,000 ms the three (expiring at 11,000) are expired: purged, and the new one fits.
      assert.deepEqual(await queue.enqueue([item('capped', 'later', { at: 20_000, cap: 3 })]), ['queued']);
      assert.deepEqual(await texts(queue, 'capped', 20_000), ['later']);
      assert.deepEqual(await queue.enqueue([item('capped', 'dead', { ttl: 0 })]), ['full'], 'already expired');
    });

    it('expired messages are invisible and dropped, per device or all', async () => {
      await queue.enqueue([
        item('old', 'o1', { ttl: 10 }),
        item('old', 'o2', { ttl: 10 }),
        item('old2', 'p', { ttl: 10 }),
      ]);
      assert.equal(await queue.count('old', 5000), 0);
      assert.deepEqual(await texts(queue, 'old', 5000), []);
      assert.equal(await queue.dropExpired(5000, 'old'), 2);
      assert.ok((await queue.dropExpired(5000)) >= 1);
      assert.ok(!(await queue.waiting(5000, 100)).some((w) => w.deviceId.startsWith('old')));
    });

    it('two queues on the same data (two nodes): the cap holds and nothing is lost', async () => {
      const other = opened.again().peerQueue;
      try {
        const outcomes = await Promise.all(
          Array.from({ length: 40 }, (_, i) => (i % 2 ? other : queue).enqueue([item('shared', `s${i}`, { cap: 25 })])),
        );
        assert.equal(outcomes.flat().filter((o) => o === 'queued').length, 25);
        assert.equal(await other.count('shared', 1000), 25);
        const seen = await other.peek('shared', 100, 1000);
        await queue.remove(seen.map((m) => m.ref));
        assert.equal(await other.count('shared', 1000), 0);
      } finally {
        await other.close();
      }
    });

    it('close commits what is pending, then refuses', async () => {
      const other = opened.again().peerQueue;
      const pending = other.enqueue([item('closing', 'kept')]);
      await other.close();
      assert.deepEqual(await pending, ['queued']);
      assert.deepEqual(await texts(queue, 'closing'), ['kept']);
      await assert.rejects(other.enqueue([item('closing', 'after')]), /closed/);
      await other.close();
    });
  });
