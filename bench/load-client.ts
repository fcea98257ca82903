/**
 * A load-generating child of bench/transport.ts. It opens `count` firmware-style connections (headers + hello,
 * waiting for the hello reply), says `ready`, then either holds them idle or, on `go`, runs sequential
 * ping→pong loops on every connection. It ends on SIGTERM or when the orchestrator goes away.
 * Anything else the server sends (broadcasts, notices) is tolerated, as a device would, and counted as a push.
 */
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { deviceId, HELLO, Histogram, PING, type FromLoad, type LoadConfig, type ToLoad } from './shared.js';

const cfg = JSON.parse(process.env.BENCH_LOAD ?? '{}') as LoadConfig;
const sockets: WebSocket[] = [];
const pushes = { messages: 0, bytes: 0 };

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

function countPush(data: WebSocket.RawData): void {
  pushes.messages++;
  pushes.bytes += Array.isArray(data) ? data.reduce((s, b) => s + b.length, 0) : data.byteLength;
}

/** Upgrade with the firmware headers, send hello, resolve on the server hello. */
function open(n: number): Promise<WebSocket> {
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
      if (typeOf(data) !== 'hello') return countPush(data);
      clearTimeout(timer);
      ws.off('message', onMessage);
      // Idle sockets only count what the server pushes; the ping loop handles its own messages.
      if (cfg.mode === 'idle') ws.on('message', countPush);
      resolve(ws);
    };
    ws.once('open', () => ws.send(HELLO));
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
  tell({ kind: 'ready', opened: sockets.length, failed, ...(firstError ? { firstError } : {}), ms: performance.now() - started });
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
  tell({ kind: 'result', roundTrips, measuredMs: measureMs, buckets: hist.counts, cpuMs: (cpu.user + cpu.system) / 1000, lost, pushes });
}

process.on('message', (msg: ToLoad) => {
  if (msg.kind === 'go' && cfg.mode === 'ping') void pingLoops(msg.warmupMs, msg.measureMs);
  else if (msg.kind === 'report') tell({ kind: 'pushes', pushes });
});
// The orchestrator died or hung up: never outlive it.
process.on('disconnect', () => process.exit(0));

void openAll();
