/**
 * A load-generating child of the idle and control profiles (bench/lib/transport-load.ts). It opens `count` firmware-style connections (headers + hello,
 * waiting for the hello reply), says `ready`, then either holds them idle or, on `go`, runs sequential
 * ping→pong loops on every connection. It ends on SIGTERM or when the orchestrator goes away.
 * Anything else the server sends (broadcasts, notices) is tolerated, as a device would, and counted as a push.
 */
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import {
  deviceId,
  HELLO,
  HELLO_NO_PRESENCE,
  Histogram,
  PING,
  type FromLoad,
  type Heartbeats,
  type LoadConfig,
  type ToLoad,
} from './shared.js';

const cfg = JSON.parse(process.env.BENCH_LOAD ?? '{}') as LoadConfig;
const sockets: WebSocket[] = [];
const pushes = { messages: 0, bytes: 0 };
/** The part of `pushes` that went to connections that opted out of presence broadcasts. */
const optedOut = { connections: 0, pushes: { messages: 0, bytes: 0 } };
const optsOut = (n: number): boolean => !!cfg.presenceOptOutEvery && n % cfg.presenceOptOutEvery === 0;

function tell(msg: FromLoad): void {
  process.send?.(msg);
}

function typeOf(data: WebSocket.RawData): unknown {
  try {
    return (JSON.parse(String(data)) as { type?: unknown }).type;
  } catch {
    return undefined;
  }
}

const heartbeats: Heartbeats = { sent: 0, pongs: 0, open: 0 };
let heartbeatTimer: NodeJS.Timeout | undefined;

/** Idle sockets: a pong answers a heartbeat; anything else is a push. */
function onIdleMessage(data: WebSocket.RawData, optOut: boolean): void {
  if (typeOf(data) === 'pong') heartbeats.pongs++;
  else countPush(data, optOut);
}

/**
 * Heartbeats spread evenly: every 100 ms the next slice of the sockets sends a ping, so that each socket sends
 * one per heartbeatMs and the server never sees them all at once.
 */
function startHeartbeats(): void {
  const every = cfg.heartbeatMs ?? 0;
  if (!every || !sockets.length) return;
  const TICK = 100;
  let next = 0;
  let owed = 0;
  heartbeatTimer = setInterval(() => {
    owed += (sockets.length * TICK) / every;
    for (; owed >= 1; owed--) {
      const ws = sockets[next++ % sockets.length]!;
      if (ws.readyState !== WebSocket.OPEN) continue;
      ws.send(PING);
      heartbeats.sent++;
    }
  }, TICK);
}

/** Stops the heartbeats and gives the last pongs up to 2 s to arrive before a report. */
async function settleHeartbeats(): Promise<void> {
  clearInterval(heartbeatTimer);
  heartbeatTimer = undefined;
  for (let i = 0; i < 40 && heartbeats.pongs < heartbeats.sent; i++) await new Promise((r) => setTimeout(r, 50));
  heartbeats.open = sockets.filter((ws) => ws.readyState === WebSocket.OPEN).length;
}

function countPush(data: WebSocket.RawData, optOut = false): void {
  const bytes = Array.isArray(data) ? data.reduce((s, b) => s + b.length, 0) : data.byteLength;
  for (const p of optOut ? [pushes, optedOut.pushes] : [pushes]) {
    p.messages++;
    p.bytes += bytes;
  }
}

