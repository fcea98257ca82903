/**
 * Transport benchmark: Linus against a bare `ws` server (bench/bare-ws-server.mjs), each in its own process on
 * 127.0.0.1, loaded by child processes (bench/load-client.ts) so that the numbers are the server's.
 *   1. ping→pong round trips/s: --clients connections, each a sequential ping→wait-pong loop, for --seconds.
 *   2. RSS per idle connection: --connections firmware-style connections (headers + hello, features.mcp=false).
 * It prints numbers and asserts nothing. Run: npm run bench:transport -- [--seconds 5] [--connections 10000] [--json]
 */
import { execFileSync } from 'node:child_process';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Histogram, type FromLoad, type LoadConfig, type LoadMode, type Pushes, type ToLoad } from './shared.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const HELP = `usage: npm run bench:transport -- [options]
  --seconds N          measured ping→pong time per server (5)
  --warmup N           unmeasured ping→pong time before it (1)
  --clients N          concurrent ping→pong connections (100)
  --ping-procs N       load processes for the ping test (1)
  --rounds N           quiet ping rounds wanted per server; the median quiet round is reported (3)
  --max-rounds N       give up looking for quiet rounds after this many per server (8)
  --quiet N            a round is quiet when other work on the box used < N % of a core (25)
  --connections N      idle connections for the memory test (10000)
  --per-process N      idle connections per load process (5000; the fd limit is per process)
  --settle N           seconds to wait before each RSS reading (2)
  --only LIST          ping,memory (both)
  --server-node-args=S extra node flags for both server processes (note the =), e.g.
                       --server-node-args="--cpu-prof --cpu-prof-dir=/tmp/prof" (profiles are named by pid)
  --pin on|off         pin the server to CPU 0 and load clients to the other CPUs with taskset (on)
  --timeout N          hard limit for the whole run in seconds (900)
  --json               print machine-readable results instead of the table`;

/** Bad flags print the usage instead of a stack trace. */
function parseFlags() {
  try {
    return parseArgs({
      options: {
        seconds: { type: 'string', default: '5' },
        warmup: { type: 'string', default: '1' },
        clients: { type: 'string', default: '100' },
        'ping-procs': { type: 'string', default: '1' },
        rounds: { type: 'string', default: '3' },
        'max-rounds': { type: 'string', default: '8' },
        quiet: { type: 'string', default: '25' },
        connections: { type: 'string', default: '10000' },
        'per-process': { type: 'string', default: '5000' },
        settle: { type: 'string', default: '2' },
        only: { type: 'string', default: 'ping,memory' },
        'server-node-args': { type: 'string', default: '' },
        timeout: { type: 'string', default: '900' },
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
const flags = parseFlags();

function num(name: keyof typeof flags, min: number, max: number): number {
  const v = Number(flags[name]);
  if (!Number.isFinite(v) || v < min || v > max) throw new Error(`--${name} must be a number in ${min}..${max}, got "${String(flags[name])}"`);
  return v;
}

type Kind = 'bare' | 'linus';
const KINDS: Kind[] = ['bare', 'linus'];
const LABEL: Record<Kind, string> = { bare: 'bare ws', linus: 'Linus' };

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const note = (msg: string): void => void process.stderr.write(`bench: ${msg}\n`);

// ---------- child processes: every one is tracked so that any exit path can kill it ----------

interface Proc {
  name: string;
  child: ChildProcess;
  pid: number;
  exited: Promise<void>;
  inbox: FromLoad[];
  output(): string;
}

const procs = new Set<Proc>();
const tempDirs: string[] = [];

/**
 * Pinned (taskset), the server has a core of its own and the load clients cannot take CPU from it, so the
 * numbers describe one server core. `setpriv --pdeathsig` makes the kernel kill a child even if this process
 * is killed with SIGKILL. Both exec the next command, so the pid stays the node process's.
 */
const available = (cmd: string): boolean => spawnSync(cmd, ['--version']).status === 0;
const PIN = flags.pin !== 'off' && cpus().length >= 2 && available('taskset');
const PDEATHSIG = available('setpriv');
const SERVER_CPUS = '0';
const LOAD_CPUS = cpus().length > 2 ? `1-${cpus().length - 1}` : '1';

function startProc(name: string, args: string[], env: Record<string, string> = {}, ipc = false, cpuList?: string): Proc {
  const prefix = [...(PDEATHSIG ? ['setpriv', '--pdeathsig', 'KILL'] : []), ...(PIN && cpuList ? ['taskset', '-c', cpuList] : [])];
  const [cmd, ...argv] = [...prefix, process.execPath, ...args] as [string, ...string[]];
  const child = spawn(cmd, argv, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  // Always drained: a full pipe would block a server that logs synchronously.
  const keep = (b: Buffer | string): void => void (tail = (tail + String(b)).slice(-3000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.on('error', (err) => keep(`spawn error: ${err.message}\n`));
  const proc: Proc = {
    name,
    child,
    pid: child.pid ?? -1,
    inbox: [],
    output: () => tail.trim(),
    exited: new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.once('error', () => child.pid === undefined && resolve()); // never started
    }),
  };
  child.on('message', (m: FromLoad) => proc.inbox.push(m));
  procs.add(proc);
  void proc.exited.then(() => procs.delete(proc));
  return proc;
}

const isRunning = (p: Proc): boolean => p.pid > 0 && p.child.exitCode === null && p.child.signalCode === null;

async function stopProc(p: Proc, graceMs = 5000): Promise<void> {
  if (!isRunning(p)) return;
  p.child.kill('SIGTERM');
  await Promise.race([p.exited, sleep(graceMs)]);
  if (isRunning(p)) p.child.kill('SIGKILL');
  await Promise.race([p.exited, sleep(2000)]);
}

async function cleanup(): Promise<void> {
  await Promise.all([...procs].map((p) => stopProc(p, 3000)));
  for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

function tell(p: Proc, msg: ToLoad): void {
  if (p.child.connected) p.child.send(msg, () => {});
}

/** Next IPC message of this kind from a load client; fails if it exits or takes longer than timeoutMs. */
async function nextMessage<K extends FromLoad['kind']>(p: Proc, kind: K, timeoutMs: number): Promise<Extract<FromLoad, { kind: K }>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const i = p.inbox.findIndex((m) => m.kind === kind);
    if (i >= 0) return p.inbox.splice(i, 1)[0] as Extract<FromLoad, { kind: K }>;
    if (!isRunning(p)) throw new Error(`${p.name} exited before "${kind}": ${p.output()}`);
    if (Date.now() > deadline) throw new Error(`${p.name}: no "${kind}" within ${timeoutMs} ms`);
    await sleep(20);
  }
}

// ---------- /proc readings ----------

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1]) * 1024;
}

/** User + system CPU of a process in ms (all threads). Clock ticks are 100/s on Linux. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

/** CPU time the whole box spent busy, in ms summed over cores (clock ticks are 100/s). */
function boxBusyMs(): number {
  const [user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) * 10;
}

const openFds = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

function fdHardLimit(): number {
  const m = /Max open files\s+\S+\s+(\S+)/.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m?.[1] === 'unlimited' ? Infinity : Number(m?.[1]);
}

// ---------- servers under test ----------

interface Server {
  kind: Kind;
  proc: Proc;
  port: number;
}

const LINUS_CONFIG = `# written by bench/transport.ts: no timers or limits that would disturb the measurement
log:
  log_level: warn
