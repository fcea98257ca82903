/**
 * A load generator of the fuzz profile (bench/profiles/fuzz.ts): connections that send malformed frames of the
 * classes in bench/fuzz-shared.ts, drawn from a seeded generator. Each connection picks protocol v1, v2 or v3
 * (header and hello), sends a few binary frames before its hello, then its frames; every 200 frames and before it
 * ends it makes a ping/pong round trip, after which the frames before it are known to have been handled (the server
 * handles a connection's frames in order), and only then are they counted as sent. A connection ends with a clean
 * close or with one closing frame (invalid UTF-8, over the hard limit, a WebSocket framing error), whose close
 * code tells that the server got it. Reports `progress` and, at the end, `result` over IPC.
 */
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { emptyTally, type FromFuzz, type FuzzClassName, type FuzzClientConfig } from './fuzz-shared.js';

const cfg = JSON.parse(process.env.BENCH_FUZZ ?? '{}') as FuzzClientConfig;
const SYNC_EVERY = 200;
const CLOSE_CODES: Partial<Record<FuzzClassName, number>> = {
  invalid_utf8: 1007,
  over_hard_limit: 1009,
  ws_protocol: 1002,
};

// ---------------------------------------------------------------- deterministic randomness

let seed = cfg.seed >>> 0 || 1;
function rnd(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 4294967296;
}
const int = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));
const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;

/** Random bytes to cut frames from (one pool, so that big frames cost no per-byte work). */
const POOL = Buffer.alloc(Math.max(1 << 18, cfg.hardFrameBytes + 4096));
for (let i = 0; i < POOL.length; i++) POOL[i] = Math.floor(rnd() * 256);
function bytes(n: number): Buffer {
  const at = int(0, POOL.length - n);
  return POOL.subarray(at, at + n);
}

// ---------------------------------------------------------------- frames by class

const WRONG = [5, -1, 1.5, true, null, [], {}, 'x', [1, 'a'], { a: 1 }];
const wrongBut = (...not: unknown[]): unknown =>
  pick(WRONG.filter((w) => !not.some((n) => JSON.stringify(n) === JSON.stringify(w))));

/** Known types with a field of the wrong type; each fails the schema of its handler. */
const SCHEMA: (() => Record<string, unknown>)[] = [
  () => ({ type: 'hello', version: pick(['2', true, 1.5, null, [], {}]) }),
  () => ({ type: 'hello', audio_params: pick([{ sample_rate: pick([-5, 0, 'x', 1.5]) }, 'x', 5, []]) }),
  () => ({ type: 'hello', features: pick(['x', 5, true]) }),
  () => ({ type: 'listen', state: pick(['sideways', 5, null, '', []]) }),
  () => ({ type: 'listen' }),
  () => ({ type: 'listen', state: 'start', mode: pick([7, 'loud', null, {}]) }),
  () => ({ type: 'listen', state: 'detect', text: pick([5, [], {}, true]) }),
  () => ({ type: 'abort', reason: pick([5, [], {}, true]) }),
  () => ({ type: 'mcp' }),
  () => ({ type: 'mcp', payload: pick(['x', 5, null, []]) }),
  () => ({ type: 'mcp', payload: { jsonrpc: '2.0', id: pick([{}, [], true]) } }),
  () => ({ type: 'iot', descriptors: pick(['x', 5, {}]) }),
  () => ({ type: 'iot', states: [{ name: pick([1, null, []]), state: {} }] }),
  () => ({ type: 'iot', update: pick(['yes', 1, {}]) }),
  () => ({ type: 'mode', state: pick(['go', 1, null]), mode: 'meeting' }),
  () => ({ type: 'mode', state: 'start', mode: pick(['dancing', 5, null]) }),
  () => ({ type: 'server', action: pick(['explode', 5, null]) }),
  () => ({ type: 'server', action: 'update_config', content: pick(['x', 5, []]) }),
  () => ({ type: 'meeting', phase: pick(['nope', 5, null]) }),
  () => ({ type: 'meeting', phase: 'snippet', items: pick(['x', [], [{ text: 5 }], [{}], 7]) }),
  () => ({ type: 'peer', to: pick(['x', 5, null, {}]), payload: { text: 'hi' } }),
  () => ({ type: 'peer', to: [], payload: { text: 'hi' } }),
  () => ({ type: 'peer', to: ['fuzz-target'], payload: pick([5, 'x', null, []]) }),
  () => ({ type: 'peer', to: [pick([5, '', null, {}])], payload: { text: 'hi' } }),
  () => ({ type: 'peer', to: ['fuzz-target'], payload: { text: pick([5, [], {}]) } }),
  () => ({ type: 'peer', to: ['fuzz-target'], category: pick(['not a category!', 5, []]), payload: { text: 'hi' } }),
  () => ({ type: 'workflow', event: pick(['explode', 5, '', null]) }),
  () => ({ type: 'workflow', event: 'update', tasks: pick(['x', 5, {}]) }),
  () => ({ type: 'coding', event: pick([5, 'dance', null, []]) }),
];

