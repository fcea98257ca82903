import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeFrame, encodeFrame, V2_HEADER_BYTES, V3_HEADER_BYTES } from './framing.js';

const payload = Buffer.from([0x78, 1, 2, 3, 4, 5, 6, 7, 8]);

describe('binary framing (D3)', () => {
  it('v1 is the raw packet', () => {
    assert.equal(encodeFrame(1, payload), payload);
    const r = decodeFrame(1, payload);
    assert.ok(r.ok);
    assert.deepEqual(r.frame.payload, payload);
  });

  it('v2 writes a 16-byte big-endian header and round-trips', () => {
    const f = encodeFrame(2, payload, 0x01020304);
    assert.equal(f.length, V2_HEADER_BYTES + payload.length);
    assert.deepEqual([...f.subarray(0, 16)], [0, 2, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, payload.length]);
    const r = decodeFrame(2, f);
    assert.ok(r.ok);
    assert.equal(r.frame.timestamp, 0x01020304);
    assert.equal(r.frame.type, 0);
    assert.deepEqual(r.frame.payload, payload);
  });

  it('v3 writes a 4-byte header and round-trips', () => {
    const f = encodeFrame(3, payload);
    assert.deepEqual([...f.subarray(0, 4)], [0, 0, 0, payload.length]);
    const r = decodeFrame(3, f);
    assert.ok(r.ok);
    assert.deepEqual(r.frame.payload, payload);
  });

  it('rejects lying lengths in either direction', () => {
    const v2 = encodeFrame(2, payload);
    v2.writeUInt32BE(payload.length + 100, 12);
    assert.deepEqual(decodeFrame(2, v2), { ok: false, reason: 'length_mismatch' });
    v2.writeUInt32BE(payload.length - 1, 12);
    assert.deepEqual(decodeFrame(2, v2), { ok: false, reason: 'length_mismatch' });
    const v3 = encodeFrame(3, payload);
    v3.writeUInt16BE(0xffff, 2);
    assert.deepEqual(decodeFrame(3, v3), { ok: false, reason: 'length_mismatch' });
  });

  it('rejects short headers, a wrong v2 version and empty v1 packets', () => {
    assert.deepEqual(decodeFrame(2, Buffer.alloc(V2_HEADER_BYTES - 1)), { ok: false, reason: 'too_short' });
    assert.deepEqual(decodeFrame(3, Buffer.alloc(V3_HEADER_BYTES - 1)), { ok: false, reason: 'too_short' });
    const bad = encodeFrame(2, payload);
    bad.writeUInt16BE(7, 0);
    assert.deepEqual(decodeFrame(2, bad), { ok: false, reason: 'bad_version' });
    assert.deepEqual(decodeFrame(1, Buffer.alloc(0)), { ok: false, reason: 'empty' });
  });

  it('v2 accepts the MQTT gateway header: version/type/reserved zero, only timestamp and length written', () => {
    const f = Buffer.alloc(V2_HEADER_BYTES + payload.length);
    f.writeUInt32BE(1234, 8);
    f.writeUInt32BE(payload.length, 12);
    payload.copy(f, V2_HEADER_BYTES);
    const r = decodeFrame(2, f);
    assert.ok(r.ok);
    assert.equal(r.frame.timestamp, 1234);
    assert.deepEqual(r.frame.payload, payload);
  });

  it('a gateway link ignores bytes 0–8 but still checks the length', () => {
    const f = encodeFrame(2, payload, 99);
    f.writeUInt8(1, 0); // the reference server's own writer puts a type byte here
    f.writeUInt16BE(payload.length, 2);
    f.writeUInt32BE(7, 4);
    assert.deepEqual(decodeFrame(2, f), { ok: false, reason: 'bad_version' });
    const r = decodeFrame(2, f, { gateway: true });
    assert.ok(r.ok);
    assert.equal(r.frame.timestamp, 99);
    f.writeUInt32BE(payload.length + 1, 12);
    assert.deepEqual(decodeFrame(2, f, { gateway: true }), { ok: false, reason: 'length_mismatch' });
  });

  it('accepts header-only frames with a zero length', () => {
    const r = decodeFrame(3, encodeFrame(3, Buffer.alloc(0)));
    assert.ok(r.ok);
    assert.equal(r.frame.payload.length, 0);
  });

  it('refuses a v3 payload that does not fit 16 bits', () => {
    assert.throws(() => encodeFrame(3, Buffer.alloc(0x10000)), RangeError);
  });
});
