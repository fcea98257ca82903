/**
 * Peer offline-queue benchmark (C4, D19): durable enqueue and redelivery throughput through real sockets
 * against a Linus server process (`linus serve` on 127.0.0.1 with a temp data dir).
 *   1. enqueue: --senders connections send --messages peer messages, round robin over --targets devices that are
 *      offline, each sender keeping --window requests in flight. A message counts when its receipt says `enqueued`,
 *      which the server sends only after the SQLite commit (durable).
 *   2. redelivery: the --targets devices connect at once; the phase ends when every queued message has arrived.
 *      The senders' `redelivered` acks are checked to add up to --messages.
 * It prints numbers and asserts nothing. Run: npm run bench:peer -- [--messages 20000] [--json]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const HELP = `usage: npm run bench:peer -- [options]
  --messages N   peer messages to queue (20000)
  --senders N    sending connections (10)
  --targets N    offline target devices (200)
  --window N     requests in flight per sender (100)
  --text N       characters of payload.text (100)
  --server-node-args=S  extra node flags for the server (note the =), e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
  --pin on|off   pin the server to CPU 0 and this process to the others with taskset (on)
  --json         print machine-readable results`;

function flags() {
  try {
    return parseArgs({
      options: {
        messages: { type: 'string', default: '20000' },
        senders: { type: 'string', default: '10' },
        targets: { type: 'string', default: '200' },
        window: { type: 'string', default: '100' },
        text: { type: 'string', default: '100' },
        'server-node-args': { type: 'string', default: '' },
        pin: { type: 'string', default: 'on' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
    }).values;
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n${HELP}\n`);
    process.exit(2);
  }
}
const f = flags();
if (f.help) {
  process.stdout.write(`${HELP}\n`);
  process.exit(0);
}
const int = (name: 'messages' | 'senders' | 'targets' | 'window' | 'text', min: number): number => {
  const v = Number(f[name]);
  if (!Number.isInteger(v) || v < min) {
    process.stderr.write(`bench: --${name} must be an integer ≥ ${min}\n`);
    process.exit(2);
  }
  return v;
};
const MESSAGES = int('messages', 1);
const SENDERS = int('senders', 1);
const TARGETS = int('targets', 1);
const WINDOW = int('window', 1);
const TEXT = 'x'.repeat(int('text', 0));

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const note = (msg: string): void => void process.stderr.write(`bench: ${msg}\n`);

const PIN = f.pin !== 'off' && cpus().length >= 2 && spawnSync('taskset', ['-V']).status === 0;
if (PIN) spawnSync('taskset', ['-pc', cpus().length > 2 ? `1-${cpus().length - 1}` : '1', String(process.pid)]);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** User + system CPU of a process in ms (clock ticks are 100/s on Linux). */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Waits for `p`, failing after `ms`; the timer never outlives the wait. */
async function within<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what())), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

// ---------- the server process ----------

const dir = mkdtempSync(join(tmpdir(), 'linus-bench-peer-'));
let server: ChildProcess | undefined;
let serverOut = '';

async function cleanup(): Promise<void> {
  if (server && server.exitCode === null && server.signalCode === null) {
    server.kill('SIGTERM');
    await Promise.race([new Promise((r) => server!.once('exit', r)), sleep(5000)]);
    if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
  }
  rmSync(dir, { recursive: true, force: true });
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void cleanup().then(() => process.exit(130)));

