/**
 * fuzz: --frames malformed frames over many connections from --generators processes (bench/fuzz-client.ts): bad
 * JSON, JSON without a type, known types with wrong field types, unknown types, frames over the size limit,
 * v2/v3 headers whose length lies, bad versions, short and empty binary frames, random bytes as audio (also before
 * the hello), and frames that end a connection: invalid UTF-8, over the hard limit, WebSocket framing errors.
 * Correctness: the server does not crash, /health is ok at the end, a well-formed device still gets its hello
 * answered, and every bad frame the server received is counted in /metrics under its class (bench/fuzz-shared.ts).
 */
import { stringify as toYaml } from 'yaml';
import { validateConfig } from '../../src/config/load.js';
import {
  COUNTED_BINARY,
  emptyTally,
  FUZZ_CLASSES,
  type FromFuzz,
  type FuzzClassName,
  type FuzzClientConfig,
  type FuzzTally,
} from '../fuzz-shared.js';
import { cpuLayout, nextMessage, pinSelf, running, sleep, spawnNode, stopChild, type Child } from '../lib/children.js';
import { deviceWorks, healthOk, scrapeClose } from '../lib/device.js';
import { int, num, onOff, serverNodeArgs, SERVER_HELP, SERVER_OPTIONS } from '../lib/flags.js';
import { ensureBuilt, startLinus, type LinusProcess } from '../lib/linus-server.js';
import type { Figure, Profile, ProfileContext, ProfileResult, Series } from '../lib/profile.js';
import { cpuMs, rssBytes } from '../lib/proc-stats.js';
import { metricSum, type Sample } from '../lib/prom.js';
import { Sampler } from '../lib/sampler.js';
import { MiB, split } from '../lib/stats.js';

const options = {
  frames: { type: 'string', default: '1000000' },
  generators: { type: 'string', default: '1' },
  connections: { type: 'string', default: '50' },
  'frames-per-connection': { type: 'string', default: '500' },
  'closing-share': { type: 'string', default: '0.1' },
  'max-frame-bytes': { type: 'string', default: '8192' },
  'hard-frame-bytes': { type: 'string', default: '65536' },
  seed: { type: 'string', default: '1' },
  ...SERVER_OPTIONS,
} as const;

const help: Record<keyof typeof options, string> = {
  frames: 'malformed frames in all',
  generators: 'generator processes (the frames are split between them)',
  connections: 'connections open at once per generator',
  'frames-per-connection': 'mean frames per connection (each draws 50..150 % of it)',
  'closing-share':
    'share of connections that end with a frame that closes them (invalid UTF-8, over the hard limit, a framing error)',
  'max-frame-bytes': 'server.max_frame_bytes: frames above it are refused and counted',
  'hard-frame-bytes': 'server.max_frame_hard_bytes: frames above it close the connection',
  seed: 'seed of the frame draws (generator i uses seed + i)',
  ...SERVER_HELP,
};

const profile: Profile = {
  name: 'fuzz',
  summary:
    'malformed frames of every class: no crash, /health ok, a good device still served, every bad frame counted in /metrics',
  options,
  help,
  smokeDefaults: {
    frames: '2000',
    connections: '4',
    'frames-per-connection': '100',
    'closing-share': '0.5',
    pin: 'off',
  },
  timeoutSec: (flags) => 300 + Number(flags.frames) / 2000,
  run,
};
export default profile;

/** The server's metric value that counts a class: its own counter, or (random audio) what is left of the binary frames. */
function counted(m: Sample[], cls: FuzzClassName, tally: FuzzTally): number {
  const c = FUZZ_CLASSES[cls];
  const v = metricSum(m, c.metric, 'labels' in c ? c.labels : {});
  // linus_messages_in_total{type="binary"} counts every binary frame that passed the size check.
  if (cls === 'random_audio')
    return v - COUNTED_BINARY.filter((k) => k !== 'random_audio').reduce((s, k) => s + tally.sent[k], 0);
  return v;
}

