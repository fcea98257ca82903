import { createCipheriv, randomBytes } from 'node:crypto';

/**
 * The firmware's UDP audio packet (MQTT + UDP transport), big-endian:
 *   u8 type (0x01) | u8 flags | u16 payload_len | u32 ssrc | u32 timestamp | u32 sequence | AES-128-CTR(payload)
 * The 16-byte header is also the CTR counter block: it is the session nonce with payload_len, timestamp and
 * sequence written over it. Both sides copy the nonce, so the ssrc at bytes 4–8 names the session in every packet
 * before anything is decrypted. CTR has no integrity check: what a packet proves is the ssrc (32 random bits, new
 * per hello) and a sequence number newer than the last one taken.
 */
export const UDP_HEADER_BYTES = 16;
export const UDP_PACKET_TYPE = 0x01;
export const UDP_ENCRYPTION = 'aes-128-ctr';

export interface UdpHeader {
  payloadLength: number;
  ssrc: number;
  timestamp: number;
  sequence: number;
}

export type UdpParse =
  { ok: true; header: UdpHeader } | { ok: false; reason: 'udp_too_short' | 'udp_bad_type' | 'udp_length_mismatch' };

export function parseUdpHeader(packet: Buffer): UdpParse {
  if (packet.length < UDP_HEADER_BYTES) return { ok: false, reason: 'udp_too_short' };
  if (packet[0] !== UDP_PACKET_TYPE) return { ok: false, reason: 'udp_bad_type' };
  const payloadLength = packet.readUInt16BE(2);
  if (payloadLength !== packet.length - UDP_HEADER_BYTES) return { ok: false, reason: 'udp_length_mismatch' };
  return {
    ok: true,
    header: {
      payloadLength,
      ssrc: packet.readUInt32BE(4),
      timestamp: packet.readUInt32BE(8),
      sequence: packet.readUInt32BE(12),
    },
  };
}

/** A session's nonce: type 0x01, the ssrc at 4–8, zero elsewhere (as the official gateway makes it). */
export function makeNonce(ssrc: number): Buffer {
  const nonce = Buffer.alloc(UDP_HEADER_BYTES);
  nonce[0] = UDP_PACKET_TYPE;
  nonce.writeUInt32BE(ssrc >>> 0, 4);
  return nonce;
}

export function newUdpKey(): Buffer {
  return randomBytes(16);
}

/** CTR is its own inverse: the same call encrypts and decrypts. */
function ctr(key: Buffer, iv: Buffer, data: Buffer): Buffer {
  const cipher = createCipheriv(UDP_ENCRYPTION, key, iv);
  const out = cipher.update(data);
  cipher.final(); // CTR is a stream mode: nothing is held back, so the result needs no second copy
  return out;
}

/** A whole packet: the nonce with length, timestamp and sequence written, then the encrypted payload. */
export function sealUdpPacket(
  key: Buffer,
  nonce: Buffer,
  payload: Buffer,
  timestamp: number,
  sequence: number,
): Buffer {
  const header = Buffer.from(nonce);
  header.writeUInt16BE(payload.length, 2);
  header.writeUInt32BE(timestamp >>> 0, 8);
  header.writeUInt32BE(sequence >>> 0, 12);
  return Buffer.concat([header, ctr(key, header, payload)]);
}

/** The payload of a packet whose header was parsed. */
export function openUdpPacket(key: Buffer, packet: Buffer): Buffer {
  return ctr(key, packet.subarray(0, UDP_HEADER_BYTES), packet.subarray(UDP_HEADER_BYTES));
}
