/**
 * A small in-process device for the bench profiles (faults, storm, fuzz, crash): a real WebSocket to the server
 * with the firmware's headers, every JSON message kept, waits on predicates. Plus JSON and /metrics GETs without a
 * pooled connection (bench/lib/http.ts), so that a bench call never leaves a keep-alive socket (an open fd) in the server.
 */
import WebSocket from 'ws';
import { HELLO } from '../shared.js';
import { httpGet } from './http.js';
import { parsePrometheus, type Sample } from './prom.js';

export type Json = Record<string, unknown> & { type?: string };

export interface DeviceOptions {
  url: string;
  deviceId: string;
  protocolVersion?: 1 | 2 | 3;
  /** Handshake + hello reply limit. */
  timeoutMs?: number;
}

type Waiter = { match: (m: Json) => boolean; resolve: (m: Json) => void };

export class BenchDevice {
  readonly received: Json[] = [];
  binaryFrames = 0;
  /** Set once the socket closed: the code and reason the server (or the network) gave. */
  closeInfo: { code: number; reason: string } | undefined;
  readonly closed: Promise<{ code: number; reason: string }>;
  #waiters: Waiter[] = [];
  #onClose: (() => void)[] = [];

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) =>
      ws.once('close', (code: number, reason: Buffer) => {
        this.closeInfo = { code, reason: reason.toString() };
        for (const f of this.#onClose.splice(0)) f();
        resolve(this.closeInfo);
      }),
    );
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) return void this.binaryFrames++;
      let msg: unknown;
      try {
        msg = JSON.parse(data.toString('utf8'));
      } catch {
        return;
      }
      if (!msg || typeof msg !== 'object' || Array.isArray(msg)) return;
      this.received.push(msg as Json);
      for (const w of [...this.#waiters]) {
        if (w.match(msg as Json)) {
          this.#waiters.splice(this.#waiters.indexOf(w), 1);
          w.resolve(msg as Json);
        }
      }
    });
  }

  /** Upgrade with Device-Id/Client-Id/Protocol-Version headers; `hello` also sends hello and waits for the reply. */
  static async connect(opts: DeviceOptions & { hello?: boolean }): Promise<BenchDevice> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const ws = new WebSocket(opts.url, {
      headers: {
        'Device-Id': opts.deviceId,
        'Client-Id': opts.deviceId,
        'Protocol-Version': String(opts.protocolVersion ?? 1),
      },
      perMessageDeflate: false,
      handshakeTimeout: timeoutMs,
    });
    ws.on('error', () => {}); // seen as a close; an unhandled 'error' would end the bench
    // Listening from the start: a server may send right after the upgrade (a queue flush), and frames that came
    // with the upgrade response are emitted before an `await` after 'open' would resume.
    const dev = new BenchDevice(ws);
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error): void => {
        ws.off('open', onOpen);
        ws.terminate();
        reject(err);
      };
      const onOpen = (): void => {
        ws.off('close', onClose);
        ws.off('unexpected-response', onRefused);
        resolve();
      };
      const onClose = (): void => fail(new Error('closed during the handshake'));
      const onRefused = (_req: unknown, res: { statusCode?: number }): void =>
        fail(new Error(`upgrade refused: HTTP ${res.statusCode}`));
      ws.once('open', onOpen);
      ws.once('close', onClose);
      ws.once('unexpected-response', onRefused);
    });
    if (opts.hello !== false) {
      const reply = dev.next((m) => m.type === 'hello', timeoutMs, 'hello reply');
      dev.send({
        type: 'hello',
        version: opts.protocolVersion ?? 1,
        features: { mcp: false },
        transport: 'websocket',
        audio_params: { format: 'opus', sample_rate: 16000, channels: 1, frame_duration: 60 },
      });
      try {
        await reply;
      } catch (err) {
        dev.terminate();
        throw err;
      }
    }
    return dev;
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(msg: Json): void {
    if (this.open) this.ws.send(JSON.stringify(msg));
  }

  /** The next message matching `match` that arrives from now on; rejects on timeout or close. */
  next(match: (m: Json) => boolean, timeoutMs: number, what = 'message'): Promise<Json> {
    return new Promise((resolve, reject) => {
      if (this.closeInfo) return reject(new Error(`${what}: socket closed (${this.closeInfo.code})`));
      const onClose = (): void => {
        clearTimeout(timer);
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new Error(`${what}: socket closed (${this.closeInfo?.code})`));
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        this.#onClose = this.#onClose.filter((f) => f !== onClose);
        reject(new Error(`${what}: nothing within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter: Waiter = {
        match,
        resolve: (m) => {
          clearTimeout(timer);
          this.#onClose = this.#onClose.filter((f) => f !== onClose);
          resolve(m);
        },
      };
      this.#waiters.push(waiter);
      this.#onClose.push(onClose);
    });
  }

  /** Round trip through the server's message loop: every frame sent before it has been handled once it resolves. */
  async sync(timeoutMs = 10_000): Promise<void> {
    const pong = this.next((m) => m.type === 'pong', timeoutMs, 'pong');
    this.send({ type: 'ping' });
    await pong;
  }

  /** Closing handshake; resolves when the socket is closed (or after timeoutMs, then cut). */
  async close(timeoutMs = 5000): Promise<void> {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000, 'bench done');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.closed, new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    if (!this.closeInfo) this.ws.terminate();
  }

  /** Drops the TCP connection without a closing handshake, as a device that loses power does. */
  terminate(): void {
    this.ws.terminate();
  }
}

export async function getJson<T = unknown>(url: string, timeoutMs?: number): Promise<{ status: number; body: T }> {
  const r = await httpGet(url, timeoutMs);
  return { status: r.status, body: JSON.parse(r.body) as T };
}

/** /metrics without a pooled connection. */
export async function scrapeClose(url: string): Promise<Sample[]> {
  const r = await httpGet(url);
  if (r.status !== 200) throw new Error(`GET ${url}: HTTP ${r.status}`);
  return parsePrometheus(r.body);
}

/** /health is ok (status 200 and "ok"); false on any failure. */
export async function healthOk(port: number): Promise<boolean> {
  try {
    const r = await getJson<{ status?: string }>(`http://127.0.0.1:${port}/health`, 3000);
    return r.status === 200 && r.body.status === 'ok';
  } catch {
    return false;
  }
}

/** Whether a well-formed device can still connect, get its hello answered and a ping answered. */
export async function deviceWorks(url: string, deviceId: string): Promise<{ ok: boolean; error?: string }> {
  let dev: BenchDevice | undefined;
  try {
    dev = await BenchDevice.connect({ url, deviceId, timeoutMs: 5000 });
    await dev.sync(5000);
    return { ok: true };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  } finally {
    await dev?.close(2000);
  }
}

/**
 * A hello'd device connection, added to `all` at once so that every path can terminate it; every text frame goes
 * to `onText`. A later socket error is not thrown: it shows in the profile's figures (messages not received).
 */
export function openTextDevice(
  all: WebSocket[],
  url: string,
  deviceId: string,
  onText: (text: string) => void,
): Promise<WebSocket> {
  const ws = new WebSocket(url, {
    headers: { 'Device-Id': deviceId, 'Client-Id': deviceId, 'Protocol-Version': '1' },
    perMessageDeflate: false,
  });
  all.push(ws);
  ws.on('message', (data: Buffer, isBinary) => {
    if (!isBinary) onText(data.toString());
  });
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      ws.off('error', reject);
      ws.on('error', () => {}); // reported by the profile: what was not received, or a phase that timed out
      ws.send(HELLO);
      resolve(ws);
    });
    ws.once('error', reject);
  });
}