server:
  max_connections: 100000
  hello_timeout_ms: 0
  ws_ping_interval_ms: 0
  max_messages_per_second: 100000
  stats_interval_ms: ${process.env.BENCH_STATS_MS ?? 10000}
close_connection_no_voice_time: 3600
`;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function health(port: number): Promise<{ connections?: number } | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2000) });
    return res.ok ? ((await res.json()) as { connections?: number }) : undefined;
  } catch {
    return undefined;
  }
}

async function startServer(kind: Kind): Promise<Server> {
  const port = await freePort();
  const extra = flags['server-node-args'].split(/\s+/).filter(Boolean);
  let proc: Proc;
  if (kind === 'bare') {
    proc = startProc('bare ws server', [...extra, 'bench/bare-ws-server.mjs', '--port', String(port)], {}, true, SERVER_CPUS);
  } else {
    const dataDir = mkdtempSync(join(tmpdir(), 'linus-bench-'));
    tempDirs.push(dataDir);
    writeFileSync(join(dataDir, 'config.yaml'), LINUS_CONFIG);
    // The product as shipped: compiled JavaScript (tsx adds per-closure metadata that inflates memory per connection).
    const args = [...extra, 'dist/cli/index.js', 'serve', '--port', String(port), '--host', '127.0.0.1', '--data-dir', dataDir];
    proc = startProc('Linus', args, {}, false, SERVER_CPUS);
  }
  const deadline = Date.now() + 60_000;
  while (!(await health(port))) {
    if (!isRunning(proc)) throw new Error(`${proc.name} exited during startup: ${proc.output()}`);
    if (Date.now() > deadline) throw new Error(`${proc.name} did not answer /health within 60 s`);
    await sleep(100);
  }
  return { kind, proc, port };
}

const CONNECT_TIMEOUT_MS = 20_000;

let nextId = 0;
function startLoad(server: Server, mode: LoadMode, count: number, openForMs: number, name: string): Proc {
  const cfg: LoadConfig = {
    url: `ws://127.0.0.1:${server.port}/xiaozhi/v1/`,
    mode,
    count,
    firstId: nextId,
    concurrency: 100,
    timeoutMs: CONNECT_TIMEOUT_MS,
    openForMs,
  };
  nextId += count;
  return startProc(name, ['--import', 'tsx', 'bench/load-client.ts'], { BENCH_LOAD: JSON.stringify(cfg) }, true, LOAD_CPUS);
}

