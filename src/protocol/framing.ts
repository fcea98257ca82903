/**
 * Binary audio framing of the xiaozhi WebSocket protocol (firmware `protocol.h`), big-endian:
 *   v1: the frame is one raw Opus packet.
 *   v2: u16 version(2) | u16 type | u32 reserved | u32 timestamp | u32 payload_size | payload
 *   v3: u8 type | u8 reserved | u16 payload_size | payload
 * The same version is used in both directions.
 *
 * The official MQTT gateway speaks v2 to its chat server but writes only the timestamp and payload_size of the
 * header and leaves version/type/reserved zero (and the reference server never reads them): a v2 version field of
 * 0 is accepted as that writer's, and a connection marked `?from=mqtt_gateway` is read like the reference reads it,
 * bytes 0–8 ignored. The payload size is checked in every case.
 */
export type ProtocolVersion = 1 | 2 | 3;

export const V2_HEADER_BYTES = 16;
export const V3_HEADER_BYTES = 4;
export const FRAME_TYPE_OPUS = 0;
export const FRAME_TYPE_JSON = 1;
const V3_MAX_PAYLOAD = 0xffff;

export interface AudioFrame {
  type: number;
  /** Milliseconds, v2 only (used by server-side AEC); 0 otherwise. */
  timestamp: number;
  payload: Buffer;
}

export type DecodeResult =
  { ok: true; frame: AudioFrame } | { ok: false; reason: 'too_short' | 'length_mismatch' | 'bad_version' | 'empty' };

/** Version field the official MQTT gateway leaves in its v2 headers. */
const GATEWAY_V2_VERSION = 0;

export interface DecodeOptions {
  /** A `?from=mqtt_gateway` link: bytes 0–8 of the v2 header are not read (the reference ignores them). */
  gateway?: boolean;
}

export function decodeFrame(version: ProtocolVersion, data: Buffer, opts: DecodeOptions = {}): DecodeResult {
  if (version === 1) {
    if (data.length === 0) return { ok: false, reason: 'empty' };
    return { ok: true, frame: { type: FRAME_TYPE_OPUS, timestamp: 0, payload: data } };
  }
  if (version === 2) {
    if (data.length < V2_HEADER_BYTES) return { ok: false, reason: 'too_short' };
    if (!opts.gateway) {
      const field = data.readUInt16BE(0);
      if (field !== 2 && field !== GATEWAY_V2_VERSION) return { ok: false, reason: 'bad_version' };
    }
    const size = data.readUInt32BE(12);
    // The header must describe exactly what arrived: a lying length is rejected, never trusted.
    if (size !== data.length - V2_HEADER_BYTES) return { ok: false, reason: 'length_mismatch' };
    return {
      ok: true,
      frame: {
        type: opts.gateway ? FRAME_TYPE_OPUS : data.readUInt16BE(2),
        timestamp: data.readUInt32BE(8),
        payload: data.subarray(V2_HEADER_BYTES),
      },
    };
  }
  if (data.length < V3_HEADER_BYTES) return { ok: false, reason: 'too_short' };
  const size = data.readUInt16BE(2);
  if (size !== data.length - V3_HEADER_BYTES) return { ok: false, reason: 'length_mismatch' };
  return { ok: true, frame: { type: data.readUInt8(0), timestamp: 0, payload: data.subarray(V3_HEADER_BYTES) } };
}

/** Wraps one payload for the wire. Throws RangeError for a v3 payload above 65535 bytes (no Opus packet is). */
export function encodeFrame(version: ProtocolVersion, payload: Buffer, timestamp = 0, type = FRAME_TYPE_OPUS): Buffer {
  if (version === 1) return payload;
  if (version === 2) {
    const out = Buffer.allocUnsafe(V2_HEADER_BYTES + payload.length);
    out.writeUInt16BE(2, 0);
    out.writeUInt16BE(type, 2);
    out.writeUInt32BE(0, 4);
    out.writeUInt32BE(timestamp >>> 0, 8);
    out.writeUInt32BE(payload.length, 12);
    payload.copy(out, V2_HEADER_BYTES);
    return out;
  }
  if (payload.length > V3_MAX_PAYLOAD) throw new RangeError(`v3 payload too large: ${payload.length} bytes`);
  const out = Buffer.allocUnsafe(V3_HEADER_BYTES + payload.length);
  out.writeUInt8(type, 0);
  out.writeUInt8(0, 1);
  out.writeUInt16BE(payload.length, 2);
  payload.copy(out, V3_HEADER_BYTES);
  return out;
}
