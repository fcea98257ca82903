import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';

/**
 * A scripted FunASR WebSocket server for tests (a fixture, never a product default). It speaks the protocol of
 * modelscope/FunASR's runtime servers: first message = JSON config, then binary PCM, then `{"is_speaking":false}`.
 * `flavour` picks how `is_final` is set, since the two real servers disagree:
 * - `cpp` (funasr-wss-server-2pass): partials and segments `is_final:false`, the answer to the end flag `true`;
 * - `python` (funasr_wss_server.py): `is_final` = is_speaking, so partials `true`, the answer `false`, and in
 *   online mode no answer at all.
 */
export interface FunAsrScript {
  flavour?: 'cpp' | 'python';
  /** Online results, one sent per received audio frame (2pass/online modes). */
  partials?: string[];
  /** A corrected segment sent after the partials, as at a VAD end point in the middle of an utterance. */
  segment?: string;
  /** A result sent right after the end flag, before the answer (as if it was already on the wire). */
  inFlight?: { mode: 'partial' | 'segment'; text: string };
  /** Text of the answer to the end flag. */
  final?: string;
  finalDelayMs?: number;
  /** Never answer the end flag. */
  noFinal?: boolean;
  /** Hold the WebSocket handshake this long, to test audio written before the socket opens. */
  openDelayMs?: number;
}

export interface FunAsrConnection {
  headers: IncomingHttpHeaders;
  /** The first (config) message. */
  config?: Record<string, unknown>;
  /** Every text message, config included. */
  texts: Record<string, unknown>[];
  /** Binary messages, in order. */
  frames: Buffer[];
  pcmBytes: number;
  /** Binary messages that came before the config message (they would be lost on a real server). */
  framesBeforeConfig: number;
  endReceived: boolean;
  open: boolean;
  closed: Promise<number>;
}

export class FakeFunAsr {
  script: FunAsrScript = {};
  readonly connections: FunAsrConnection[] = [];
  readonly #wss: WebSocketServer;

  private constructor() {
    this.#wss = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      verifyClient: (_info, cb) => setTimeout(() => cb(true), this.script.openDelayMs ?? 0),
    });
    this.#wss.on('connection', (ws, req) => this.#serve(ws, req.headers));
  }

  static async start(): Promise<FakeFunAsr> {
    const fake = new FakeFunAsr();
    await new Promise<void>((r) => fake.#wss.once('listening', r));
    return fake;
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.#wss.address() as AddressInfo).port}`;
  }

  last(): FunAsrConnection {
    const c = this.connections.at(-1);
    if (!c) throw new Error('no FunASR connection yet');
    return c;
  }

  async stop(): Promise<void> {
    for (const ws of this.#wss.clients) ws.terminate();
    await new Promise<void>((r) => this.#wss.close(() => r()));
  }

  #serve(ws: WebSocket, headers: IncomingHttpHeaders): void {
    const s = this.script;
    const python = s.flavour === 'python';
    const conn: FunAsrConnection = {
      headers,
      texts: [],
      frames: [],
      pcmBytes: 0,
      framesBeforeConfig: 0,
      endReceived: false,
      open: true,
      closed: new Promise(() => {}),
    };
    conn.closed = new Promise((resolve) =>
      ws.on('close', (code) => {
        conn.open = false;
        resolve(code);
      }),
    );
    this.connections.push(conn);
    const mode = () => String(conn.config?.mode ?? '2pass');
    const send = (m: 'partial' | 'segment', text: string, isFinal: boolean) => {
      const label =
        m === 'partial'
          ? mode() === 'online'
            ? 'online'
            : '2pass-online'
          : mode() === 'offline'
            ? 'offline'
            : '2pass-offline';
      ws.send(JSON.stringify({ mode: label, text, wav_name: conn.config?.wav_name, is_final: isFinal }));
    };
    let partialsSent = 0;
    ws.on('message', (data: Buffer, isBinary) => {
      if (isBinary) {
        if (!conn.config) conn.framesBeforeConfig++;
        conn.frames.push(Buffer.from(data));
        conn.pcmBytes += data.length;
        if (mode() === 'offline') return;
        const partial = s.partials?.[partialsSent];
        if (partial !== undefined) {
          partialsSent++;
          send('partial', partial, python);
          if (partialsSent === s.partials?.length && s.segment) send('segment', s.segment, python);
        }
        return;
      }
      const msg = JSON.parse(data.toString()) as Record<string, unknown>;
      conn.texts.push(msg);
      conn.config ??= msg;
      if (msg.is_speaking !== false) return;
      conn.endReceived = true;
      if (s.inFlight) send(s.inFlight.mode, s.inFlight.text, python);
      if (s.noFinal || (python && mode() === 'online')) return;
      setTimeout(() => {
        if (ws.readyState !== ws.OPEN) return;
        if (mode() === 'online')
          ws.send(
            JSON.stringify({ mode: 'online', text: s.final ?? '', wav_name: conn.config?.wav_name, is_final: true }),
          );
        else send('segment', s.final ?? '', !python);
      }, s.finalDelayMs ?? 0);
    });
  }
}