/** Splits total into `parts` near-equal positive shares. */
const split = (total: number, parts: number): number[] =>
  Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0)).filter((n) => n > 0);

/** Opens `total` connections from ceil(total/perProc) load clients; those not open after openForMs count as failed. */
async function openLoad(server: Server, mode: LoadMode, total: number, perProc: number, openForMs: number) {
  const clients = split(total, Math.ceil(total / perProc)).map((n, i) => startLoad(server, mode, n, openForMs, `${mode} client ${i}`));
  const ready = await Promise.all(clients.map((p) => nextMessage(p, 'ready', openForMs + CONNECT_TIMEOUT_MS + 15_000)));
  const opened = ready.reduce((s, r) => s + r.opened, 0);
  const failed = ready.reduce((s, r) => s + r.failed, 0);
  const firstError = ready.find((r) => r.firstError)?.firstError;
  if (failed) note(`${LABEL[server.kind]}: ${failed} of ${total} connections failed (first: ${firstError})`);
  return { clients, opened, failed, firstError, connectMs: Math.max(...ready.map((r) => r.ms)) };
}

const sumPushes = (all: Pushes[]): Pushes => all.reduce((a, b) => ({ messages: a.messages + b.messages, bytes: a.bytes + b.bytes }), { messages: 0, bytes: 0 });

// ---------- 1. ping→pong throughput ----------

interface PingResult {
  connections: number;
  roundTripsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  serverCpuPct: number;
  serverCpuUsPerRoundTrip: number;
  clientCpuPct: number;
  /** Busy CPU on the box not used by the server or the load clients (other work, kernel networking). */
  otherCpuPct: number;
  lostConnections: number;
  /** Messages the server sent unasked (e.g. broadcasts) during the whole run. */
  pushes: Pushes;
}

async function pingPhase(kind: Kind): Promise<PingResult> {
  const [warmupMs, measureMs] = [num('warmup', 0, 60) * 1000, num('seconds', 0.1, 600) * 1000];
  const total = num('clients', 1, 5000);
  const server = await startServer(kind);
  const load = await openLoad(server, 'ping', total, Math.ceil(total / num('ping-procs', 1, 16)), 30_000);
  note(`${LABEL[kind]} (pid ${server.proc.pid}): ${load.opened} ping connections ready; running ${warmupMs / 1000} s warm-up + ${measureMs / 1000} s`);
  for (const p of load.clients) tell(p, { kind: 'go', warmupMs, measureMs });
  await sleep(warmupMs);
  const [cpu0, box0] = [cpuMs(server.proc.pid), boxBusyMs()];
  await sleep(measureMs);
  const [serverCpu, boxCpu] = [cpuMs(server.proc.pid) - cpu0, boxBusyMs() - box0];
  const results = await Promise.all(load.clients.map((p) => nextMessage(p, 'result', 15_000)));
  await Promise.all(load.clients.map((p) => stopProc(p)));
  await stopProc(server.proc, 10_000);
  const hist = new Histogram();
  for (const r of results) hist.merge(r.buckets);
  const roundTrips = results.reduce((s, r) => s + r.roundTrips, 0);
  const clientCpu = results.reduce((s, r) => s + r.cpuMs, 0);
  return {
    connections: load.opened,
    roundTripsPerSec: roundTrips / (measureMs / 1000),
    p50Ms: hist.percentile(0.5) / 1000,
    p99Ms: hist.percentile(0.99) / 1000,
    serverCpuPct: (serverCpu / measureMs) * 100,
    serverCpuUsPerRoundTrip: roundTrips ? (serverCpu * 1000) / roundTrips : NaN,
    clientCpuPct: (clientCpu / measureMs) * 100,
    otherCpuPct: (Math.max(0, boxCpu - serverCpu - clientCpu) / measureMs) * 100,
    lostConnections: results.reduce((s, r) => s + r.lost, 0),
    pushes: sumPushes(results.map((r) => r.pushes)),
  };
}