/** Upgrade with the firmware headers, send hello, resolve on the server hello. */
function open(n: number): Promise<WebSocket> {
  const optOut = optsOut(n);
  const ws = new WebSocket(cfg.url, {
    headers: { 'Device-Id': deviceId(n), 'Client-Id': randomUUID(), 'Protocol-Version': '1' },
    perMessageDeflate: false,
    handshakeTimeout: cfg.timeoutMs,
  });
  // A later socket error must not crash the process; the ping loop notices the dead socket.
  ws.on('error', () => {});
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`no hello reply within ${cfg.timeoutMs} ms`)), cfg.timeoutMs);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      ws.off('message', onMessage);
      ws.terminate();
      reject(err);
    };
    const onMessage = (data: WebSocket.RawData): void => {
      if (typeOf(data) !== 'hello') return countPush(data, optOut);
      clearTimeout(timer);
      ws.off('message', onMessage);
      // Idle sockets only count what the server pushes; the ping loop handles its own messages.
      if (cfg.mode === 'idle') ws.on('message', (d) => onIdleMessage(d, optOut));
      if (optOut) optedOut.connections++;
      resolve(ws);
    };
    ws.once('open', () => ws.send(optOut ? HELLO_NO_PRESENCE : HELLO));
    ws.on('message', onMessage);
    ws.once('unexpected-response', (_req, res) => fail(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
    ws.once('error', fail);
    ws.once('close', () => fail(new Error('closed before hello reply')));
  });
}

async function openAll(): Promise<void> {
  const started = performance.now();
  let next = 0;
  let failed = 0;
  let firstError: string | undefined;
  const worker = async (): Promise<void> => {
    while (next < cfg.count && performance.now() - started < cfg.openForMs) {
      const n = cfg.firstId + next++;
      try {
        sockets.push(await open(n));
      } catch (err) {
        failed++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(cfg.concurrency, cfg.count) }, worker));
  failed += cfg.count - next; // never started: the open window closed first
  firstError ??= next < cfg.count ? `stopped opening after ${cfg.openForMs} ms` : undefined;
  tell({
    kind: 'ready',
    opened: sockets.length,
    failed,
    ...(firstError ? { firstError } : {}),
    ms: performance.now() - started,
  });
  if (cfg.mode === 'idle') startHeartbeats();
}

/** Every socket runs ping→wait pong→ping…; only round trips completed inside the measured window count. */
async function pingLoops(warmupMs: number, measureMs: number): Promise<void> {
  const hist = new Histogram();
  const start = performance.now();
  const measureFrom = start + warmupMs;
  const deadline = measureFrom + measureMs;
  let roundTrips = 0;
  let cpu0 = process.cpuUsage();
  setTimeout(() => (cpu0 = process.cpuUsage()), warmupMs);
  const loops = sockets.map(
    (ws) =>
      new Promise<void>((resolve) => {
        let sentAt = 0;
        const send = (): void => {
          if (performance.now() >= deadline || ws.readyState !== WebSocket.OPEN) return finish();
          sentAt = performance.now();
          ws.send(PING);
        };
        const onMessage = (data: WebSocket.RawData): void => {
          if (typeOf(data) !== 'pong') return countPush(data);
          const now = performance.now();
          if (now >= measureFrom && now < deadline) {
            roundTrips++;
            hist.add((now - sentAt) * 1000);
          }
          send();
        };
        const finish = (): void => {
          ws.off('message', onMessage);
          resolve();
        };
        ws.on('message', onMessage);
        send();
      }),
  );
  // A pong that never comes must not hold the run: give outstanding ones one second past the deadline.
  await Promise.race([Promise.all(loops), new Promise((r) => setTimeout(r, warmupMs + measureMs + 1000))]);
  const cpu = process.cpuUsage(cpu0);
  const lost = sockets.filter((ws) => ws.readyState !== WebSocket.OPEN).length;
  tell({
    kind: 'result',
    roundTrips,
    measuredMs: measureMs,
    buckets: hist.counts,
    cpuMs: (cpu.user + cpu.system) / 1000,
    lost,
    pushes,
  });
}

process.on('message', (msg: ToLoad) => {
  if (msg.kind === 'go' && cfg.mode === 'ping') void pingLoops(msg.warmupMs, msg.measureMs);
  else if (msg.kind === 'report') {
    if (cfg.mode === 'idle')
      void settleHeartbeats().then(() =>
        tell({ kind: 'pushes', pushes, heartbeats, ...(cfg.presenceOptOutEvery ? { optedOut } : {}) }),
      );
    else tell({ kind: 'pushes', pushes });
  }
});
// The orchestrator died or hung up: never outlive it.
process.on('disconnect', () => process.exit(0));

void openAll();
