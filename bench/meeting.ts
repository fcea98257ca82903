/**
 * Meeting ingestion benchmark: how many snippets per second Linus acknowledges (= commits to SQLite) through real
 * WebSocket connections. The server runs as its own process (`linus serve` through tsx) on 127.0.0.1; this process
 * plays N devices that each send `--rate` snippet messages per second (the server allows 10 snippets/s per
 * connection, so the total offered load is N × rate × items) for `--seconds`, and times every acknowledgement.
 * It prints numbers and asserts nothing. Run: npm run bench:meeting -- [--devices 10,100,500] [--seconds 10] [--json]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const HELP = `usage: npm run bench:meeting -- [options]
  --devices LIST   device counts to run, one round each (10,100,500)
  --seconds N      measured time per round (10)
  --warmup N       unmeasured sending before it (1)
  --rate N         snippet messages per device per second (9; the server admits 10 snippets/s per connection)
  --items N        snippets per message (1)
  --json           machine-readable results`;

function parseFlags() {
  try {
    return parseArgs({
      options: {
        devices: { type: 'string', default: '10,100,500' },
        seconds: { type: 'string', default: '10' },
        warmup: { type: 'string', default: '1' },
        rate: { type: 'string', default: '9' },
        items: { type: 'string', default: '1' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
    }).values;
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n${HELP}\n`);
    process.exit(2);
  }
}
const flags = parseFlags();
if (flags.help) {
  process.stdout.write(`${HELP}\n`);
  process.exit(0);
}

function num(value: string, name: string, min: number, max: number): number {
  const v = Number(value);
  if (!Number.isFinite(v) || v < min || v > max) throw new Error(`--${name} must be a number in ${min}..${max}, got "${value}"`);
  return v;
}

const DEVICE_COUNTS = flags.devices.split(',').map((d) => num(d.trim(), 'devices', 1, 20_000));
const SECONDS = num(flags.seconds, 'seconds', 1, 600);
const WARMUP = num(flags.warmup, 'warmup', 0, 60);
const RATE = num(flags.rate, 'rate', 0.1, 1000);
const ITEMS = num(flags.items, 'items', 1, 100);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const note = (msg: string): void => void process.stderr.write(`bench: ${msg}\n`);

// ---------- the server process ----------

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

const CONFIG = `# written by bench/meeting.ts
log:
  log_level: warn
server:
  ip: 127.0.0.1
  max_connections: 100000
  max_messages_per_second: 1000
  hello_timeout_ms: 0
  ws_ping_interval_ms: 0
selected_module:
  VAD: EnergyVAD
meeting:
  transcript_push_interval_ms: 15000
  checkpoint_interval_min: 0
`;

interface ServerProc {
  child: ChildProcess;
  port: number;
  dataDir: string;
  output(): string;
}

async function startServer(): Promise<ServerProc> {
  const dataDir = mkdtempSync(join(tmpdir(), 'linus-bench-meeting-'));
  writeFileSync(join(dataDir, 'config.yaml'), CONFIG);
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', 'serve', '--data-dir', dataDir, '--port', String(port)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LINUS_'))),
  });
  let tail = '';
  const keep = (b: Buffer): void => void (tail = (tail + b.toString()).slice(-3000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const server = { child, port, dataDir, output: () => tail.trim() };
  for (const until = Date.now() + 30_000; ; await sleep(100)) {
    if (child.exitCode !== null) throw new Error(`server exited: ${tail}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health`)).ok) return server;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`server did not start: ${tail}`);
  }
}

async function stopServer(s: ServerProc): Promise<void> {
  if (s.child.exitCode === null && s.child.signalCode === null) {
    const exited = new Promise((r) => s.child.once('exit', r));
    s.child.kill('SIGTERM');
    await Promise.race([exited, sleep(8000)]);
    if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
  }
  rmSync(s.dataDir, { recursive: true, force: true });
}

function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

function rssMB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1]) / 1024;
}

// ---------- devices ----------

interface Device {
  ws: WebSocket;
  /** Send times of messages not acknowledged yet (acks come back in order). */
  inFlight: number[];
  seq: number;
}

interface Tally {
  measuring: boolean;
  acked: number;
  limited: number;
  duplicates: number;
  errors: number;
  latenciesMs: number[];
}