/**
 * The box may be shared: rounds run in bare/Linus pairs, alternating who goes first, until each server has
 * --rounds quiet ones (little other CPU use during the window) or --max-rounds were run.
 */
async function pingRounds(): Promise<NonNullable<Results['ping']>> {
  const want = num('rounds', 1, 20);
  const quietBelowPct = num('quiet', 0, 1000);
  const rounds: Record<Kind, PingResult[]> = { bare: [], linus: [] };
  const quiet = (k: Kind): PingResult[] => rounds[k].filter((x) => x.otherCpuPct < quietBelowPct);
  for (let i = 0; i < num('max-rounds', want, 50) && (quiet('bare').length < want || quiet('linus').length < want); i++) {
    for (const k of i % 2 ? [...KINDS].reverse() : KINDS) rounds[k].push(await pingPhase(k));
  }
  const median = (k: Kind): PingResult => {
    const xs = quiet(k).length ? quiet(k) : rounds[k];
    return [...xs].sort((a, b) => a.roundTripsPerSec - b.roundTripsPerSec)[Math.floor(xs.length / 2)]!;
  };
  const [bare, linus] = [median('bare'), median('linus')];
  return {
    clients: num('clients', 1, 5000),
    seconds: num('seconds', 0.1, 600),
    loadProcesses: num('ping-procs', 1, 16),
    bare,
    linus,
    ratio: linus.roundTripsPerSec / bare.roundTripsPerSec,
    target: 0.6,
    quietBelowPct,
    quietRounds: { bare: quiet('bare').length, linus: quiet('linus').length },
    rounds,
  };
}

// ---------- 2. memory per idle connection ----------

interface MemoryResult {
  requested: number;
  connected: number;
  failed: number;
  firstError?: string;
  serverSaysConnected?: number;
  connectSeconds: number;
  loadProcesses: number;
  fdsBefore: number;
  fdsAfter: number;
  rssBeforeBytes: number;
  rssAfterBytes: number;
  bytesPerConnection: number;
  /** Messages the server sent unasked to the idle clients, from connect until the RSS reading. */
  pushes: Pushes;
}

async function memoryPhase(kind: Kind): Promise<MemoryResult> {
  const n = num('connections', 1, 1_000_000);
  const settleMs = num('settle', 0, 60) * 1000;
  const server = await startServer(kind);
  const pid = server.proc.pid;
  // A few connections first, so one-time costs (lazy code, JIT, first allocations) land in "before".
  const warm = await openLoad(server, 'idle', 20, 20, 20_000);
  await Promise.all(warm.clients.map((p) => stopProc(p)));
  for (let i = 0; i < 50 && (await health(server.port))?.connections; i++) await sleep(100);
  await sleep(settleMs);
  const fdsBefore = openFds(pid);
  const rssBeforeBytes = rssBytes(pid);
  note(`${LABEL[kind]} (pid ${pid}): opening ${n} idle connections (RSS before ${mib(rssBeforeBytes)} MiB, ${fdsBefore} fds)`);
  const load = await openLoad(server, 'idle', n, num('per-process', 1, 19_000), 30_000 + n * 5);
  const serverSaysConnected = (await health(server.port))?.connections;
  await sleep(settleMs);
  const rssAfterBytes = rssBytes(pid);
  const fdsAfter = openFds(pid);
  for (const p of load.clients) tell(p, { kind: 'report' });
  const pushes = sumPushes((await Promise.all(load.clients.map((p) => nextMessage(p, 'pushes', 10_000)))).map((m) => m.pushes));
  await Promise.all(load.clients.map((p) => stopProc(p)));
  await stopProc(server.proc, 10_000);
  return {
    requested: n,
    connected: load.opened,
    failed: load.failed,
    ...(load.firstError ? { firstError: load.firstError } : {}),
    ...(serverSaysConnected !== undefined ? { serverSaysConnected } : {}),
    connectSeconds: load.connectMs / 1000,
    loadProcesses: load.clients.length,
    fdsBefore,
    fdsAfter,
    rssBeforeBytes,
    rssAfterBytes,
    bytesPerConnection: load.opened ? (rssAfterBytes - rssBeforeBytes) / load.opened : NaN,
    pushes,
  };
}

