import type { Socket } from 'node:net';
import opus from '@discordjs/opus';
import WebSocket from 'ws';
import { decodeFrame, encodeFrame, type ProtocolVersion } from '../../src/protocol/framing.js';

/**
 * A test device that speaks like the firmware (ids and version in headers, hello with `version` and
 * `audio_params`) or like a browser client (ids in the query, hello without version or audio_params).
 * It frames audio v1/v2/v3 in both directions and encodes real Opus.
 */
export type Json = Record<string, unknown> & { type?: string };

export interface DeviceOptions {
  /** ws://127.0.0.1:<port>/xiaozhi/v1/ */
  url: string;
  style?: 'firmware' | 'browser';
  deviceId?: string;
  clientId?: string;
  protocolVersion?: ProtocolVersion;
  /** Token sent as `Authorization: Bearer <token>` (firmware) or `?authorization=Bearer%20<token>` (browser). */
  token?: string;
  headers?: Record<string, string>;
  /** Answer WS-level pings (default true); false simulates a dead peer. */
  autoPong?: boolean;
  /** Connect from this local address (another 127.x.y.z looks like another client to the server). */
  localAddress?: string;
  /**
   * `gateway`: audio framed as the official MQTT gateway frames it on its link to the chat server (Protocol-Version
   * 2, but of the 16-byte header only the timestamp at 8 and the payload length at 12 are written; the rest stays
   * zero), and read back the same way. Default: the device's own framing for `protocolVersion`.
   */
  framing?: 'device' | 'gateway';
}

/** A 16-byte header with only bytes 8–12 (timestamp) and 12–16 (payload length) set, big-endian. */
export function gatewayFrame(opus: Buffer, timestamp: number): Buffer {
  const out = Buffer.alloc(16 + opus.length);
  out.writeUInt32BE(timestamp >>> 0, 8);
  out.writeUInt32BE(opus.length, 12);
  opus.copy(out, 16);
  return out;
}

/** What the gateway reads from a chat server frame: the timestamp and as many payload bytes as the header says. */
export function readGatewayFrame(frame: Buffer): { timestamp: number; payload: Buffer } {
  return { timestamp: frame.readUInt32BE(8), payload: frame.subarray(16, 16 + frame.readUInt32BE(12)) };
}

export class UpgradeRefused extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`upgrade refused with HTTP ${status}: ${body}`);
  }
}

type Waiter = { match: (m: Json) => boolean; resolve: (m: Json) => void };

/** JSON messages a test client received, and waiting for the next one that matches (any transport). */
export class Inbox {
  /** Every JSON message received, in order (consumed or not). */
  readonly received: Json[] = [];
  #queue: Json[] = [];
  #waiters: Waiter[] = [];

  push(msg: Json): void {
    this.received.push(msg);
    const i = this.#waiters.findIndex((w) => w.match(msg));
    if (i >= 0) this.#waiters.splice(i, 1)[0]!.resolve(msg);
    else this.#queue.push(msg);
  }

  /** Next not-yet-consumed message matching the type (or predicate). */
  next(match: string | ((m: Json) => boolean), timeoutMs = 2000): Promise<Json> {
    const pred = typeof match === 'string' ? (m: Json) => m.type === match : match;
    const i = this.#queue.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.#queue.splice(i, 1)[0]!);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        match: pred,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        reject(
          new Error(
            `no ${typeof match === 'string' ? match : 'matching'} message within ${timeoutMs} ms; got ${JSON.stringify(this.received.slice(-5))}`,
          ),
        );
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  /** Messages received so far that match, without consuming them. */
  all(match: string | ((m: Json) => boolean)): Json[] {
    const pred = typeof match === 'string' ? (m: Json) => m.type === match : match;
    return this.received.filter(pred);
  }
}

/** 16 kHz mono s16le PCM → 60 ms Opus packets with real libopus, as the firmware encodes its microphone. */
export class UplinkEncoder {
  #encoder: opus.OpusEncoder | undefined;