const NO_TYPE = [
  '[]',
  '[1,2,3]',
  'null',
  'true',
  'false',
  '"hello"',
  '{}',
  '{"type":5}',
  '{"type":""}',
  '{"type":null}',
  '{"type":["listen"]}',
  '{"Type":"listen"}',
  '{"type":{"name":"x"}}',
  '{"state":"start"}',
];
const SERVER_TO_DEVICE = ['tts', 'stt', 'llm', 'alert', 'system', 'custom', 'audio'];
const VALID = [
  '{"type":"listen","state":"start","mode":"auto"}',
  '{"type":"meeting","phase":"snippet","items":[{"text":"hello"}]}',
  '{"type":"peer","to":["a"],"payload":{"text":"x"}}',
];
const PRINTABLE = ' !"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~';

function randomText(n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += PRINTABLE[Math.floor(rnd() * PRINTABLE.length)];
  return s;
}

function badJson(): string {
  const variant = int(0, 6);
  if (variant === 0) {
    const v = pick(VALID);
    return v.slice(0, int(1, v.length - 1));
  }
  if (variant === 1)
    return pick([
      "{'type':'listen'}",
      '{"type":"listen",}',
      '{"type":"listen" /* c */}',
      'NaN',
      'undefined',
      "{type:'ping'}",
      '{"a":1}{"b":2}',
    ]);
  if (variant === 2) return pick(['', '   ', '\n']);
  const s = randomText(int(1, 300));
  try {
    JSON.parse(s);
    return `{${s}`; // "{" before any JSON value is never JSON
  } catch {
    return s;
  }
}

function unknownType(): string {
  const type = rnd() < 0.3 ? pick(SERVER_TO_DEVICE) : `zz_${randomText(int(1, 12)).replace(/[^a-z]/gi, 'q')}`;
  return JSON.stringify({ type, data: wrongBut(), n: int(0, 1e6) });
}

function tooLargeText(): string {
  return JSON.stringify({ type: 'listen', state: 'detect', text: 'y'.repeat(cfg.maxFrameBytes + int(1, 2000)) });
}

function v2(payload: Buffer, opts: { version?: number; size?: number } = {}): Buffer {
  const out = Buffer.alloc(16 + payload.length);
  out.writeUInt16BE(opts.version ?? 2, 0);
  out.writeUInt16BE(int(0, 1), 2);
  out.writeUInt32BE(int(0, 0xffff), 8);
  out.writeUInt32BE(opts.size ?? payload.length, 12);
  payload.copy(out, 16);
  return out;
}

function v3(payload: Buffer, size = payload.length): Buffer {
  const out = Buffer.alloc(4 + payload.length);
  out.writeUInt8(int(0, 1), 0);
  out.writeUInt16BE(size, 2);
  payload.copy(out, 4);
  return out;
}

/** A lying length: anything but the truth, sometimes absurd. */
function lie(actual: number, max: number): number {
  const v = rnd() < 0.2 ? max : actual + pick([-1, 1]) * int(1, 1000);
  return v === actual || v < 0 || v > max ? (actual + 1) % (max + 1) : v;
}