// ---------- report ----------

const mib = (b: number): string => (b / 1048576).toFixed(1);
const fmt = (v: number, digits = 0): string => (Number.isFinite(v) ? v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '-');

function row(label: string, bare: string, linus: string, ratio = '', note = ''): string {
  return `  ${label.padEnd(26)}${bare.padStart(12)}${linus.padStart(12)}${ratio.padStart(12)}  ${note}`.trimEnd();
}

interface Results {
  node: string;
  cpus: number;
  /** Server on CPU 0, load clients on the rest (taskset). */
  pinned: boolean;
  fdHardLimit: number;
  ping?: {
    clients: number;
    seconds: number;
    loadProcesses: number;
    /** The median quiet round (by round trips/s) of each server, or of all rounds if none was quiet. */
    bare: PingResult;
    linus: PingResult;
    ratio: number;
    target: number;
    /** A round is quiet when other work on the box used less than this % of a core. */
    quietBelowPct: number;
    quietRounds: { bare: number; linus: number };
    rounds: { bare: PingResult[]; linus: PingResult[] };
  };
  memory?: {
    connections: number;
    helloFeatures: { mcp: false };
    bare: MemoryResult;
    linus: MemoryResult;
    ratio: number;
    target: number;
    maxConnectionsByFdLimit: { bare: number; linus: number };
  };
}

