import assert from 'node:assert/strict';
import { it } from 'node:test';
import { WireReader, WireWriter } from './audio-wire.js';

it('records read back as written: odd byte counts before samples, growth past the first buffer, two batches', () => {
  const w = new WireWriter();
  const pcm = Int16Array.from({ length: 3000 }, (_, i) => ((i * 37) % 65536) - 32768);
  const packet = Uint8Array.from({ length: 101 }, (_, i) => i);
  for (let round = 0; round < 2; round++) {
    for (let k = 0; k < 5; k++) {
      w.u8(k);
      w.u32(0xfffffff0 + k);
      w.bytes(packet); // 4 + 101 bytes: the samples after it start at an odd offset unless padded
      w.u32(pcm.length);
      w.samples(pcm);
    }
    const { buffer, length } = w.take();
    assert.equal(w.length, 0);
    const r = new WireReader(buffer, length);
    for (let k = 0; k < 5; k++) {
      assert.equal(r.u8(), k);
      assert.equal(r.u32(), 0xfffffff0 + k);
      assert.deepEqual(r.bytes(), packet);
      const samples = r.samples(r.u32());
      assert.equal(samples.byteOffset % 2, 0);
      assert.deepEqual(samples, pcm);
    }
    assert.ok(r.done);
  }
});

it('clear() drops what was written', () => {
  const w = new WireWriter();
  w.u32(7);
  w.clear();
  w.u8(9);
  const { buffer, length } = w.take();
  assert.equal(length, 1);
  assert.equal(new WireReader(buffer, length).u8(), 9);
});
