/**
 * What the `idle` and `control` profiles share: Linus or the bare `ws` baseline as the server under test, and
 * load-client processes (bench/load-client.ts) that open firmware-style connections (headers + hello) and then
 * hold them idle (with heartbeats) or run ping→pong loops.
 */
import type { FromLoad, LoadConfig, LoadMode, Pushes } from '../shared.js';
import { nextMessage, spawnNode, stopChild, type Child } from './children.js';
import { ensureBuilt, startBareWs, startLinus } from './linus-server.js';
import { split } from './stats.js';
import type { CpuLayout } from './voice-load.js';

export type Kind = 'bare' | 'linus';
export const KINDS: Kind[] = ['bare', 'linus'];
export const LABEL: Record<Kind, string> = { bare: 'bare ws', linus: 'Linus' };

/** No timers or limits that would disturb the measurement (the bare server has none either). */
const LINUS_CONFIG = `# written by bench/lib/transport-load.ts
log:
  log_level: warn
server:
  max_connections: 100000
  hello_timeout_ms: 0
  ws_ping_interval_ms: 0
  max_messages_per_second: 100000
  stats_interval_ms: 10000
close_connection_no_voice_time: 3600
`;

export interface TransportRig {
  root: string;
  fromSource: boolean;
  cpu: CpuLayout;
  nodeArgs: string[];
  signal: AbortSignal;
}

export interface ServerUnderTest {
  kind: Kind;
  child: Child;
  port: number;
  stop(): Promise<void>;
}

export async function startServerUnderTest(kind: Kind, rig: TransportRig): Promise<ServerUnderTest> {
  if (kind === 'bare') {
    const s = await startBareWs({
      root: rig.root,
      nodeArgs: rig.nodeArgs,
      cpuList: rig.cpu.server,
      pin: rig.cpu.pinned,
    });
    return { kind, child: s.child, port: s.port, stop: () => s.stop(5000) };
  }
  ensureBuilt(rig.root, rig.fromSource);
  const s = await startLinus({
    root: rig.root,
    config: LINUS_CONFIG,
    nodeArgs: rig.nodeArgs,
    cpuList: rig.cpu.server,
    pin: rig.cpu.pinned,
    fromSource: rig.fromSource,
  });
  return { kind, child: s.child, port: s.port, stop: () => s.stop(10_000) };
}

export const CONNECT_TIMEOUT_MS = 20_000;
let nextId = 0;

export interface OpenedLoad {
  clients: Child<FromLoad>[];
  opened: number;
  failed: number;
  firstError?: string;
  connectMs: number;
}

/**
 * Opens `total` connections from ceil(total / perProc) load clients (each process has its own fd limit); those
 * not open after openForMs count as failed.
 */
export async function openLoad(
  rig: TransportRig,
  server: ServerUnderTest,
  mode: LoadMode,
  total: number,
  perProc: number,
  openForMs: number,
  heartbeatMs = 0,
  presenceOptOutEvery = 0,
): Promise<OpenedLoad> {
  const clients = split(total, Math.ceil(total / perProc)).map((count, i) => {
    const cfg: LoadConfig = {
      url: `ws://127.0.0.1:${server.port}/xiaozhi/v1/`,
      mode,
      count,
      firstId: nextId,
      concurrency: 100,
      timeoutMs: CONNECT_TIMEOUT_MS,
      openForMs,
      ...(heartbeatMs ? { heartbeatMs } : {}),
      ...(presenceOptOutEvery ? { presenceOptOutEvery } : {}),
    };
    nextId += count;
    return spawnNode<FromLoad>(
      `${mode} client ${i}`,
      ['--import', 'tsx', 'bench/load-client.ts'],
      { cwd: rig.root, ipc: true, env: { BENCH_LOAD: JSON.stringify(cfg) }, cpuList: rig.cpu.load },
      rig.cpu.pinned,
    );
  });
  try {
    const ready = await Promise.all(
      clients.map((p) => nextMessage(p, 'ready', openForMs + CONNECT_TIMEOUT_MS + 15_000, rig.signal)),
    );
    const firstError = ready.find((r) => r.firstError)?.firstError;
    return {
      clients,
      opened: ready.reduce((s, r) => s + r.opened, 0),
      failed: ready.reduce((s, r) => s + r.failed, 0),
      ...(firstError ? { firstError } : {}),
      connectMs: Math.max(...ready.map((r) => r.ms)),
    };
  } catch (err) {
    await stopLoad(clients);
    throw err;
  }
}

export const stopLoad = (clients: Child[]): Promise<unknown> => Promise.all(clients.map((p) => stopChild(p, 3000)));

export const sumPushes = (all: Pushes[]): Pushes =>
  all.reduce((a, b) => ({ messages: a.messages + b.messages, bytes: a.bytes + b.bytes }), { messages: 0, bytes: 0 });
