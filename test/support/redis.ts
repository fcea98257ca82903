/**
 * What the Redis tests share: the machine's Redis (127.0.0.1:6379, started by .ci/run), a key prefix of their
 * own per test, the deletion of its keys at the end, and a TCP proxy to cut and restore a node's connections
 * without touching the machine's Redis.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { Redis } from 'ioredis';
import { startClusterHub, type ClusterHub, type ClusterHubOptions } from '../../src/hub/cluster/index.js';
import type { DeviceConnection } from '../../src/hub/registry.js';
import { silentLogger } from '../../src/observability/log.js';

export const REDIS_URL = process.env.LINUS_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Undefined when Redis answers; else why the Redis tests are skipped (printed by the test runner). */
export async function redisSkipReason(): Promise<string | undefined> {
  const r = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 1500, retryStrategy: () => null });
  let cause: string | undefined;
  // The cause (ECONNREFUSED...) comes as an error event; the connect below then rejects with a vaguer one.
  r.on('error', (err: Error) => (cause ??= err.message));
  try {
    await r.connect();
    await r.ping();
    return undefined;
  } catch (err) {
    const reason = `Redis not reachable at ${REDIS_URL} (${cause ?? (err instanceof Error ? err.message : String(err))})`;
    // CI starts Redis: there a missing one is a failure, not a skip.
    if (process.env.LINUS_REQUIRE_SERVICES === '1')
      throw new Error(`${reason}; LINUS_REQUIRE_SERVICES=1`, { cause: err });
    process.stdout.write(`# skipping Redis tests: ${reason}\n`);
    return reason;
  } finally {
    r.disconnect();
  }
}

/** A key prefix no other test (or run) uses. */
export const testPrefix = (): string => `linus-test:${randomBytes(6).toString('hex')}:`;

/** A plain connection for checks from outside the code under test. */
export function adminClient(): Redis {
  return new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
}

/** Deletes every key under the prefix. */
export async function dropPrefix(admin: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let n = 0;
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length) n += await admin.del(...keys);
  } while (cursor !== '0');
  return n;
}

/** Kills every client connection whose name starts with `name` (a node's `linus:<id>` connections). */
export async function killClients(admin: Redis, name: string): Promise<number> {
  const list = await admin.client('LIST');
  let n = 0;
  for (const line of String(list).split('\n')) {
    const id = /\bid=(\d+)/.exec(line)?.[1];
    const client = /\bname=(\S*)/.exec(line)?.[1];
    if (id && client?.startsWith(name)) n += Number(await admin.client('KILL', 'ID', id));
  }
  return n;
}

/** One direction of a proxied connection: chunks pass in order, or wait while the direction is held. */
class ProxyLane {
  readonly #queue: Buffer[] = [];
  constructor(
    private readonly to: Socket,
    private readonly held: () => boolean,
  ) {}

  push(chunk: Buffer): void {
    this.#queue.push(chunk);
    this.pump();
  }

  pump(): void {
    while (this.#queue.length && !this.held()) {
      const chunk = this.#queue.shift()!;
      if (!this.to.destroyed) this.to.write(chunk);
    }
  }

  stop(): void {
    this.#queue.length = 0;
  }
}

/**
 * A TCP proxy on a loopback port in front of Redis. `down()` closes the listener and cuts every connection
 * (what a Redis crash looks like to a client: refused reconnects); `up()` listens on the same port again.
 * `hold()` stops one direction (what the server sends, or what the node sends; of every connection or of those whose
 * first bytes name a connection, e.g. `:cmd`) until `release()`: a link that stalls, nothing lost, order kept.
 */
export class TcpProxy {
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  readonly #lanes = new Set<ProxyLane>();
  readonly #held = { toNode: false, toServer: false };
  /** Held connections only: those whose first bytes (ioredis sends CLIENT SETNAME first) contain this. */
  #only: string | undefined;
  port = 0;

