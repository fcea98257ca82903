/**
 * storm: --events reconnects and handovers against one server: fresh device ids that close cleanly or drop the
 * TCP connection, reconnects of ids used before, handovers (the same Device-Id connecting while its old socket is
 * open: the server must tell the old one `replaced` and close it), chains of them, and sockets that never say
 * hello or drop mid-frame. The server's open fds and RSS are read from /proc at a baseline after a warm-up and
 * again once everything is closed and the server has settled. Correctness: no connection refused, every
 * handover counted and its old socket closed by the server, linus_connections and linus_devices back to 0, fds
 * back to the baseline. RSS is reported against the same ±5 % (V8 keeps heap it grew: a miss there is reported, not
 * failed).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuLayout, pinSelf, running, sleep } from '../lib/children.js';
import { BenchDevice, deviceWorks, healthOk, scrapeClose } from '../lib/device.js';
import { int, num, onOff, serverNodeArgs, SERVER_HELP, SERVER_OPTIONS } from '../lib/flags.js';
import { ensureBuilt, startLinus, type LinusProcess } from '../lib/linus-server.js';
import type { Figure, Profile, ProfileContext, ProfileResult, Series } from '../lib/profile.js';
import { cpuMs, openFds, peakRssBytes, rssBytes } from '../lib/proc-stats.js';
import { metricSum, type Sample } from '../lib/prom.js';
import { Sampler } from '../lib/sampler.js';
import { MiB } from '../lib/stats.js';

const options = {
  events: { type: 'string', default: '500' },
  concurrency: { type: 'string', default: '20' },
  warmup: { type: 'string', default: '60' },
  'handover-close-ms': { type: 'string', default: '200' },
  settle: { type: 'string', default: '10' },
  'gc-probe': { type: 'string', default: 'off' },
  ...SERVER_OPTIONS,
} as const;

const help: Record<keyof typeof options, string> = {
  events: 'storm events (each one to three connections: see the profile summary)',
  concurrency: 'events in flight at once',
  warmup: 'events of the same mix before the baseline (lazy set-up, JIT), not counted',
  'handover-close-ms': 'server.handover_close_ms: how long the server keeps a replaced socket open',
  settle: 's to wait after the storm for connections, fds and RSS to come back',
  'gc-probe':
    'on|off: tell retained garbage from a leak: the server runs with --heapsnapshot-signal, and a heap snapshot (which does a full GC first; the file is deleted) is taken before reading V8 heap used at the baseline and after the storm',
  ...SERVER_HELP,
};

const profile: Profile = {
  name: 'storm',
  summary:
    'reconnect and handover storm: handovers counted, old sockets closed, fds and RSS back to the baseline afterwards',
  options,
  help,
  smokeDefaults: { events: '40', concurrency: '8', warmup: '12', settle: '10', pin: 'off' },
  timeoutSec: (flags) => 300 + Number(flags.events) / 5,
  run,
};
export default profile;

/** Event kinds, in the order they rotate. */
const KINDS = [
  'new-close',
  'handover',
  'new-drop',
  'reconnect',
  'handover-chain',
  'no-hello',
  'half-frame',
  'handover',
] as const;
type Kind = (typeof KINDS)[number];

/** The server keeps (Node's http keepAliveTimeout) an idle keep-alive socket of startLinus' /health polls this long. */
const KEEPALIVE_MS = 5000;
/** A reconnected id waits this long after its close, so that its old session is gone and no handover is counted. */
const REUSE_AFTER_MS = 100;

interface Tally {
  events: Record<string, number>;
  connections: number;
  failed: number;
  firstError?: string;
  /** Handovers this profile made on purpose: a second connection of an id whose first was open and greeted. */
  handovers: number;
  /** Old sockets that got `{"type":"system","event":"replaced"}` and were then closed by the server. */
  replacedClosed: number;
  /** Old sockets of deliberate handovers that were not (no `replaced`, or not closed in time). */
  replacedMissing: number;
  reconnects: number;
}