  encode(pcm: Buffer): Buffer[] {
    this.#encoder ??= new opus.OpusEncoder(16000, 1);
    const frameBytes = 960 * 2;
    const packets: Buffer[] = [];
    for (let off = 0; off + frameBytes <= pcm.length; off += frameBytes)
      packets.push(this.#encoder.encode(pcm.subarray(off, off + frameBytes)));
    return packets;
  }
}

export class TestDevice {
  readonly ws: WebSocket;
  readonly opts: DeviceOptions;
  readonly inbox = new Inbox();
  /** Every JSON message received, in order (consumed or not). */
  readonly received = this.inbox.received;
  /** Every binary frame received, raw. */
  readonly binary: Buffer[] = [];
  /** Raw text frames that were not JSON objects. */
  readonly rawText: string[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly #uplink = new UplinkEncoder();
  version: ProtocolVersion;

  private constructor(ws: WebSocket, opts: DeviceOptions) {
    this.ws = ws;
    this.opts = opts;
    this.version = opts.protocolVersion ?? 1;
    this.closed = new Promise((resolve) =>
      ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    ws.on('message', (data: Buffer, isBinary) => {
      if (isBinary) {
        this.binary.push(data);
        return;
      }
      const text = data.toString('utf8');
      let msg: unknown;
      try {
        msg = JSON.parse(text);
      } catch {
        this.rawText.push(text);
        return;
      }
      if (!msg || typeof msg !== 'object' || Array.isArray(msg)) {
        this.rawText.push(text);
        return;
      }
      this.inbox.push(msg as Json);
    });
  }

  static connect(opts: DeviceOptions): Promise<TestDevice> {
    const style = opts.style ?? 'firmware';
    const url = new URL(opts.url);
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (style === 'firmware') {
      if (opts.deviceId) headers['Device-Id'] = opts.deviceId;
      if (opts.clientId) headers['Client-Id'] = opts.clientId;
      headers['Protocol-Version'] = String(opts.protocolVersion ?? 1);
      if (opts.token) headers.Authorization = opts.token.includes(' ') ? opts.token : `Bearer ${opts.token}`;
    } else {
      if (opts.deviceId) url.searchParams.set('device-id', opts.deviceId);
      if (opts.clientId) url.searchParams.set('client-id', opts.clientId);
      if (opts.token) url.searchParams.set('authorization', `Bearer ${opts.token}`);
    }
    const ws = new WebSocket(url, {
      headers,
      perMessageDeflate: false,
      autoPong: opts.autoPong ?? true,
      ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
    });
    const device = new TestDevice(ws, opts);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(device));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => reject(new UpgradeRefused(res.statusCode ?? 0, body)));
      });
      ws.once('error', reject);
    });
  }

  /** The hello this kind of client sends. */
  helloMessage(extra: Json = {}): Json {
    if ((this.opts.style ?? 'firmware') === 'firmware') {
      return {
        type: 'hello',
        version: this.version,
        features: { mcp: true },
        transport: 'websocket',
        audio_params: { format: 'opus', sample_rate: 16000, channels: 1, frame_duration: 60 },
        ...extra,
      };
    }
    return {
      type: 'hello',
      device_id: this.opts.deviceId,
      device_name: 'test browser',
      token: this.opts.token,
      features: { mcp: false },
      ...extra,
    };
  }

  /** Sends hello and waits for the server hello. */
  async hello(extra: Json = {}, timeoutMs = 2000): Promise<Json> {
    this.send(this.helloMessage(extra));
    return this.next('hello', timeoutMs);
  }

  send(msg: Json): void {
    this.ws.send(JSON.stringify(msg));
  }

  sendText(text: string): void {
    this.ws.send(text);
  }

  sendBinary(data: Buffer): void {
    this.ws.send(data, { binary: true });
  }

  /**
   * Sends everything `fn` sends in one write to the socket, so the server reads it as one chunk and handles every
   * frame in one go (no I/O turn between them): how a device's frames arrive when it catches up after a stall.
   */
  burst(fn: () => void): void {
    // ws keeps its socket private; cork/uncork is the stream API for batching writes into one.
    const socket = (this.ws as unknown as { _socket: Socket })._socket;
    socket.cork();
    try {
      fn();
    } finally {
      socket.uncork();
    }
  }

  /** One Opus packet framed for this device's protocol version. */
  sendOpus(packet: Buffer, timestamp = 0): void {
    this.sendBinary(
      this.opts.framing === 'gateway' ? gatewayFrame(packet, timestamp) : encodeFrame(this.version, packet, timestamp),
    );
  }

  /** Encodes 16 kHz mono s16le PCM into 60 ms Opus packets (real libopus). */
  encodePcm(pcm: Buffer): Buffer[] {
    return this.#uplink.encode(pcm);
  }

  /** Whether frames can still be sent. */
  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** Opus payloads of the binary frames received so far, unwrapped from this device's framing. */
  receivedOpus(): Buffer[] {
    return this.binary.map((b) => {
      if (this.opts.framing === 'gateway') return readGatewayFrame(b).payload;
      const r = decodeFrame(this.version, b);
      if (!r.ok) throw new Error(`bad downlink frame: ${r.reason}`);
      return r.frame.payload;
    });
  }

  /** Next not-yet-consumed message matching the type (or predicate). */
  next(match: string | ((m: Json) => boolean), timeoutMs = 2000): Promise<Json> {
    return this.inbox.next(match, timeoutMs);
  }

  /** Messages received so far that match, without consuming them. */
  all(match: string | ((m: Json) => boolean)): Json[] {
    return this.inbox.all(match);
  }

  close(): Promise<{ code: number; reason: string }> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close();
    return this.closed;
  }
}

/** 16 kHz mono s16le PCM: a tone, so Opus has something real to encode. */
export function tonePcm(ms: number, hz = 440, sampleRate = 16000): Buffer {
  const n = Math.round((sampleRate * ms) / 1000);
  const buf = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) buf.writeInt16LE(Math.round(Math.sin((2 * Math.PI * hz * i) / sampleRate) * 8000), i * 2);
  return buf;
}
