import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { untilAborted } from './openai-common.js';

test('untilAborted: a body read that the abort left pending still ends, with the abort reason', async () => {
  const server = createServer((_req, res) => res.end(Buffer.alloc(18_000)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const ac = new AbortController();
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, { signal: ac.signal });
    const reason = new Error('deadline');
    let chunks = 0;
    await assert.rejects(
      (async () => {
        // The whole body has arrived; aborting while a chunk is held is what left Node 20's read pending for ever.
        for await (const _ of untilAborted(res.body!, ac.signal)) {
          chunks++;
          ac.abort(reason);
        }
      })(),
      (err) => err === reason,
    );
    assert.equal(chunks, 1);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test('untilAborted: passes every item of a source through and ends with it', async () => {
  async function* source(): AsyncGenerator<number> {
    yield 1;
    yield 2;
  }
  const got: number[] = [];
  for await (const n of untilAborted(source(), new AbortController().signal)) got.push(n);
  assert.deepEqual(got, [1, 2]);
});