async function startServer(port: number): Promise<ChildProcess> {
  const configPath = join(dir, 'config.yaml');
  writeFileSync(
    configPath,
    [
      '# written by bench/peer.ts: limits out of the way of the measurement',
      'log:',
      '  log_level: warn',
      'server:',
      '  hello_timeout_ms: 0',
      '  ws_ping_interval_ms: 0',
      '  max_messages_per_second: 1000000',
      '  stats_interval_ms: 0',
      'peer:',
      '  rate_limit_per_second: 1000000',
      `  offline_max_per_device: ${Math.ceil(MESSAGES / TARGETS) + 10}`,
      '',
    ].join('\n'),
  );
  const nodeArgs = f['server-node-args'] ? f['server-node-args'].split(/\s+/).filter(Boolean) : [];
  const args = [...nodeArgs, '--import', 'tsx', 'src/cli/index.ts', 'serve', '--host', '127.0.0.1', '--port', String(port), '--data-dir', join(dir, 'data'), '--config', configPath];
  const [cmd, argv] = PIN ? ['taskset', ['-c', '0', process.execPath, ...args]] : [process.execPath, args];
  const child = spawn(cmd, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const keep = (b: Buffer): void => void (serverOut = (serverOut + b.toString()).slice(-3000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  for (const deadline = Date.now() + 30_000; ; await sleep(50)) {
    if (child.exitCode !== null) throw new Error(`server exited: ${serverOut}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health`)).ok) return child;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`server not up within 30 s: ${serverOut}`);
  }
}

// ---------- clients ----------

const HELLO = JSON.stringify({ type: 'hello', version: 1, features: { mcp: false }, transport: 'websocket', audio_params: { format: 'opus', sample_rate: 16000, channels: 1, frame_duration: 60 } });

function open(url: string, deviceId: string, onText: (text: string) => void): Promise<WebSocket> {
  const ws = new WebSocket(url, { headers: { 'Device-Id': deviceId, 'Client-Id': deviceId, 'Protocol-Version': '1' }, perMessageDeflate: false });
  ws.on('message', (data: Buffer, isBinary) => {
    if (!isBinary) onText(data.toString());
  });
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      ws.send(HELLO);
      resolve(ws);
    });
    ws.once('error', reject);
  });
}

interface Phase {
  messages: number;
  ms: number;
  perSecond: number;
  serverCpuMs: number;
  /** CPU of this process (the clients), to tell a client-bound run from a server-bound one. */
  clientCpuMs: number;
}

const clientCpu = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

