import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../../../test/support/wait.js';
import { RecordingDevice, startPeerHarness, type Json, type PeerHarness } from './peer-fixtures.js';

/**
 * A connection whose socket takes `writable` more messages and then fails every write (it died mid-flush), as
 * Session.deliverWritten reports it. What it accepted but never wrote must not count as sent.
 */
class Device extends RecordingDevice {
  constructor(
    deviceId: string,
    private writable = Infinity,
  ) {
    super(deviceId);
  }
  deliverWritten(message: Json): Promise<boolean> {
    // Settled later, like a socket write callback.
    return new Promise((resolve) =>
      setImmediate(() => {
        if (this.writable-- <= 0) return resolve(false);
        this.inbox.push(message);
        resolve(true);
      }),
    );
  }
}

describe('peer offline queue flush: removed only once written', () => {
  let h: PeerHarness;
  before(() => {
    h = startPeerHarness('flush');
  });
  after(() => h.close());

  it('a message whose write failed stays queued and comes, in order, with the next connection', async () => {
    const sender = new Device('flush:s');
    h.online(sender);
    for (const text of ['q1', 'q2', 'q3', 'q4', 'q5']) h.send(sender, 'flush:t', text);
    await waitFor(() => sender.inbox.filter((m) => m.status === 'done').length === 5, 3000, 'five receipts');
    assert.ok(
      sender.inbox.filter((m) => m.status === 'done').every((r) => (r.enqueued as string[]).includes('flush:t')),
    );

    // The first connection writes two messages, then its socket dies.
    const first = new Device('flush:t', 2);
    h.online(first);
    await waitFor(() => sender.inbox.some((m) => m.event === 'redelivered'), 3000, 'first redelivered ack');
    assert.deepEqual(h.texts(first), ['q1', 'q2']);
    h.ctx.registry.unregister(first);
    assert.equal(await h.peer.queue.count('flush:t', Date.now()), 3, 'the three unwritten messages are still queued');

    const second = new Device('flush:t');
    h.online(second);
    await waitFor(() => h.texts(second).length === 3, 3000, 'the rest on the next connection');
    assert.deepEqual(h.texts(second), ['q3', 'q4', 'q5']);
    // Removed once written: the removal commits just after the writes settle.
    await waitFor(
      async () => (await h.peer.queue.count('flush:t', Date.now())) === 0,
      3000,
      'the written messages removed',
    );
    await waitFor(
      () => sender.inbox.filter((m) => m.event === 'redelivered').length === 2,
      3000,
      'second redelivered ack',
    );
    assert.deepEqual(
      sender.inbox.filter((m) => m.event === 'redelivered').map((m) => m.count),
      [2, 3],
    );
  });
});