class Storm {
  readonly tally: Tally = {
    events: {},
    connections: 0,
    failed: 0,
    handovers: 0,
    replacedClosed: 0,
    replacedMissing: 0,
    reconnects: 0,
  };
  readonly #open = new Set<BenchDevice>();
  #fresh = 0;
  /** Ids free for a reconnect, with the time they became free. */
  readonly #pool: { id: string; at: number }[] = [];

  constructor(
    private readonly url: string,
    private readonly handoverCloseMs: number,
    private readonly tag: string,
  ) {}

  async run(events: number, concurrency: number, signal: AbortSignal, onEvent: (done: number) => void): Promise<void> {
    let next = 0;
    let done = 0;
    const worker = async (): Promise<void> => {
      while (next < events && !signal.aborted) {
        const kind = KINDS[next++ % KINDS.length]!;
        this.tally.events[kind] = (this.tally.events[kind] ?? 0) + 1;
        try {
          await this.#event(kind);
        } catch (err) {
          this.tally.failed++;
          this.tally.firstError ??= `${kind}: ${(err as Error).message}`;
        }
        onEvent(++done);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  }

  /** Closes whatever is still open (nothing should be). */
  async closeAll(): Promise<void> {
    await Promise.all([...this.#open].map((d) => d.close(2000)));
  }

  #id(): string {
    return `storm-${this.tag}-${this.#fresh++}`;
  }

  async #connect(id: string, hello = true): Promise<BenchDevice> {
    this.tally.connections++;
    const d = await BenchDevice.connect({ url: this.url, deviceId: id, hello, timeoutMs: 10_000 });
    this.#open.add(d);
    void d.closed.then(() => this.#open.delete(d));
    return d;
  }

  /** A closed id goes back to the pool for reconnects. */
  #release(id: string): void {
    this.#pool.push({ id, at: Date.now() });
  }

  async #event(kind: Kind): Promise<void> {
    switch (kind) {
      case 'new-close': {
        const id = this.#id();
        const d = await this.#connect(id);
        await d.sync();
        await d.close();
        this.#release(id);
        return;
      }
      case 'new-drop': {
        // Power loss: no closing handshake; the server finds out from the TCP reset.
        const d = await this.#connect(this.#id());
        d.terminate();
        await d.closed;
        return;
      }
      case 'reconnect': {
        // An id used before (or a fresh one), then once more right after its own close: a device that reconnects.
        const reused = this.#pool.shift();
        const id = reused?.id ?? this.#id();
        for (let k = reused ? 0 : 1; k < 2; k++) {
          if (k > 0 || reused) {
            await sleep(Math.max(0, (k > 0 ? Date.now() : reused!.at) + REUSE_AFTER_MS - Date.now()));
            this.tally.reconnects++;
          }
          const d = await this.#connect(id);
          await d.sync();
          await d.close();
        }
        this.#release(id);
        return;
      }
      case 'handover': {
        const id = this.#id();
        const old = await this.#connect(id);
        const replaced = old.next((m) => m.type === 'system' && m.event === 'replaced', 5000, 'replaced');
        replaced.catch(() => {});
        const newer = await this.#connect(id);
        this.tally.handovers++;
        await this.#expectReplaced(old, replaced);
        await newer.sync();
        await newer.close();
        this.#release(id);
        return;
      }
      case 'handover-chain': {
        // Three connections of one id, the last two at once: two handovers in an order the server picks.
        const id = this.#id();
        const first = await this.#connect(id);
        const replaced = first.next((m) => m.type === 'system' && m.event === 'replaced', 5000, 'replaced');
        replaced.catch(() => {});
        const [b, c] = await Promise.all([this.#connect(id), this.#connect(id)]);
        this.tally.handovers += 2;
        await this.#expectReplaced(first, replaced);
        // One of b and c was replaced by the other; wait for the server to close it, then close the survivor.
        let timer: NodeJS.Timeout | undefined;
        const closedFirst = await Promise.race([
          b.closed.then(() => c),
          c.closed.then(() => b),
          new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), this.handoverCloseMs + 5000))),
        ]);
        clearTimeout(timer);
        if (!closedFirst) this.tally.replacedMissing++;
        else this.tally.replacedClosed++;
        await Promise.all([b.close(), c.close()]);
        return;
      }
      case 'no-hello': {
        const d = await this.#connect(this.#id(), false);
        await sleep(20);
        d.terminate();
        await d.closed;
        return;
      }
      case 'half-frame': {
        // A frame header that announces 100 bytes, 3 of them sent, then the connection drops.
        const d = await this.#connect(this.#id());
        const sock = (d.ws as unknown as { _socket: Socket })._socket;
        sock.write(Buffer.concat([Buffer.from([0x82, 0x80 | 100]), randomBytes(4), Buffer.from([1, 2, 3])]));
        await sleep(20);
        d.terminate();
        await d.closed;
        return;
      }
    }
  }

  /** The old socket of a handover gets `replaced`, then the server closes it after handover_close_ms. */
  async #expectReplaced(old: BenchDevice, replaced: Promise<unknown>): Promise<void> {
    let ok = true;
    try {
      await replaced;
    } catch {
      ok = false;
    }
    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([
      old.closed.then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), this.handoverCloseMs + 5000))),
    ]);
    clearTimeout(timer);
    if (ok && closed) this.tally.replacedClosed++;
    else {
      this.tally.replacedMissing++;
      await old.close(1000);
    }
  }
}