type Binary = { cls: FuzzClassName; data: Buffer };
function binaryFrame(version: 1 | 2 | 3): Binary {
  const d = rnd();
  if (d < 0.1) return { cls: 'too_large', data: bytes(cfg.maxFrameBytes + int(1, 2000)) };
  const payload = (): Buffer => bytes(int(1, 1200));
  if (version === 1)
    return d < 0.2 ? { cls: 'binary_empty', data: Buffer.alloc(0) } : { cls: 'random_audio', data: payload() };
  if (version === 2) {
    if (d < 0.45) {
      const p = bytes(int(0, 200));
      return { cls: 'binary_length_mismatch', data: v2(p, { size: lie(p.length, 0xffffffff) }) };
    }
    if (d < 0.6)
      // 0 is not bad: the official MQTT gateway leaves the v2 version field zero, and it is accepted (issue 15).
      return { cls: 'binary_bad_version', data: v2(payload(), { version: pick([1, 3, 0xffff, int(4, 0xfffe)]) }) };
    if (d < 0.75) return { cls: 'binary_too_short', data: bytes(int(0, 15)) };
    return { cls: 'random_audio', data: v2(payload()) };
  }
  if (d < 0.5) {
    const p = bytes(int(0, 200));
    return { cls: 'binary_length_mismatch', data: v3(p, lie(p.length, 0xffff)) };
  }
  if (d < 0.7) return { cls: 'binary_too_short', data: bytes(int(0, 3)) };
  return { cls: 'random_audio', data: v3(payload()) };
}

/** One frame of a non-closing class: 55 % text, 45 % binary. */
function frame(version: 1 | 2 | 3): { cls: FuzzClassName; data: Buffer | string; binary: boolean } {
  const d = rnd();
  if (d >= 0.55) return { ...binaryFrame(version), binary: true };
  const t = d / 0.55;
  if (t < 0.25) return { cls: 'bad_json', data: badJson(), binary: false };
  if (t < 0.4) return { cls: 'no_type', data: pick(NO_TYPE), binary: false };
  if (t < 0.7) return { cls: 'schema', data: JSON.stringify(pick(SCHEMA)()), binary: false };
  if (t < 0.9) return { cls: 'unknown_type', data: unknownType(), binary: false };
  return { cls: 'too_large', data: tooLargeText(), binary: false };
}

/** Raw WebSocket frames no client library would send; each is a protocol error for the server's parser. */
function wsGarbage(): Buffer {
  const mask = bytes(4);
  return pick([
    Buffer.concat([Buffer.from([0x83, 0x80]), mask]), // reserved opcode 3
    Buffer.from([0x81, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f]), // a client frame without a mask
    Buffer.concat([Buffer.from([0xc1, 0x80]), mask]), // RSV1 set, no extension agreed
    Buffer.concat([Buffer.from([0x09, 0x80]), mask]), // a ping without FIN
    Buffer.concat([Buffer.from([0x80, 0x80]), mask]), // a continuation with nothing to continue
  ]);
}

// ---------------------------------------------------------------- connections

const tally = emptyTally();
let budget = cfg.frames;
let sentTotal = 0;
const note = (msg: string): void => void (tally.errors.length < 10 && tally.errors.push(msg));

class Conn {
  readonly pending = new Map<FuzzClassName, number>();
  pendingBeforeHello = 0;
  pendingCount = 0;
  closed: { code: number } | undefined;
  readonly closedP: Promise<{ code: number }>;
  #pongs: (() => void)[] = [];

  constructor(readonly ws: WebSocket) {
    this.closedP = new Promise((resolve) =>
      ws.once('close', (code: number) => {
        this.closed = { code };
        resolve(this.closed);
      }),
    );
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary && data.length < 40 && data.toString().startsWith('{"type":"pong"')) this.#pongs.shift()?.();
    });
  }

  send(cls: FuzzClassName, data: Buffer | string, binary: boolean, beforeHello = false): void {
    this.ws.send(data, { binary });
    this.pending.set(cls, (this.pending.get(cls) ?? 0) + 1);
    this.pendingCount++;
    if (beforeHello) this.pendingBeforeHello++;
    budget--;
    sentTotal++;
  }

  /** A ping/pong round trip; on success everything sent before it has been handled and is counted as sent. */
  async sync(): Promise<boolean> {
    if (this.closed) return false;
    const pong = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 30_000);
      this.#pongs.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
      void this.closedP.then(() => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    this.ws.send('{"type":"ping"}');
    if (!(await pong)) return false;
    for (const [cls, n] of this.pending) tally.sent[cls] += n;
    tally.beforeHello += this.pendingBeforeHello;
    this.pending.clear();
    this.pendingCount = 0;
    this.pendingBeforeHello = 0;
    return true;
  }

  /** The server closed us without being asked: what was sent since the last round trip is unconfirmed. */
  lost(why: string): void {
    tally.unexpectedCloses++;
    tally.unconfirmed += this.pendingCount;
    this.pending.clear();
    this.pendingCount = 0;
    note(`${why} (close ${this.closed?.code ?? 'none'})`);
  }
}

