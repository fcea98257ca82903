/**
 * crash: SIGKILL the server while it is writing, restart it on the same data dir, and check that nothing it
 * acknowledged is lost. Per iteration: meeting devices send snippets (acknowledged `status:"ok"` only after the
 * commit); peer senders send messages to target devices, most offline (acknowledged `enqueued` after the commit),
 * some that come online during the writes (`delivered`, and their queue is flushed to them); after a random
 * --kill-after the server gets SIGKILL. It is started again on the same data dir; every acknowledged snippet must be
 * in its meeting's transcript (GET /supie/meetings/...), and every acknowledged peer message must reach its target,
 * before the kill or from the queue after the restart. Repeated --iterations times, each on a fresh data dir.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { validateConfig } from '../../src/config/load.js';
import { cpuLayout, pinSelf, running, sleep } from '../lib/children.js';
import { BenchDevice, getJson, type Json } from '../lib/device.js';
import { FlagError, int, num, onOff, serverNodeArgs, SERVER_HELP, SERVER_OPTIONS } from '../lib/flags.js';
import { ensureBuilt, startLinus, type LinusProcess } from '../lib/linus-server.js';
import type { Figure, Profile, ProfileContext, ProfileResult } from '../lib/profile.js';

const options = {
  iterations: { type: 'string', default: '5' },
  'meeting-devices': { type: 'string', default: '10' },
  'snippet-rate': { type: 'string', default: '9' },
  'peer-senders': { type: 'string', default: '4' },
  'peer-targets': { type: 'string', default: '20' },
  'peer-window': { type: 'string', default: '10' },
  receivers: { type: 'string', default: '0.25' },
  'slow-receivers': { type: 'string', default: '0.5' },
  'payload-bytes': { type: 'string', default: '1000' },
  'kill-after': { type: 'string', default: '2-5' },
  seed: { type: 'string', default: '1' },
  ...SERVER_OPTIONS,
} as const;

const help: Record<keyof typeof options, string> = {
  iterations: 'kill-and-restart rounds, each on a fresh data dir',
  'meeting-devices': 'devices sending meeting snippets',
  'snippet-rate': 'snippet messages per meeting device per second (the server admits 10)',
  'peer-senders': 'devices sending peer messages',
  'peer-targets': 'devices the peer messages are addressed to (round robin)',
  'peer-window': 'peer messages in flight per sender',
  receivers: 'share of the targets that come online during the writes (flushes and live deliveries under the kill)',
  'slow-receivers':
    'share of those receivers that read nothing until the kill (their buffers fill: what is queued in the server then?)',
  'payload-bytes': "filler bytes in each peer message (bigger messages fill a slow receiver's buffers sooner)",
  'kill-after': 's after the writes start when SIGKILL comes: a range lo-hi, drawn per iteration',
  seed: 'seed of the kill times',
  ...SERVER_HELP,
};

const profile: Profile = {
  name: 'crash',
  summary:
    'SIGKILL while meetings and peer messages are written; restart on the same data dir; nothing acknowledged lost',
  options,
  help,
  smokeDefaults: {
    iterations: '1',
    'meeting-devices': '3',
    'peer-senders': '2',
    'peer-targets': '4',
    receivers: '0.5',
    'kill-after': '1.5-2',
    pin: 'off',
  },
  timeoutSec: (flags) => 120 + Number(flags.iterations) * 60,
  run,
};
export default profile;

interface Iteration {
  killAfterSec: number;
  snippets: { sent: number; acked: number; present: number; lost: string[]; unackedPresent: number };
  peer: {
    sent: number;
    acked: number;
    receivedBeforeKill: number;
    redelivered: number;
    lost: string[];
    duplicates: number;
    unackedDelivered: number;
  };
  restartSec: number;
}

async function run(ctx: ProfileContext): Promise<ProfileResult> {
  const f = ctx.flags;
  const iterations = int(f, 'iterations', 1, 1000);
  const meetingDevices = int(f, 'meeting-devices', 0, 1000);
  const snippetRate = num(f, 'snippet-rate', 0.1, 10);
  const senders = int(f, 'peer-senders', 0, 1000);
  const targets = int(f, 'peer-targets', 1, 10_000);
  const window = int(f, 'peer-window', 1, 10_000);
  const receiverShare = num(f, 'receivers', 0, 1);
  const slowShare = num(f, 'slow-receivers', 0, 1);
  const payloadBytes = int(f, 'payload-bytes', 0, 60_000);
  const [killLo, killHi] = String(f['kill-after']).split('-').map(Number) as [number, number?];
  const killRange = [killLo, killHi ?? killLo] as const;
  if (!(killRange[0] > 0 && killRange[1]! >= killRange[0]))
    throw new FlagError(`--kill-after must be s or lo-hi with 0 < lo ≤ hi, got "${String(f['kill-after'])}"`);
  // Spread the seed's bits first: xorshift's first draws from a small seed are close to 0.
  let seed = Math.imul(int(f, 'seed', 1, 2 ** 31), 2654435761) >>> 0 || 1;
  const rnd = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 4294967296;
  };
  const cpu = cpuLayout(onOff(f, 'pin'));
  if (cpu.pinned) pinSelf(cpu.load);
  ensureBuilt(ctx.root, ctx.serverFromSource);

  const startedAt = new Date();
  const failures: string[] = [];
  const notes: string[] = [];
  const done: Iteration[] = [];
  const raw = {
    log: { log_level: 'warn' },
    server: { api_rate_limit: 0, max_messages_per_second: 100_000, stats_interval_ms: 0 },
    peer: { rate_limit_per_second: 100_000, offline_max_per_device: 1_000_000, max_targets: 10 },
    meeting: { transcript_push_interval_ms: 3000 },
  };
  validateConfig(raw);
  const config = `# written by bench/profiles/crash.ts\n${toYaml(raw)}`;
  try {
    for (let i = 1; i <= iterations && !ctx.signal.aborted; i++) {
      const killAfterSec = killRange[0] + rnd() * (killRange[1]! - killRange[0]);
      ctx.progress(`crash: iteration ${i}/${iterations}, SIGKILL after ${killAfterSec.toFixed(1)} s`);
      const it = await iteration(ctx, {
        i,
        config,
        cpu,
        killAfterSec,
        meetingDevices,
        snippetRate,
        senders,
        targets,
        window,
        receiverShare,
        slowShare,
        payloadBytes,
      });
      done.push(it);
      ctx.log(
        `crash ${i}: killed after ${killAfterSec.toFixed(1)} s; snippets ${it.snippets.acked} acked, ${it.snippets.lost.length} lost; ` +
          `peer ${it.peer.acked} acked, ${it.peer.receivedBeforeKill} received before the kill, ${it.peer.redelivered} redelivered, ${it.peer.lost.length} lost`,
      );
      if (it.snippets.lost.length)
        failures.push(
          `iteration ${i}: ${it.snippets.lost.length} acknowledged snippets missing after the restart (first: ${it.snippets.lost.slice(0, 3).join(', ')})`,
        );
      if (it.peer.lost.length)
        failures.push(
          `iteration ${i}: ${it.peer.lost.length} acknowledged peer messages never reached their target (first: ${it.peer.lost.slice(0, 3).join(', ')})`,
        );
      if (!it.snippets.acked && meetingDevices)
        failures.push(`iteration ${i}: no snippet was acknowledged before the kill (nothing tested)`);
      if (!it.peer.acked && senders)
        failures.push(`iteration ${i}: no peer message was acknowledged before the kill (nothing tested)`);
    }
  } catch (err) {
    if (!ctx.signal.aborted) throw err;
    failures.push(`interrupted: ${(err as Error).message}`);
  }

  const sum = (fn: (it: Iteration) => number): number => done.reduce((s, it) => s + fn(it), 0);
  const lostSnippets = sum((it) => it.snippets.lost.length);
  const lostPeer = sum((it) => it.peer.lost.length);
  const figures: Figure[] = [
    {
      name: 'kill-and-restart iterations',
      value: `${done.length} / ${iterations}`,
      target: `${iterations}`,
      met: done.length === iterations,
    },
    {
      name: 'kill times (s after the writes started)',
      value: done.map((it) => it.killAfterSec.toFixed(1)).join(', ') || '-',
    },
    { name: 'meeting snippets acknowledged before the kill', value: sum((it) => it.snippets.acked) },
    { name: 'acknowledged snippets lost after the restart', value: lostSnippets, target: '0', met: lostSnippets === 0 },
    {
      name: '  snippets sent / present after the restart / present but never acknowledged',
      value: `${sum((it) => it.snippets.sent)} / ${sum((it) => it.snippets.present)} / ${sum((it) => it.snippets.unackedPresent)}`,
    },
    { name: 'peer messages acknowledged before the kill (enqueued or delivered)', value: sum((it) => it.peer.acked) },
    { name: 'acknowledged peer messages lost', value: lostPeer, target: '0', met: lostPeer === 0 },
    {
      name: '  received before the kill / redelivered after the restart',
      value: `${sum((it) => it.peer.receivedBeforeKill)} / ${sum((it) => it.peer.redelivered)}`,
    },
    { name: '  delivered twice (before the kill and again after it)', value: sum((it) => it.peer.duplicates) },
    {
      name: '  delivered but never acknowledged (in flight at the kill)',
      value: sum((it) => it.peer.unackedDelivered),
    },
    {
      name: 'restart time after SIGKILL (s, mean)',
      value: done.length ? Number((sum((it) => it.restartSec) / done.length).toFixed(2)) : '-',
    },
  ];
  notes.push(
    'Acknowledged = a snippet answered status "ok" with accepted 1, a peer message whose receipt lists its target as enqueued or delivered; anything the device got before the kill was sent before it.',
    "A snippet is present when its text is in its meeting's transcript through the API after the restart; a peer message when its target received it, live before the kill or from the queue after the restart.",
    'Delivered twice is allowed (at least once): the queue removes a message only once it was written to the socket, so a kill in between sends it again.',
  );
  notes.push(
    `Iterations ran on fresh data dirs with ${meetingDevices} meeting devices, ${senders} peer senders → ${targets} targets (${Math.round(targets * receiverShare)} coming online during the writes, ${Math.round(Math.round(targets * receiverShare) * slowShare)} of them not reading until the kill), ${payloadBytes} filler bytes per peer message.`,
  );
  return {
    profile: 'crash',
    command: '',
    startedAt: startedAt.toISOString(),
    durationSec: (Date.now() - startedAt.getTime()) / 1000,
    figures,
    notes,
    ok: failures.length === 0 && done.length === iterations,
    ...(failures.length ? { failures } : {}),
    details: {
      iterations: done.map((it) => ({
        ...it,
        snippets: { ...it.snippets, lost: it.snippets.lost.slice(0, 20) },
        peer: { ...it.peer, lost: it.peer.lost.slice(0, 20) },
      })),
    },
  };
}

interface IterationOptions {
  i: number;
  config: string;
  cpu: ReturnType<typeof cpuLayout>;
  killAfterSec: number;
  meetingDevices: number;
  snippetRate: number;
  senders: number;
  targets: number;
  window: number;
  receiverShare: number;
  slowShare: number;
  payloadBytes: number;
}

async function iteration(ctx: ProfileContext, o: IterationOptions): Promise<Iteration> {
  const dataDir = mkdtempSync(join(tmpdir(), 'linus-bench-crash-'));
  const devices: BenchDevice[] = [];
  let server: LinusProcess | undefined;
  const start = (): Promise<LinusProcess> =>
    startLinus({
      root: ctx.root,
      config: o.config,
      dataDir,
      fromSource: ctx.serverFromSource,
      nodeArgs: serverNodeArgs(ctx.flags),
      cpuList: o.cpu.server,
      pin: o.cpu.pinned,
    });
  try {
    server = await start();
    const url = server.url('/xiaozhi/v1/', 'ws');
    const connect = async (deviceId: string): Promise<BenchDevice> => {
      const d = await BenchDevice.connect({ url, deviceId, timeoutMs: 10_000 });
      devices.push(d);
      return d;
    };
    const targetId = (t: number): string => `crash-${o.i}-t${t}`;
    const receiverCount = Math.round(o.targets * o.receiverShare);
    let writing = true;

    // ---- meeting devices: one snippet message at a time per interval; acks come back in order
    const snippets = { sent: 0, acked: new Map<string, string>() }; // token → device id
    const meetingLoops = Array.from({ length: o.meetingDevices }, async (_, d) => {
      const id = `crash-${o.i}-m${d}`;
      const dev = await connect(id);
      const inFlight: string[] = [];
      dev.ws.on('message', (data: Buffer, isBinary: boolean) => {
        if (isBinary) return;
        const m = JSON.parse(data.toString()) as Json;
        if (m.type !== 'meeting' || m.phase !== 'snippet' || m.status === undefined) return;
        const token = inFlight.shift();
        if (token && m.status === 'ok' && m.accepted === 1) snippets.acked.set(token, id);
      });
      for (let s = 0; writing && dev.open; s++) {
        const token = `k${o.i}d${d}s${s}`;
        inFlight.push(token);
        dev.send({
          type: 'meeting',
          phase: 'snippet',
          items: [{ text: `crash test snippet ${token} about the quarterly plan` }],
        });
        snippets.sent++;
        await sleep(1000 / o.snippetRate);
      }
    });

    // ---- peer senders: a window of messages in flight each, round robin over the targets
    const peer = { sent: 0, acked: new Map<string, string>(), received: new Map<string, number>() }; // token → target; token → times received
    const onTargetMessage = (m: Json): void => {
      if (m.type !== 'peer' || m.event !== 'message') return;
      const token = String((m.payload as { text?: unknown } | undefined)?.text ?? '').split(' ')[0]!;
      peer.received.set(token, (peer.received.get(token) ?? 0) + 1);
    };
    // The queue is flushed as soon as the device registers, before its hello is answered: what came with the
    // hello is in `received` already, later messages come through the listener (no await in between).
    const watchTarget = (d: BenchDevice): void => {
      for (const m of d.received) onTargetMessage(m);
      d.ws.on('message', (data: Buffer, isBinary: boolean) => {
        if (!isBinary) onTargetMessage(JSON.parse(data.toString()) as Json);
      });
    };
    let next = 0;
    const filler = 'x'.repeat(o.payloadBytes);
    const senderLoops = Array.from({ length: o.senders }, async (_, s) => {
      const dev = await connect(`crash-${o.i}-s${s}`);
      let inFlight = 0;
      let wake: (() => void) | undefined;
      const sentTo = new Map<string, { token: string; target: string }>();
      dev.ws.on('message', (data: Buffer, isBinary: boolean) => {
        if (isBinary) return;
        const m = JSON.parse(data.toString()) as Json;
        if (m.type !== 'peer' || (m.status !== 'done' && m.status !== 'error') || m.code === 'TARGET_OFFLINE') return;
        const req = sentTo.get(String(m.requestId));
        if (!req) return;
        sentTo.delete(String(m.requestId));
        const listed = [
          ...((m.enqueued as string[] | undefined) ?? []),
          ...((m.delivered as string[] | undefined) ?? []),
        ];
        if (m.status === 'done' && listed.includes(req.target)) peer.acked.set(req.token, req.target);
        inFlight--;
        wake?.();
      });
      void dev.closed.then(() => wake?.()); // receipts stop with the kill: do not wait for them
      while (writing && dev.open) {
        if (inFlight >= o.window) {
          await new Promise<void>((r) => (wake = r));
          continue;
        }
        const n = next++;
        const target = targetId(n % o.targets);
        const token = `p${o.i}s${s}n${n}`;
        sentTo.set(token, { token, target });
        dev.send({ type: 'peer', id: token, to: [target], payload: { text: `${token} ${filler}` } });
        peer.sent++;
        inFlight++;
        if (n % 20 === 0) await sleep(0); // let receipts in
      }
    });

    // ---- some targets come online during the writes: flushes and live deliveries happen under the kill. Slow
    // ones read nothing until the kill (their socket is paused), so the server's send buffers for them fill.
    const slow: BenchDevice[] = [];
    const receiving: BenchDevice[] = [];
    const slowFrom = receiverCount - Math.round(receiverCount * o.slowShare);
    const receivers = (async () => {
      await sleep(o.killAfterSec * 400);
      for (let t = 0; t < receiverCount && writing; t++) {
        const d =
          t >= slowFrom
            ? await BenchDevice.connect({ url, deviceId: targetId(t), hello: false })
            : await connect(targetId(t));
        if (t >= slowFrom) {
          devices.push(d);
          (d.ws as unknown as { _socket: Socket })._socket.pause();
          slow.push(d);
        }
        receiving.push(d);
        watchTarget(d);
      }
    })();

    await sleep(o.killAfterSec * 1000, ctx.signal);
    server.child.child.kill('SIGKILL');
    await server.child.exited;
    writing = false;
    // What the server wrote before it died is still on its way (the kernel sends it, then FIN): the receivers read
    // until their socket closes; everyone else is cut.
    for (const d of slow) (d.ws as unknown as { _socket: Socket })._socket.resume();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(receiving.map((d) => d.closed)),
      new Promise((r) => (timer = setTimeout(r, 5000))),
    ]);
    clearTimeout(timer);
    for (const d of devices) d.terminate();
    await Promise.allSettled([...meetingLoops, ...senderLoops, receivers]);
    const receivedBeforeKill = new Map(peer.received);
    devices.length = 0;

    // ---- restart on the same data dir
    const t0 = performance.now();
    server = await start();
    const restartSec = (performance.now() - t0) / 1000;
    const srv = server;

    // Meetings: every acknowledged snippet must be in its device's meeting transcript.
    const present = new Set<string>();
    for (let d = 0; d < o.meetingDevices; d++) {
      for (const text of await transcriptTexts(srv, `crash-${o.i}-m${d}`)) {
        const m = /\b(k\d+d\d+s\d+)\b/.exec(text);
        if (m) present.add(m[1]!);
      }
    }
    const lostSnippets = [...snippets.acked.keys()].filter((t) => !present.has(t));
    const unackedPresent = [...present].filter((t) => !snippets.acked.has(t)).length;

    // Peer: every target connects; its queue is flushed to it. Done when every acknowledged message arrived, or
    // when nothing new came for 2 s.
    const url2 = srv.url('/xiaozhi/v1/', 'ws');
    peer.received = new Map();
    for (let t = 0; t < o.targets; t++) {
      const d = await BenchDevice.connect({ url: url2, deviceId: targetId(t), timeoutMs: 10_000 });
      watchTarget(d);
      devices.push(d);
    }
    const missing = (): string[] =>
      [...peer.acked.keys()].filter((t) => !receivedBeforeKill.has(t) && !peer.received.has(t));
    let last = peer.received.size;
    let quietSince = Date.now();
    while (missing().length && Date.now() - quietSince < 2000) {
      await sleep(100);
      if (peer.received.size !== last) {
        last = peer.received.size;
        quietSince = Date.now();
      }
    }
    const lostPeer = missing();
    const everReceived = new Set([...receivedBeforeKill.keys(), ...peer.received.keys()]);
    const duplicates = [...everReceived].filter(
      (t) => (receivedBeforeKill.get(t) ?? 0) + (peer.received.get(t) ?? 0) > 1,
    ).length;
    return {
      killAfterSec: o.killAfterSec,
      restartSec,
      snippets: {
        sent: snippets.sent,
        acked: snippets.acked.size,
        present: present.size,
        lost: lostSnippets,
        unackedPresent,
      },
      peer: {
        sent: peer.sent,
        acked: peer.acked.size,
        receivedBeforeKill: receivedBeforeKill.size,
        redelivered: peer.received.size,
        lost: lostPeer,
        duplicates,
        unackedDelivered: [...everReceived].filter((t) => !peer.acked.has(t)).length,
      },
    };
  } finally {
    for (const d of devices) d.terminate();
    if (server && running(server.child)) await server.stop(10_000);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Every text of every meeting of a device (any status), through the HTTP API, page by page. */
async function transcriptTexts(srv: LinusProcess, deviceId: string): Promise<string[]> {
  type Api<T> = { success: boolean; data: T; error?: string };
  const list = await getJson<Api<{ sessionId: string }[]>>(
    srv.url(`/supie/meetings/recent?status=all&limit=100&deviceId=${encodeURIComponent(deviceId)}`),
  );
  if (!list.body.success) throw new Error(`GET /supie/meetings/recent: ${list.body.error}`);
  const texts: string[] = [];
  for (const m of list.body.data) {
    for (let offset = 0; ; offset += 500) {
      const page = await getJson<Api<{ items: { text: string }[]; total: number }>>(
        srv.url(`/supie/meetings/${encodeURIComponent(m.sessionId)}/transcript?offset=${offset}&limit=500`),
      );
      if (!page.body.success) throw new Error(`GET transcript of ${m.sessionId}: ${page.body.error}`);
      texts.push(...page.body.data.items.map((x) => x.text));
      if (offset + 500 >= page.body.data.total) break;
    }
  }
  return texts;
}