async function main(): Promise<void> {
  const port = await freePort();
  server = await startServer(port);
  const url = `ws://127.0.0.1:${port}/xiaozhi/v1/`;
  const pid = server.pid!;
  note(`server pid ${pid} on port ${port}${PIN ? ' (pinned to CPU 0)' : ''}; ${MESSAGES} messages, ${SENDERS} senders, ${TARGETS} offline targets`);

  // ---- phase 1: enqueue
  const targets = Array.from({ length: TARGETS }, (_, i) => `bench:t${i}`);
  const perSender = Array.from({ length: SENDERS }, (_, i) => Math.floor(MESSAGES / SENDERS) + (i < MESSAGES % SENDERS ? 1 : 0));
  let enqueued = 0;
  let refused = 0;
  let redeliveredAcks = 0;
  const latencies: number[] = [];
  let finishEnqueue!: () => void;
  const enqueueDone = new Promise<void>((r) => (finishEnqueue = r));
  const senders = await Promise.all(
    perSender.map(async (count, s) => {
      let sent = 0;
      let answered = 0;
      const sentAt: number[] = [];
      const pump = (): void => {
        while (sent < count && sent - answered < WINDOW) {
          const target = targets[(s + sent * SENDERS) % TARGETS]!;
          sentAt.push(performance.now());
          ws.send(`{"type":"peer","to":["${target}"],"payload":{"text":"${s}:${sent}:${TEXT}"}}`);
          sent++;
        }
      };
      const ws: WebSocket = await open(url, `bench:s${s}`, (text) => {
        if (text.includes('"event":"redelivered"')) {
          redeliveredAcks += (JSON.parse(text) as { count: number }).count;
          return;
        }
        if (!text.startsWith('{"type":"peer"')) return;
        const done = text.includes('"status":"done"');
        const error = text.includes('"status":"error"');
        if (!done && !error) return;
        if (error && text.includes('"code":"TARGET_OFFLINE"')) return; // the follow-up of a receipt, not an answer
        if (done && text.includes('"enqueued":["')) enqueued++;
        else refused++;
        latencies.push(performance.now() - sentAt[answered]!);
        answered++;
        if (enqueued + refused === MESSAGES) finishEnqueue();
        else pump();
      });
      return { ws, start: pump };
    }),
  );
  await sleep(300); // hellos answered, stats settled
  let cpu0 = cpuMs(pid);
  let ccpu0 = clientCpu();
  let t0 = performance.now();
  for (const s of senders) s.start();
  await within(enqueueDone, 600_000, () => `enqueue phase stuck at ${enqueued + refused}/${MESSAGES}`);
  const enqueue: Phase = { messages: enqueued, ms: performance.now() - t0, perSecond: 0, serverCpuMs: cpuMs(pid) - cpu0, clientCpuMs: Math.round(clientCpu() - ccpu0) };
  enqueue.perSecond = (enqueued / enqueue.ms) * 1000;
  latencies.sort((a, b) => a - b);

  // ---- phase 2: redelivery
  let received = 0;
  let finishRedelivery!: () => void;
  const redeliveryDone = new Promise<void>((r) => (finishRedelivery = r));
  cpu0 = cpuMs(pid);
  ccpu0 = clientCpu();
  t0 = performance.now();
  const targetSockets = await Promise.all(
    targets.map((id) =>
      open(url, id, (text) => {
        if (text.startsWith('{"type":"peer","event":"message"') && ++received === enqueued) finishRedelivery();
      }),
    ),
  );
  await within(redeliveryDone, 600_000, () => `redelivery stuck at ${received}/${enqueued}`);
  const redelivery: Phase = { messages: received, ms: performance.now() - t0, perSecond: 0, serverCpuMs: cpuMs(pid) - cpu0, clientCpuMs: Math.round(clientCpu() - ccpu0) };
  redelivery.perSecond = (received / redelivery.ms) * 1000;
  for (let i = 0; i < 100 && redeliveredAcks < received; i++) await sleep(20);

  const dbFile = join(dir, 'data', 'linus.db');
  const dbBytes = existsSync(dbFile) ? statSync(dbFile).size + (existsSync(`${dbFile}-wal`) ? statSync(`${dbFile}-wal`).size : 0) : 0;
  for (const ws of [...senders.map((s) => s.ws), ...targetSockets]) ws.close();

  const result = {
    messages: MESSAGES,
    senders: SENDERS,
    targets: TARGETS,
    window: WINDOW,
    textChars: TEXT.length,
    enqueue: { ...enqueue, refused, receiptP50Ms: percentile(latencies, 50), receiptP99Ms: percentile(latencies, 99) },
    redelivery,
    redeliveredAckTotal: redeliveredAcks,
    dbBytes,
  };
  if (f.json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  const r = (n: number, d = 0) => n.toFixed(d);
  process.stdout.write(
    [
      `peer offline queue: ${MESSAGES} messages, ${SENDERS} senders (window ${WINDOW}), ${TARGETS} offline targets, text ${TEXT.length} chars`,
      '',
      'phase        messages   wall ms   msg/s      server CPU ms   client CPU ms',
      `enqueue      ${String(enqueued).padEnd(10)} ${r(enqueue.ms).padEnd(9)} ${r(enqueue.perSecond).padEnd(10)} ${String(enqueue.serverCpuMs).padEnd(15)} ${enqueue.clientCpuMs}`,
      `redelivery   ${String(received).padEnd(10)} ${r(redelivery.ms).padEnd(9)} ${r(redelivery.perSecond).padEnd(10)} ${String(redelivery.serverCpuMs).padEnd(15)} ${redelivery.clientCpuMs}`,
      '',
      `receipt latency under load: p50 ${r(result.enqueue.receiptP50Ms, 1)} ms, p99 ${r(result.enqueue.receiptP99Ms, 1)} ms; refused ${refused}`,
      `redelivered acks to senders add up to ${redeliveredAcks} (of ${received}); store ${r(dbBytes / 1048576, 1)} MB`,
      '',
    ].join('\n'),
  );
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).message}\n`);
    process.exitCode = 1;
  })
  .finally(() => void cleanup());
