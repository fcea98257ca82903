import assert from 'node:assert/strict';
import { createDecipheriv } from 'node:crypto';
import { describe, it } from 'node:test';
import { makeNonce, newUdpKey, openUdpPacket, parseUdpHeader, sealUdpPacket } from './udp-packet.js';

describe('UDP audio packet (MQTT + UDP transport)', () => {
  const key = newUdpKey();
  const nonce = makeNonce(0xa1b2c3d4);
  const opus = Buffer.from('not really opus, but bytes');

  it('writes the nonce with length, timestamp and sequence, and encrypts with the header as the CTR block', () => {
    const packet = sealUdpPacket(key, nonce, opus, 1234, 7);
    assert.deepEqual(parseUdpHeader(packet), {
      ok: true,
      header: { payloadLength: opus.length, ssrc: 0xa1b2c3d4, timestamp: 1234, sequence: 7 },
    });
    assert.notDeepEqual(packet.subarray(16), opus);
    // Any AES-128-CTR implementation with the header as IV reads it back.
    const d = createDecipheriv('aes-128-ctr', key, packet.subarray(0, 16));
    assert.deepEqual(Buffer.concat([d.update(packet.subarray(16)), d.final()]), opus);
    assert.deepEqual(openUdpPacket(key, packet), opus);
  });

  it('refuses short packets, another type and a length that lies', () => {
    assert.deepEqual(parseUdpHeader(Buffer.alloc(15)), { ok: false, reason: 'udp_too_short' });
    const packet = sealUdpPacket(key, nonce, opus, 0, 1);
    const other = Buffer.from(packet);
    other[0] = 0x02;
    assert.deepEqual(parseUdpHeader(other), { ok: false, reason: 'udp_bad_type' });
    assert.deepEqual(parseUdpHeader(packet.subarray(0, packet.length - 1)), {
      ok: false,
      reason: 'udp_length_mismatch',
    });
  });
});