async function connect(port: number, i: number, tally: Tally): Promise<Device> {
  const id = `bench:${String(i).padStart(6, '0')}`;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/xiaozhi/v1/`, { headers: { 'Device-Id': id, 'Client-Id': id, 'Protocol-Version': '1' }, perMessageDeflate: false });
  const dev: Device = { ws, inFlight: [], seq: 0 };
  ws.on('message', (data: Buffer, isBinary) => {
    if (isBinary) return;
    const m = JSON.parse(data.toString()) as Record<string, unknown>;
    if (m.type !== 'meeting' || m.phase !== 'snippet' || m.status === undefined) return;
    const sent = dev.inFlight.shift();
    if (!tally.measuring) return;
    if (m.status === 'ok') {
      tally.acked += Number(m.accepted ?? 0);
      tally.duplicates += Number(m.duplicates ?? 0);
      tally.limited += Number(m.dropped ?? 0);
      if (sent !== undefined) tally.latenciesMs.push(performance.now() - sent);
    } else if (m.code === 'RATE_LIMITED') tally.limited += ITEMS;
    else tally.errors++;
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.send(JSON.stringify({ type: 'hello', version: 1, features: { mcp: false }, transport: 'websocket', audio_params: { format: 'opus', sample_rate: 16000, channels: 1, frame_duration: 60 } }));
  return dev;
}

function send(dev: Device, i: number): void {
  if (dev.ws.readyState !== WebSocket.OPEN) return;
  const items = Array.from({ length: ITEMS }, () => ({ text: `device ${i} says snippet number ${dev.seq++} about the quarterly plan` }));
  dev.inFlight.push(performance.now());
  dev.ws.send(JSON.stringify({ type: 'meeting', phase: 'snippet', items }));
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

interface Result {
  devices: number;
  offeredPerSecond: number;
  ackedPerSecond: number;
  limited: number;
  errors: number;
  unanswered: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
  serverCpuPercent: number;
  serverRssMB: number;
  dbMB: number;
}

async function round(n: number): Promise<Result> {
  const server = await startServer();
  const pid = server.child.pid!;
  const tally: Tally = { measuring: false, acked: 0, limited: 0, duplicates: 0, errors: 0, latenciesMs: [] };
  const devices: Device[] = [];
  try {
    for (let i = 0; i < n; i += 50) devices.push(...(await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, j) => connect(server.port, i + j, tally)))));
    await sleep(500);
    // Each device sends on its own clock, spread over the first period so the load is even.
    const period = 1000 / RATE;
    const timers: NodeJS.Timeout[] = [];
    devices.forEach((d, i) => {
      timers.push(
        setTimeout(() => {
          send(d, i);
          timers.push(setInterval(() => send(d, i), period));
        }, (i / n) * period),
      );
    });
    await sleep(WARMUP * 1000);
    tally.measuring = true;
    const cpu0 = cpuMs(pid);
    const t0 = performance.now();
    await sleep(SECONDS * 1000);
    tally.measuring = false;
    const elapsed = performance.now() - t0;
    const cpu1 = cpuMs(pid);
    for (const t of timers) clearInterval(t);
    await sleep(500);
    const sorted = tally.latenciesMs.sort((a, b) => a - b);
    const rss = rssMB(pid);
    let dbMB = 0;
    for (const f of ['linus.db', 'linus.db-wal']) {
      try {
        dbMB += statSync(join(server.dataDir, f)).size / 1048576;
      } catch {
        // no WAL file
      }
    }
    return {
      devices: n,
      offeredPerSecond: n * RATE * ITEMS,
      ackedPerSecond: (tally.acked / elapsed) * 1000,
      limited: tally.limited,
      errors: tally.errors,
      unanswered: devices.reduce((s, d) => s + d.inFlight.length, 0),
      p50Ms: percentile(sorted, 0.5),
      p95Ms: percentile(sorted, 0.95),
      p99Ms: percentile(sorted, 0.99),
      maxMs: sorted.at(-1) ?? NaN,
      serverCpuPercent: ((cpu1 - cpu0) / elapsed) * 100,
      serverRssMB: rss,
      dbMB,
    };
  } finally {
    for (const d of devices) d.ws.terminate();
    await stopServer(server);
  }
}

async function main(): Promise<void> {
  const results: Result[] = [];
  for (const n of DEVICE_COUNTS) {
    note(`${n} devices × ${RATE} msg/s × ${ITEMS} snippet(s), ${SECONDS} s measured`);
    results.push(await round(n));
  }
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    return;
  }
  const f = (v: number, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : '-');
  const rows = [
    ['devices', 'offered/s', 'acked/s', 'limited', 'errors', 'unanswered', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'server CPU %', 'RSS MB', 'db MB'],
    ...results.map((r) => [
      String(r.devices),
      f(r.offeredPerSecond, 0),
      f(r.ackedPerSecond, 0),
      String(r.limited),
      String(r.errors),
      String(r.unanswered),
      f(r.p50Ms, 2),
      f(r.p95Ms, 2),
      f(r.p99Ms, 2),
      f(r.maxMs, 1),
      f(r.serverCpuPercent, 0),
      f(r.serverRssMB, 0),
      f(r.dbMB, 1),
    ]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows) process.stdout.write(`${r.map((cell, c) => cell.padStart(widths[c]!)).join('  ')}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${(err as Error).message}\n`);
  process.exit(1);
});