async function run(ctx: ProfileContext): Promise<ProfileResult> {
  const f = ctx.flags;
  const events = int(f, 'events', 1, 10_000_000);
  const concurrency = int(f, 'concurrency', 1, 10_000);
  const warmupEvents = int(f, 'warmup', 0, 100_000);
  const handoverCloseMs = int(f, 'handover-close-ms', 0, 60_000);
  const settleMs = num(f, 'settle', 1, 600) * 1000;
  const cpu = cpuLayout(onOff(f, 'pin'));
  if (cpu.pinned) pinSelf(cpu.load);

  const startedAt = new Date();
  const cleanupDirs: string[] = [];
  const failures: string[] = [];
  const notes: string[] = [];
  const figures: Figure[] = [];
  const series: Series[] = [];
  let server: LinusProcess | undefined;
  let sampler: Sampler | undefined;
  try {
    ensureBuilt(ctx.root, ctx.serverFromSource);
    const config = [
      '# written by bench/profiles/storm.ts',
      'log:',
      '  log_level: warn',
      'server:',
      `  handover_close_ms: ${handoverCloseMs}`,
      '  max_connections: 100000',
      '',
    ].join('\n');
    ctx.progress('storm: starting the server');
    const gcProbe = onOff(f, 'gc-probe');
    const diagDir = gcProbe ? mkdtempSync(join(tmpdir(), 'linus-bench-storm-gc-')) : undefined;
    cleanupDirs.push(...(diagDir ? [diagDir] : []));
    const nodeArgs = [
      ...serverNodeArgs(f),
      ...(diagDir ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${diagDir}`] : []),
    ];
    server = await startLinus({
      root: ctx.root,
      config,
      fromSource: ctx.serverFromSource,
      nodeArgs,
      cpuList: cpu.server,
      pin: cpu.pinned,
    });
    const srv = server;
    const readyAt = Date.now();
    const pid = srv.child.pid;
    const url = srv.url('/xiaozhi/v1/', 'ws');
    const metrics = (): Promise<Sample[]> => scrapeClose(srv.url('/metrics'));
    let lastCpu = { at: performance.now(), ms: cpuMs(pid) };
    sampler = new Sampler(500, () => {
      const now = { at: performance.now(), ms: cpuMs(pid) };
      const cpuPct = ((now.ms - lastCpu.ms) / Math.max(1, now.at - lastCpu.at)) * 100;
      lastCpu = now;
      return { fds: openFds(pid), rss: rssBytes(pid) / MiB, cpu: cpuPct };
    }).start();

    // ---- warm-up, then the baseline
    if (warmupEvents) {
      ctx.progress('storm: warm-up');
      const w = new Storm(url, handoverCloseMs, 'warm');
      await w.run(warmupEvents, concurrency, ctx.signal, () => {});
      await w.closeAll();
    }
    const idle0 = await settleConnections(metrics, settleMs);
    // The server closes startLinus' idle keep-alive /health socket after its keepAliveTimeout: not ours to count.
    await sleep(Math.max(0, readyAt + KEEPALIVE_MS + 500 - Date.now()), ctx.signal);
    const base = { fds: openFds(pid), rss: rssBytes(pid), at: Date.now() };
    const m0 = await metrics();
    const heapGc0 = diagDir ? await heapAfterGc(srv, diagDir, metrics) : NaN;
    ctx.log(
      `storm: baseline ${base.fds} fds, ${(base.rss / MiB).toFixed(1)} MiB RSS (after ${warmupEvents} warm-up events; ${idle0.connections} connections open)`,
    );

    // ---- the storm
    const storm = new Storm(url, handoverCloseMs, 'storm');
    const t0 = Date.now();
    let peakFds = base.fds;
    const peakTimer = setInterval(() => (peakFds = Math.max(peakFds, openFds(pid))), 100);
    try {
      await storm.run(events, concurrency, ctx.signal, (done) => ctx.progress(`storm: ${done}/${events} events`));
      await storm.closeAll();
    } finally {
      clearInterval(peakTimer);
    }
    const stormSec = (Date.now() - t0) / 1000;

    // ---- settle: connections and devices back to 0, fds and RSS back to the baseline (or the time is up)
    ctx.progress('storm: settling');
    const settleStart = Date.now();
    const idle = await settleConnections(metrics, settleMs);
    let after = { fds: openFds(pid), rss: rssBytes(pid) };
    const within = (v: number, b: number): boolean => Math.abs(v - b) <= b * 0.05;
    let fdsBackAt = within(after.fds, base.fds) ? Date.now() : undefined;
    while (
      Date.now() - settleStart < settleMs &&
      !(within(after.fds, base.fds) && within(after.rss, base.rss)) &&
      !ctx.signal.aborted
    ) {
      await sleep(250);
      after = { fds: openFds(pid), rss: rssBytes(pid) };
      if (fdsBackAt === undefined && within(after.fds, base.fds)) fdsBackAt = Date.now();
    }
    const settledSec = (Date.now() - settleStart) / 1000;
    const fdsBackSec = fdsBackAt === undefined ? NaN : (fdsBackAt - settleStart) / 1000;
    const m1 = await metrics();
    const heapGc1 = diagDir ? await heapAfterGc(srv, diagDir, metrics) : NaN;
    const alive = running(srv.child) && (await healthOk(srv.port));
    const works = alive && (await deviceWorks(url, 'storm-after')).ok;

    // ---- figures
    const t = storm.tally;
    const delta = (name: string): number => metricSum(m1, name) - metricSum(m0, name);
    const handovers = delta('linus_handovers_total');
    const accepted = delta('linus_connections_total');
    const pctDelta = (v: number, b: number): string => `${v >= b ? '+' : ''}${(((v - b) / b) * 100).toFixed(1)} %`;
    const fdsOk = within(after.fds, base.fds);
    const rssOk = within(after.rss, base.rss);
    const handoversOk = handovers >= t.handovers && handovers <= t.handovers + t.reconnects;
    figures.push(
      { name: 'storm events / connections opened', value: `${events} / ${t.connections}` },
      {
        name: '  events by kind',
        value: Object.entries(t.events)
          .map(([k, n]) => `${k} ${n}`)
          .join(', '),
      },
      {
        name: 'storm time / connections per second',
        value: `${stormSec.toFixed(1)} s / ${(t.connections / stormSec).toFixed(0)}`,
      },
      { name: 'events that failed (refused, no hello reply, ...)', value: t.failed, target: '0', met: t.failed === 0 },
      {
        name: 'connections accepted by the server (linus_connections_total)',
        value: accepted,
        target: `${t.connections}`,
        met: accepted === t.connections,
      },
      {
        name: 'handovers counted (linus_handovers_total) / made',
        value: `${handovers} / ${t.handovers}`,
        target: t.reconnects ? `${t.handovers}..${t.handovers + t.reconnects}` : `${t.handovers}`,
        met: handoversOk,
      },
      {
        name: 'replaced sockets told and closed by the server',
        value: `${t.replacedClosed} / ${t.replacedClosed + t.replacedMissing}`,
        target: 'all',
        met: t.replacedMissing === 0,
      },
      {
        name: 'linus_connections / linus_devices after the storm',
        value: `${idle.connections} / ${idle.devices}`,
        target: '0 / 0',
        met: idle.connections === 0 && idle.devices === 0,
      },
      {
        name: 'open fds: baseline → after',
        value: `${base.fds} → ${after.fds} (${pctDelta(after.fds, base.fds)})`,
        target: '± 5 %',
        met: fdsOk,
      },
      { name: '  peak open fds during the storm', value: peakFds },
      {
        name: 'RSS: baseline → after (MiB)',
        value: `${(base.rss / MiB).toFixed(1)} → ${(after.rss / MiB).toFixed(1)} (${pctDelta(after.rss, base.rss)})`,
        // The probe's own heap snapshot grows RSS: the figure then has no target.
        ...(diagDir ? {} : { target: '± 5 %', met: rssOk }),
      },
      { name: '  peak RSS (MiB)', value: Number((peakRssBytes(pid) / MiB).toFixed(1)) },
      { name: '  V8 heap used / total (MiB, /metrics): baseline → after', value: `${heap(m0)} → ${heap(m1)}` },
      ...(diagDir
        ? [
            {
              name: 'V8 heap used after a full GC (MiB): baseline → after',
              value: `${heapGc0.toFixed(1)} → ${heapGc1.toFixed(1)} (${pctDelta(heapGc1, heapGc0)})`,
              target: '± 5 %',
              met: within(heapGc1, heapGc0),
            },
          ]
        : []),
      {
        name: 'time for connections and fds to come back (s)',
        value: Number.isFinite(fdsBackSec) ? Number(fdsBackSec.toFixed(1)) : `> ${settleMs / 1000}`,
        target: `≤ ${settleMs / 1000}`,
        met: fdsOk && idle.connections === 0,
      },
      { name: 'server crashed', value: alive ? 'no' : 'yes', target: 'no', met: alive },
      {
        name: 'a new device connects and is answered afterwards',
        value: works ? 'yes' : 'no',
        target: 'yes',
        met: works,
      },
    );
    if (t.failed) failures.push(`${t.failed} storm events failed (first: ${t.firstError})`);
    if (accepted !== t.connections)
      failures.push(`${t.connections} connections opened, ${accepted} accepted by the server`);
    if (!handoversOk)
      failures.push(`handovers: ${handovers} counted, ${t.handovers} made (+ up to ${t.reconnects} reconnect races)`);
    if (t.replacedMissing)
      failures.push(`${t.replacedMissing} replaced sockets were not told (replaced) or not closed by the server`);
    if (idle.connections !== 0 || idle.devices !== 0)
      failures.push(`after the storm: ${idle.connections} connections, ${idle.devices} devices still counted`);
    if (!fdsOk)
      failures.push(`open fds ${base.fds} → ${after.fds} after ${settledSec.toFixed(1)} s: not back to the baseline`);
    if (!alive) failures.push(`the server is gone or unhealthy: ${srv.child.output().slice(-600)}`);
    if (!works) failures.push('a well-formed device could not connect and get answers after the storm');
    if (diagDir)
      notes.push(
        "--gc-probe on: the heap snapshot taken at the baseline grows the server's RSS itself, so RSS is shown without a target; compare heap used after a full GC instead.",
      );
    else if (!rssOk) {
      notes.push(
        `RSS stayed ${pctDelta(after.rss, base.rss)} off the baseline after ${settledSec.toFixed(1)} s, with connections and devices at ${idle.connections}/${idle.devices} and fds ${pctDelta(after.fds, base.fds)}: ` +
          `V8 keeps the heap it grew (heap used / total ${heap(m0)} → ${heap(m1)} MiB; the server offers no way to force a GC; --gc-probe on compares heap used after a full GC), so this is retained memory, not live sessions. Reported, not failed.`,
      );
    }
    if (t.reconnects)
      notes.push(
        `${t.reconnects} reconnects reuse ids ≥ ${REUSE_AFTER_MS} ms after their close; one that still raced the old session's close would count as a handover, hence the range.`,
      );
    notes.push(
      `fds and RSS read from /proc/${pid}; the baseline is taken after ${warmupEvents} warm-up events and once the server dropped the bench's keep-alive socket; every bench HTTP call uses Connection: close.`,
    );
    sampler.stop();
    series.push(
      sampler.series('fds', 'server open fds', 'fds'),
      sampler.series('rss', 'server RSS', 'MiB'),
      sampler.series('cpu', 'server CPU', '% of a core'),
    );
    return result(startedAt, figures, failures, notes, series, {
      base,
      after,
      peakFds,
      tally: t,
      handovers,
      accepted,
      settledSec,
    });
  } catch (err) {
    if (!ctx.signal.aborted) throw err;
    failures.push(`interrupted: ${(err as Error).message}`);
    return result(startedAt, figures, failures, notes, series, {});
  } finally {
    sampler?.stop();
    await server?.stop(10_000);
    for (const d of cleanupDirs) rmSync(d, { recursive: true, force: true });
  }
}

/** SIGUSR2 makes the server write a heap snapshot, which runs a full GC first; then V8 heap used from /metrics (MiB). */
async function heapAfterGc(srv: LinusProcess, dir: string, metrics: () => Promise<Sample[]>): Promise<number> {
  const before = readdirSync(dir).length;
  process.kill(srv.child.pid, 'SIGUSR2');
  const deadline = Date.now() + 60_000;
  // The file appears when the snapshot starts; the server answers /metrics again once it is written.
  while (readdirSync(dir).length === before && Date.now() < deadline) await sleep(100);
  const m = await metrics();
  for (const file of readdirSync(dir)) rmSync(join(dir, file), { force: true });
  return metricSum(m, 'linus_nodejs_heap_size_used_bytes') / MiB;
}

/** V8 heap used / total from the server's default process metrics, in MiB. */
function heap(m: Sample[]): string {
  const used = metricSum(m, 'linus_nodejs_heap_size_used_bytes') / MiB;
  const total = metricSum(m, 'linus_nodejs_heap_size_total_bytes') / MiB;
  return `${used.toFixed(1)} / ${total.toFixed(1)}`;
}

/** Polls /metrics until linus_connections and linus_devices are 0 or the time is up; the last values. */
async function settleConnections(
  metrics: () => Promise<Sample[]>,
  timeoutMs: number,
): Promise<{ connections: number; devices: number }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = await metrics();
    const now = { connections: metricSum(m, 'linus_connections'), devices: metricSum(m, 'linus_devices') };
    if ((now.connections === 0 && now.devices === 0) || Date.now() > deadline) return now;
    await sleep(200);
  }
}

function result(
  startedAt: Date,
  figures: Figure[],
  failures: string[],
  notes: string[],
  series: Series[],
  details: unknown,
): ProfileResult {
  return {
    profile: 'storm',
    command: '',
    startedAt: startedAt.toISOString(),
    durationSec: (Date.now() - startedAt.getTime()) / 1000,
    figures,
    series,
    notes,
    ok: failures.length === 0 && figures.length > 0,
    ...(failures.length ? { failures } : {}),
    details,
  };
}