function open(index: number, version: 1 | 2 | 3): Promise<WebSocket | undefined> {
  const ws = new WebSocket(cfg.url, {
    headers: {
      'Device-Id': `${cfg.idPrefix}-${index}`,
      'Client-Id': `${cfg.idPrefix}-${index}`,
      'Protocol-Version': String(version),
    },
    perMessageDeflate: false,
    handshakeTimeout: 20_000,
    maxPayload: 0,
  });
  ws.on('error', () => {}); // a reset after a closing frame is expected; the close event says what happened
  return new Promise((resolve) => {
    ws.once('open', () => resolve(ws));
    ws.once('close', () => resolve(undefined));
  });
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
const CLOSING = ['invalid_utf8', 'over_hard_limit', 'ws_protocol'] as const;
let closings = 0;

async function connection(index: number): Promise<void> {
  const version = ([1, 2, 3] as const)[index % 3]!;
  const ws = await open(index, version);
  if (!ws) {
    tally.connectFailures++;
    note(`connection ${index} could not be opened`);
    return;
  }
  tally.connections++;
  const c = new Conn(ws);
  // Binary before hello: framed by the Protocol-Version header alone.
  for (let i = int(0, 2); i > 0 && budget > 0; i--) {
    const b = binaryFrame(version);
    c.send(b.cls, b.data, true, true);
  }
  ws.send(
    JSON.stringify({
      type: 'hello',
      version,
      features: { mcp: false },
      transport: 'websocket',
      audio_params: { format: 'opus', sample_rate: 16000, channels: 1, frame_duration: 60 },
    }),
  );
  // Listening, as a device is before it streams: the random audio then goes through the decoder and the VAD.
  ws.send('{"type":"listen","state":"start","mode":"auto"}');
  const frames = Math.max(1, Math.round(cfg.framesPerConnection * (0.5 + rnd())));
  for (let i = 0; i < frames && budget > 0; i++) {
    if (c.closed) break;
    const f = frame(version);
    c.send(f.cls, f.data, f.binary);
    if (c.pendingCount >= SYNC_EVERY && !(await c.sync())) break;
    if (i % 20 === 0) await tick(); // let the server's replies be read
    while (ws.bufferedAmount > 1 << 20 && !c.closed) await new Promise((r) => setTimeout(r, 5));
  }
  if (!(await c.sync())) {
    c.lost(`connection ${index} (v${version}) closed by the server`);
    ws.terminate();
    return;
  }
  // The closing classes take turns, so that even a short run meets each of them.
  const closing = budget > 0 && rnd() < cfg.closingShare ? CLOSING[closings++ % CLOSING.length] : undefined;
  if (!closing) {
    ws.close(1000, 'fuzz done');
    await Promise.race([c.closedP, new Promise((r) => setTimeout(r, 5000))]);
    if (!c.closed) ws.terminate();
    return;
  }
  budget--;
  sentTotal++;
  if (closing === 'invalid_utf8')
    ws.send(Buffer.concat([Buffer.from([0xff, 0xfe]), bytes(int(0, 100))]), { binary: false });
  else if (closing === 'over_hard_limit') ws.send(bytes(cfg.hardFrameBytes + int(1, 1000)), { binary: true });
  else (ws as unknown as { _socket: Socket })._socket.write(wsGarbage());
  let timer: NodeJS.Timeout | undefined;
  const closed = await Promise.race([
    c.closedP,
    new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), 10_000))),
  ]);
  clearTimeout(timer);
  const key = `${closing}:${closed?.code ?? 'none'}`;
  tally.closeCodes[key] = (tally.closeCodes[key] ?? 0) + 1;
  if (closed?.code === CLOSE_CODES[closing]) tally.sent[closing]++;
  else {
    tally.unconfirmed++;
    note(`${closing} on connection ${index}: close code ${closed?.code ?? 'none'}, expected ${CLOSE_CODES[closing]}`);
  }
  ws.terminate();
}

async function main(): Promise<void> {
  const started = process.cpuUsage();
  const progress = setInterval(() => process.send?.({ kind: 'progress', sent: sentTotal } satisfies FromFuzz), 1000);
  let next = 0;
  await Promise.all(
    Array.from({ length: cfg.connections }, async () => {
      while (budget > 0) await connection(next++);
    }),
  );
  clearInterval(progress);
  const cpu = process.cpuUsage(started);
  process.send?.({ kind: 'result', tally, cpuMs: (cpu.user + cpu.system) / 1000 } satisfies FromFuzz);
}

process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
void main();