  constructor(
    readonly targetPort = 6379,
    readonly targetHost = '127.0.0.1',
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async up(): Promise<void> {
    if (this.#server) return;
    const server = createServer((client) => {
      const upstream = connect(this.targetPort, this.targetHost);
      let head = '';
      const chosen = (): boolean => this.#only === undefined || head.includes(this.#only);
      const toServer = new ProxyLane(upstream, () => this.#held.toServer && chosen());
      const toClient = new ProxyLane(client, () => this.#held.toNode && chosen());
      for (const [s, lane] of [
        [client, toServer],
        [upstream, toClient],
      ] as const) {
        this.#sockets.add(s);
        this.#lanes.add(lane);
        s.on('close', () => {
          this.#sockets.delete(s);
          this.#lanes.delete(lane);
          lane.stop();
        });
        // A reset on one side ends both; the close of the pair is what the client sees.
        s.on('error', () => s.destroy());
      }
      client.on('data', (chunk: Buffer) => {
        if (head.length < 512) head += chunk.toString('latin1', 0, 512);
        toServer.push(chunk);
      });
      upstream.on('data', (chunk: Buffer) => toClient.push(chunk));
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    this.#server = server;
  }

  /**
   * What the server sends (`toNode`: the node reads nothing) or the node sends waits in the proxy until
   * `release()`; with `only`, on the connections whose first bytes contain it (`:cmd`: a node's command connection).
   */
  hold(direction: 'toNode' | 'toServer' = 'toNode', only?: string): void {
    this.#held[direction] = true;
    this.#only = only;
  }

  release(): void {
    this.#held.toNode = this.#held.toServer = false;
    this.#only = undefined;
    for (const lane of this.#lanes) lane.pump();
  }

  async down(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    this.#held.toNode = this.#held.toServer = false;
    this.#only = undefined;
    for (const s of this.#sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** A device connection that records what it is handed and whether it was replaced (as a Session would be told). */
export class RecordingConnection implements DeviceConnection {
  readonly connectionId = randomUUID();
  readonly inbox: Array<{ type: string } & Record<string, unknown>> = [];
  /** The newer connection it was told about, once replaced. */
  replacedByConn: DeviceConnection | undefined;
  replacedAt: number | undefined;
  /** false: the connection refuses (a closed socket). */
  accepting = true;
  constructor(readonly deviceId: string) {}
  replacedBy(newer: DeviceConnection): void {
    this.replacedAt = performance.now();
    this.replacedByConn = newer;
  }
  deliver(message: { type: string } & Record<string, unknown>): boolean {
    if (this.accepting) this.inbox.push(message);
    return this.accepting;
  }
  deliverText(json: string): boolean {
    return this.deliver(JSON.parse(json) as { type: string });
  }
  /** Ids of the messages handed over with deliverWritten (settled once written, as the peer queue asks). */
  readonly writtenIds: unknown[] = [];
  deliverWritten(message: { type: string } & Record<string, unknown>): Promise<boolean> {
    if (this.accepting) this.writtenIds.push(message.id);
    return Promise.resolve(this.deliver(message));
  }
}

/** One cluster node's hub on a prefix (module tests run several in one process, each with its own node id). */
export function startNode(prefix: string, nodeId: string, opts: Partial<ClusterHubOptions> = {}): Promise<ClusterHub> {
  return startClusterHub({ redisUrl: REDIS_URL, keyPrefix: prefix, nodeId, log: silentLogger(), ...opts });
}

/**
 * A Redis server of the test's own on a free loopback port, for what must not be done to the machine's Redis:
 * killing it and starting it again, empty, as after a crash. With `snapshotDir` it starts from the snapshot a
 * `SAVE` left there (nothing is saved on its own), as a server restored from an older snapshot does.
 */
export class OwnRedis {
  #proc: ChildProcess | undefined;
  port = 0;

  constructor(private readonly snapshotDir?: string) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (!this.port) this.port = await freePort();
    const proc = spawn(
      'redis-server',
      [
        ...['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        ...(this.snapshotDir
          ? ['--dir', this.snapshotDir]
          : ['--dir', tmpdir(), '--dbfilename', `none-${this.port}.rdb`]),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    this.#proc = proc;
    let out = '';
    proc.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    await new Promise<void>((resolve, reject) => {
      const check = setInterval(() => {
        if (out.includes('Ready to accept connections')) done();
      }, 20);
      const done = (err?: Error): void => {
        clearInterval(check);
        proc.off('exit', exited);
        if (err) reject(err);
        else resolve();
      };
      const exited = (): void => done(new Error(`redis-server exited: ${out.slice(-500)}`));
      proc.once('exit', exited);
    });
  }

  /** SIGKILL: what a crash looks like; everything it held is gone. */
  async kill(): Promise<void> {
    const proc = this.#proc;
    this.#proc = undefined;
    if (!proc || proc.exitCode !== null) return;
    proc.kill('SIGKILL');
    await once(proc, 'exit');
  }
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as { port: number };
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