async function run(ctx: ProfileContext): Promise<ProfileResult> {
  const f = ctx.flags;
  const frames = int(f, 'frames', 1, 1e9);
  const generators = int(f, 'generators', 1, 64);
  const connections = int(f, 'connections', 1, 10_000);
  const perConnection = int(f, 'frames-per-connection', 1, 1e7);
  const closingShare = num(f, 'closing-share', 0, 1);
  const maxFrameBytes = int(f, 'max-frame-bytes', 1024, 1 << 24);
  const hardFrameBytes = int(f, 'hard-frame-bytes', maxFrameBytes + 1, 1 << 26);
  const seed = int(f, 'seed', 1, 2 ** 31);
  const cpu = cpuLayout(onOff(f, 'pin'));
  if (cpu.pinned) pinSelf(cpu.load);

  const startedAt = new Date();
  const failures: string[] = [];
  const notes: string[] = [];
  const figures: Figure[] = [];
  const series: Series[] = [];
  let server: LinusProcess | undefined;
  const gens: Child<FromFuzz>[] = [];
  let sampler: Sampler | undefined;
  try {
    ensureBuilt(ctx.root, ctx.serverFromSource);
    const raw = {
      log: { log_level: 'error' },
      server: {
        max_frame_bytes: maxFrameBytes,
        max_frame_hard_bytes: hardFrameBytes,
        max_messages_per_second: 1_000_000_000,
        max_connections: 100_000,
        stats_interval_ms: 0,
      },
      // Random audio may look like speech to the VAD: with no ASR, such an utterance ends in silence, not in work.
      selected_module: { ASR: '' },
    };
    validateConfig(raw);
    ctx.progress('fuzz: starting the server');
    server = await startLinus({
      root: ctx.root,
      config: `# written by bench/profiles/fuzz.ts\n${toYaml(raw)}`,
      fromSource: ctx.serverFromSource,
      nodeArgs: serverNodeArgs(f),
      cpuList: cpu.server,
      pin: cpu.pinned,
    });
    const srv = server;
    const pid = srv.child.pid;
    const url = srv.url('/xiaozhi/v1/', 'ws');
    const m0 = await scrapeClose(srv.url('/metrics'));
    let lastCpu = { at: performance.now(), ms: cpuMs(pid) };
    sampler = new Sampler(1000, () => {
      const now = { at: performance.now(), ms: cpuMs(pid) };
      const pct = ((now.ms - lastCpu.ms) / Math.max(1, now.at - lastCpu.at)) * 100;
      lastCpu = now;
      return { rss: rssBytes(pid) / MiB, cpu: pct };
    }).start();

    const t0 = performance.now();
    for (const [i, share] of split(frames, generators).entries()) {
      const cfg: FuzzClientConfig = {
        url,
        frames: share,
        connections,
        framesPerConnection: perConnection,
        closingShare,
        maxFrameBytes,
        hardFrameBytes,
        seed: seed + i,
        idPrefix: `fuzz-${i}`,
      };
      gens.push(
        spawnNode<FromFuzz>(
          `fuzz generator ${i}`,
          ['--import', 'tsx', 'bench/fuzz-client.ts'],
          { cwd: ctx.root, ipc: true, env: { BENCH_FUZZ: JSON.stringify(cfg) }, cpuList: cpu.load },
          cpu.pinned,
        ),
      );
    }
    const sentSoFar = new Map<Child<FromFuzz>, number>();
    const progress = setInterval(() => {
      for (const g of gens) {
        for (let i = g.inbox.length - 1; i >= 0; i--) {
          const m = g.inbox[i]!;
          if (m.kind === 'progress') {
            g.inbox.splice(i, 1);
            sentSoFar.set(g, m.sent);
          }
        }
      }
      const sent = [...sentSoFar.values()].reduce((a, b) => a + b, 0);
      ctx.progress(`fuzz: ${sent}/${frames} frames, server ${running(srv.child) ? 'up' : 'DOWN'}`);
    }, 1000);
    let results: Extract<FromFuzz, { kind: 'result' }>[];
    try {
      results = await Promise.all(gens.map((g) => nextMessage(g, 'result', 3_600_000, ctx.signal)));
    } finally {
      clearInterval(progress);
    }
    const seconds = (performance.now() - t0) / 1000;

    // ---- merge what the generators saw
    const tally = emptyTally();
    for (const { tally: t } of results) {
      for (const k of Object.keys(t.sent) as FuzzClassName[]) tally.sent[k] += t.sent[k];
      for (const [k, v] of Object.entries(t.closeCodes)) tally.closeCodes[k] = (tally.closeCodes[k] ?? 0) + v;
      tally.beforeHello += t.beforeHello;
      tally.connections += t.connections;
      tally.unexpectedCloses += t.unexpectedCloses;
      tally.unconfirmed += t.unconfirmed;
      tally.connectFailures += t.connectFailures;
      tally.errors.push(...t.errors);
    }
    const totalSent = Object.values(tally.sent).reduce((a, b) => a + b, 0);

    // ---- what the server counted: async handlers (workflow) may lag a moment behind the last round trip
    const classes = Object.keys(FUZZ_CLASSES) as FuzzClassName[];
    const countsOf = (m1: Sample[]): Record<FuzzClassName, number> =>
      Object.fromEntries(
        classes.map((k) => [k, counted(m1, k, tally) - counted(m0, k, { ...tally, sent: zero(tally.sent) })]),
      ) as Record<FuzzClassName, number>;
    let m1 = await scrapeClose(srv.url('/metrics'));
    for (let i = 0; i < 20 && classes.some((k) => countsOf(m1)[k] !== tally.sent[k]); i++) {
      await sleep(250);
      m1 = await scrapeClose(srv.url('/metrics'));
    }
    const got = countsOf(m1);
    const alive = running(srv.child) && (await healthOk(srv.port));
    const works = alive ? await deviceWorks(url, 'fuzz-after') : { ok: false, error: 'server down' };
    const delta = (name: string, labels: Record<string, string> = {}): number =>
      metricSum(m1, name, labels) - metricSum(m0, name, labels);
    const decodeErrors = delta('linus_uplink_decode_errors_total');
    const rateLimited = delta('linus_bad_frames_total', { reason: 'rate_limited' });
    const socketErrors = delta('linus_bad_frames_total', { reason: 'socket_error' });

    figures.push(
      {
        name: 'malformed frames sent and confirmed received',
        value: totalSent,
        target: `${frames}`,
        met: totalSent >= frames,
      },
      { name: '  frames per second / connections', value: `${Math.round(totalSent / seconds)} / ${tally.connections}` },
      { name: '  binary frames sent before the hello', value: tally.beforeHello },
      { name: 'server crashed', value: alive ? 'no' : 'yes', target: 'no', met: alive },
      {
        name: 'a well-formed device gets its hello and ping answered',
        value: works.ok ? 'yes' : `no (${works.error})`,
        target: 'yes',
        met: works.ok,
      },
      {
        name: 'connections the server dropped unasked',
        value: tally.unexpectedCloses,
        target: '0',
        met: tally.unexpectedCloses === 0,
      },
    );
    for (const cls of classes) {
      const c = FUZZ_CLASSES[cls];
      const where = `${c.metric}${
        'labels' in c
          ? `{${Object.entries(c.labels)
              .map(([k, v]) => `${k}="${v}"`)
              .join(',')}}`
          : ''
      }`;
      figures.push({
        name: `${cls}: counted / sent (${where})`,
        value: `${got[cls]} / ${tally.sent[cls]}`,
        target: 'equal',
        met: got[cls] === tally.sent[cls],
      });
    }
    figures.push(
      {
        name: 'random audio that failed to decode (linus_uplink_decode_errors_total)',
        value: `${decodeErrors} of ${tally.sent.random_audio}`,
      },
      { name: 'rate-limited frames (limit set out of the way)', value: rateLimited },
      {
        name: 'close codes after closing frames',
        value:
          Object.entries(tally.closeCodes)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ') || '-',
      },
    );
    if (!alive) failures.push(`the server is gone or unhealthy: ${srv.child.output().slice(-800)}`);
    if (!works.ok) failures.push(`a well-formed device was not served after the fuzz: ${works.error}`);
    if (totalSent < frames)
      failures.push(
        `only ${totalSent} of ${frames} frames were sent and confirmed (${tally.unconfirmed} unconfirmed, ${tally.connectFailures} connections failed)`,
      );
    if (tally.unexpectedCloses)
      failures.push(
        `the server closed ${tally.unexpectedCloses} connections unasked: ${tally.errors.slice(0, 3).join('; ')}`,
      );
    for (const cls of classes)
      if (got[cls] !== tally.sent[cls]) failures.push(`${cls}: ${tally.sent[cls]} sent, ${got[cls]} counted`);
    notes.push(
      `Limits: max_frame_bytes ${maxFrameBytes}, max_frame_hard_bytes ${hardFrameBytes}, max_messages_per_second out of the way (every frame is judged by its content); ${generators} generator(s) × ${connections} connections, seed ${seed}.`,
      "A frame counts as sent once a ping/pong round trip after it succeeded on its connection (the server handles a connection's frames in order), or, for a closing frame, once the server closed with the code for it (1007, 1009, 1002).",
      'random_audio is counted as the binary frames the server received (linus_messages_in_total{type="binary"}) minus the other binary classes; random bytes are often valid Opus, so decode errors are a share of them.',
    );
    if (socketErrors)
      notes.push(`${socketErrors} other socket errors counted (linus_bad_frames_total{reason="socket_error"}).`);
    if (tally.errors.length) notes.push(`Generator notes: ${tally.errors.slice(0, 5).join('; ')}`);
    sampler.stop();
    series.push(sampler.series('cpu', 'server CPU', '% of a core'), sampler.series('rss', 'server RSS', 'MiB'));
    const genCpu = results.reduce((s, r) => s + r.cpuMs, 0);
    return result(startedAt, figures, failures, notes, series, {
      generatorCpuPct: (genCpu / (seconds * 1000)) * 100,
      details: { tally, counted: got, seconds },
    });
  } catch (err) {
    if (!ctx.signal.aborted) throw err;
    failures.push(`interrupted: ${(err as Error).message}`);
    return result(startedAt, figures, failures, notes, series, {});
  } finally {
    sampler?.stop();
    await Promise.all(gens.map((g) => stopChild(g, 3000)));
    await server?.stop(10_000);
  }
}

const zero = <K extends string>(r: Record<K, number>): Record<K, number> =>
  Object.fromEntries(Object.keys(r).map((k) => [k, 0])) as Record<K, number>;

function result(
  startedAt: Date,
  figures: Figure[],
  failures: string[],
  notes: string[],
  series: Series[],
  extra: Partial<ProfileResult>,
): ProfileResult {
  return {
    profile: 'fuzz',
    command: '',
    startedAt: startedAt.toISOString(),
    durationSec: (Date.now() - startedAt.getTime()) / 1000,
    figures,
    series,
    notes,
    ok: failures.length === 0 && figures.length > 0,
    ...(failures.length ? { failures } : {}),
    ...extra,
  };
}