function printTable(r: Results): void {
  const out: string[] = [`Linus transport benchmark: node ${r.node}, ${r.cpus} CPUs, ${r.pinned ? `server pinned to CPU ${SERVER_CPUS}, load to CPU ${LOAD_CPUS}` : 'no CPU pinning'}, all on 127.0.0.1`, ''];
  if (r.ping) {
    const { bare, linus } = r.ping;
    out.push(
      `Ping→pong: ${r.ping.clients} connections × sequential loops, ${r.ping.loadProcesses} load process(es), ${r.ping.seconds} s measured; median of quiet rounds (bare ${r.ping.quietRounds.bare}, Linus ${r.ping.quietRounds.linus}; quiet = other CPU < ${r.ping.quietBelowPct}%)`,
    );
    out.push(row('', 'bare ws', 'Linus', 'Linus/bare'));
    out.push(row('round trips/s', fmt(bare.roundTripsPerSec), fmt(linus.roundTripsPerSec), fmt(r.ping.ratio, 2), `target ≥ ${r.ping.target}: ${r.ping.ratio >= r.ping.target ? 'met' : 'MISSED'}`));
    out.push(row('RTT p50 (ms)', fmt(bare.p50Ms, 3), fmt(linus.p50Ms, 3)));
    out.push(row('RTT p99 (ms)', fmt(bare.p99Ms, 3), fmt(linus.p99Ms, 3)));
    out.push(row('server CPU (% of a core)', fmt(bare.serverCpuPct), fmt(linus.serverCpuPct)));
    out.push(row('server CPU per round trip µs', fmt(bare.serverCpuUsPerRoundTrip, 1), fmt(linus.serverCpuUsPerRoundTrip, 1), fmt(linus.serverCpuUsPerRoundTrip / bare.serverCpuUsPerRoundTrip, 2)));
    out.push(row('load clients CPU (%)', fmt(bare.clientCpuPct), fmt(linus.clientCpuPct)));
    out.push(row('other busy CPU on box (%)', fmt(bare.otherCpuPct), fmt(linus.otherCpuPct)));
    // Other work on a shared box shows up as "other busy CPU"; such rounds are the ones to distrust.
    const all = (k: Kind): string => r.ping!.rounds[k].map((x) => `${fmt(x.roundTripsPerSec)} (other ${fmt(x.otherCpuPct)}%)`).join(', ');
    out.push(`  every round, round trips/s: bare ${all('bare')}`);
    out.push(`                              Linus ${all('linus')}`);
    if (!r.ping.quietRounds.bare || !r.ping.quietRounds.linus) out.push('  WARNING: no quiet round for a server; its median is over all rounds and other load on the box skews it.');
    if (bare.lostConnections + linus.lostConnections) out.push(row('connections lost', String(bare.lostConnections), String(linus.lostConnections)));
    out.push(row('server pushes received', fmt(bare.pushes.messages), fmt(linus.pushes.messages), '', 'messages sent unasked (broadcasts...)'));
    out.push('');
  }
  if (r.memory) {
    const { bare, linus } = r.memory;
    out.push(`Idle memory: ${r.memory.connections} hello'd connections (hello features.mcp=false), ${linus.loadProcesses} load processes, RSS after settling`);
    out.push(row('', 'bare ws', 'Linus', 'Linus/bare'));
    out.push(row('connected (client view)', String(bare.connected), String(linus.connected)));
    out.push(row('connected (server /health)', String(bare.serverSaysConnected ?? '-'), String(linus.serverSaysConnected ?? '-')));
    out.push(row('connect + hello time (s)', fmt(bare.connectSeconds, 1), fmt(linus.connectSeconds, 1)));
    out.push(row('RSS before (MiB)', mib(bare.rssBeforeBytes), mib(linus.rssBeforeBytes)));
    out.push(row('RSS after (MiB)', mib(bare.rssAfterBytes), mib(linus.rssAfterBytes)));
    out.push(row('bytes per connection', fmt(bare.bytesPerConnection), fmt(linus.bytesPerConnection), fmt(r.memory.ratio, 2), `target ≤ ${r.memory.target}: ${r.memory.ratio <= r.memory.target ? 'met' : 'MISSED'}`));
    out.push(row('server pushes received', fmt(bare.pushes.messages), fmt(linus.pushes.messages), '', `${mib(linus.pushes.bytes)} MiB to Linus's idle clients`));
    const max = r.memory.maxConnectionsByFdLimit;
    out.push(`  Largest N one server process can hold here: fd hard limit ${r.fdHardLimit} − fds open before load (bare ${bare.fdsBefore}, Linus ${linus.fdsBefore}) ≈ bare ${max.bare}, Linus ${max.linus}.`);
    for (const m of [bare, linus]) if (m.failed) out.push(`  ${m === bare ? 'bare ws' : 'Linus'}: ${m.failed} connections failed; first error: ${m.firstError}`);
  }
  console.log(out.join('\n'));
}

async function main(): Promise<void> {
  if (flags.help) return void console.log(HELP);
  // Measure the current sources: build dist/ first (quietly; a build error stops the bench).
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
  const only = new Set(flags.only.split(','));
  const r: Results = { node: process.version, cpus: cpus().length, pinned: PIN, fdHardLimit: fdHardLimit() };
  if (only.has('ping')) r.ping = await pingRounds();
  if (only.has('memory')) {
    const results = {} as Record<Kind, MemoryResult>;
    for (const k of KINDS) results[k] = await memoryPhase(k);
    const { bare, linus } = results;
    r.memory = {
      connections: num('connections', 1, 1_000_000),
      helloFeatures: { mcp: false },
      bare,
      linus,
      ratio: linus.bytesPerConnection / bare.bytesPerConnection,
      target: 2,
      maxConnectionsByFdLimit: { bare: r.fdHardLimit - bare.fdsBefore, linus: r.fdHardLimit - linus.fdsBefore },
    };
  }
  if (flags.json) console.log(JSON.stringify(r, null, 2));
  else printTable(r);
}

async function finish(code: number): Promise<never> {
  await cleanup();
  process.exit(code);
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    note(`${sig}: stopping every child process`);
    void finish(130);
  });
}
setTimeout(() => {
  note(`--timeout of ${flags.timeout} s reached; stopping`);
  void finish(1);
}, num('timeout', 10, 86_400) * 1000).unref();

main().then(
  () => finish(0),
  (err: unknown) => {
    note(`failed: ${err instanceof Error ? err.message : String(err)}`);
    return finish(1);
  },
);
