import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { envelopeFor } from '../../src/features/peer/message.js';
import { SqlitePeerQueue } from '../../src/features/peer/sqlite-queue.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { sleep } from '../support/wait.js';

/**
 * The offline queue removes a message only once it has been written to the target's socket (C4, D19): a flush
 * to a device that stops reading must not push the queue into the connection's send buffer, where an overflow
 * (close 1013) or a dying process would drop messages already removed from the store.
 */
describe('peer offline queue under a slow reader', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      server: { send_buffer_bytes: 16_384, max_messages_per_second: 100_000 },
      peer: { offline_max_per_device: 100_000 },
    });
  });
  after(() => server.stop());

  it('a target that stops reading during its flush gets every queued message once it reads again', async () => {
    // ~8 MB queued: more than the loopback socket buffers hold, so a flush that does not wait for its writes
    // fills the connection's send queue beyond 4 × send_buffer_bytes.
    const N = 4000;
    const text = 'x'.repeat(2000);
    const queue = new SqlitePeerQueue(server.db);
    const now = Date.now();
    await queue.enqueue(
      Array.from({ length: N }, (_, i) => ({
        deviceId: 'dur:target',
        envelope: envelopeFor(
          { id: `m${i}`, from: 'dur:sender', category: 'message', payload: { text: `n${i} ${text}` }, ts: now },
          'dur:target',
        ),
        queuedAt: now,
        expiresAt: now + 3_600_000,
        maxPerDevice: 100_000,
      })),
    );
    const got = new Set<string>();
    const connect = (): { ws: WebSocket; closed: Promise<number> } => {
      const ws = new WebSocket(server.url('/xiaozhi/v1/', 'ws'), {
        headers: { 'Device-Id': 'dur:target', 'Protocol-Version': '1' },
        perMessageDeflate: false,
      });
      // Listening before the upgrade completes: the flush starts as soon as the device registers.
      ws.on('message', (data: Buffer) => {
        const m = JSON.parse(data.toString()) as { event?: string; id?: string };
        if (m.event === 'message' && m.id) got.add(m.id);
      });
      ws.on('error', () => {});
      return { ws, closed: new Promise((r) => ws.once('close', (code: number) => r(code))) };
    };
    const quiet = async (): Promise<void> => {
      for (let last = -1; got.size !== last; await sleep(500)) last = got.size;
    };

    // A slow reader: it stops reading right after the upgrade, for longer than the flush needs to fill its buffers.
    const slow = connect();
    await new Promise<void>((r) => slow.ws.once('open', () => r()));
    const sock = (slow.ws as unknown as { _socket: Socket })._socket;
    sock.pause();
    await sleep(1500);
    sock.resume();
    await quiet();
    slow.ws.close();
    await slow.closed;

    // Whatever the first connection did not get is still queued and comes with the next registration.
    const again = connect();
    await new Promise<void>((r) => again.ws.once('open', () => r()));
    await quiet();
    again.ws.close();
    await again.closed;
    const missing = Array.from({ length: N }, (_, i) => `m${i}`).filter((id) => !got.has(id));
    assert.deepEqual(missing.slice(0, 10), [], `${missing.length} of ${N} queued messages never reached the target`);
  });
});
