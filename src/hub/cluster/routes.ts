import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../observability/log.js';
import { Scope } from '../../session/scope.js';
import type { RedisLink } from './link.js';

/** Where a device is connected: which node, which connection, since when (ms, the claiming node's clock). */
export interface Route {
  nodeId: string;
  connectionId: string;
  since: number;
}

export interface ClaimResult {
  /** The route is ours now (or was already). */
  won: boolean;
  /** When won: the live route it replaced (another node's or another connection's). */
  previous?: Route;
  /** When lost: the newer live route that holds the device. */
  holder?: Route;
}

/** What the route table knows of the whole cluster now. */
export interface ClusterDevices {
  /** Devices online on live nodes. */
  count: number;
  /** Nodes whose lease is alive. */
  nodes: string[];
  /** Up to the asked limit of the devices: deviceId → its node. */
  devices: Map<string, string>;
}

export interface RouteTableOptions {
  link: RedisLink;
  keyPrefix: string;
  nodeId: string;
  log: Logger;
  /** A node's routes count for this long after its last heartbeat (default 5000). */
  leaseMs?: number;
  /** Heartbeat period (default a third of the lease, so two beats may be missed). */
  heartbeatMs?: number;
}

export interface RouteTableEvents {
  /** Another node's lease ran out and this node swept its routes: these devices are offline. */
  expired: [deviceIds: string[], nodeId: string];
  /** This node's own lease had run out (a long stall, Redis lost or restarted): its routes must be claimed again. */
  leaseLost: [];
}

/*
 * Keys (all under the prefix): `routes` hash deviceId → "node\tconnection\tsince"; `nodes` sorted set
 * nodeId → lease expiry (Redis time, ms); `node:<id>:devices` set of the devices a node holds. A route counts
 * only while its node's lease is alive, so a killed node's routes end with its lease, without a TTL per device
 * (one heartbeat per node, not one per device). The scripts run atomically; they read Redis's own clock so
 * nodes' clocks do not matter for the lease. They name keys they build from the prefix, which is fine on one
 * Redis server (not Redis Cluster, where a script must declare every key).
 */
const NOW = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;
const PARSE = `local function parse(v) return string.match(v, '^(.-)\\t(.-)\\t(%d+)$') end
local function alive(node) local e = redis.call('ZSCORE', KEYS[2], node) return e and tonumber(e) > now end`;

/** KEYS routes, nodes; ARGV prefix, deviceId, nodeId, connectionId, since → {won, route (previous or holder)}. */
const CLAIM = `${NOW} ${PARSE}
local cur = redis.call('HGET', KEYS[1], ARGV[2])
local prev = ''
if cur then
  local node, conn, since = parse(cur)
  if node and alive(node) then
    if node == ARGV[3] and conn == ARGV[4] then return {1, ''} end
    if tonumber(since) > tonumber(ARGV[5]) then return {0, cur} end
    prev = cur
  end
  if node then redis.call('SREM', ARGV[1] .. 'node:' .. node .. ':devices', ARGV[2]) end
end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3] .. '\\t' .. ARGV[4] .. '\\t' .. ARGV[5])
redis.call('SADD', ARGV[1] .. 'node:' .. ARGV[3] .. ':devices', ARGV[2])
return {1, prev}`;

/** KEYS routes; ARGV prefix, deviceId, nodeId, connectionId → 1 when the route was this connection's. */
const RELEASE = `local cur = redis.call('HGET', KEYS[1], ARGV[2])
if cur and string.sub(cur, 1, #ARGV[3] + #ARGV[4] + 2) == ARGV[3] .. '\\t' .. ARGV[4] .. '\\t' then
  redis.call('HDEL', KEYS[1], ARGV[2])
  redis.call('SREM', ARGV[1] .. 'node:' .. ARGV[3] .. ':devices', ARGV[2])
  return 1
end
return 0`;

/** KEYS routes, nodes; ARGV deviceId → the route while its node is alive, else nil. */
const LOOKUP = `${NOW} ${PARSE}
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return false end
local node = parse(cur)
if node and alive(node) then return cur end
return false`;

/**
 * KEYS routes, nodes; ARGV deviceId, this node, inbox prefix, message, maxLen, ttlMs → the device's live route,
 * after writing the message to its node's inbox (not when the route is this node's own): route and send in one
 * round trip.
 */
const POST = `${NOW} ${PARSE}
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return false end
local node = parse(cur)
if not (node and alive(node)) then return false end
if node ~= ARGV[2] then
  local inbox = ARGV[3] .. node
  redis.call('XADD', inbox, 'MAXLEN', '~', ARGV[5], '*', 'm', ARGV[4])
  redis.call('PEXPIRE', inbox, ARGV[6])
end
return cur`;

/**
 * KEYS nodes; ARGV prefix, limit → {count, nodeCount, nodes..., (id, node)...}: the live nodes, how many devices
 * they hold, and up to `limit` of those devices, each with its node.
 */
const LIST = `${NOW}
local nodes = redis.call('ZRANGE', KEYS[1], '(' .. now, '+inf', 'BYSCORE')
local limit = tonumber(ARGV[2])
local count = 0
local listed = 0
local out = {0, #nodes}
for _, node in ipairs(nodes) do table.insert(out, node) end
for _, node in ipairs(nodes) do
  local key = ARGV[1] .. 'node:' .. node .. ':devices'
  count = count + redis.call('SCARD', key)
  if listed < limit then
    for _, id in ipairs(redis.call('SRANDMEMBER', key, limit - listed)) do
      table.insert(out, id)
      table.insert(out, node)
      listed = listed + 1
    end
  end
end
out[1] = count
return out`;

/**
 * KEYS routes, nodes; ARGV prefix, nodeId, leaseMs, sweepMax → {lost, deadNode, ids...}. Renews this node's
 * lease (lost = 1 when it had run out), then sweeps up to sweepMax routes of one node whose lease ran out.
 */
const HEARTBEAT = `${NOW} ${PARSE}
local old = redis.call('ZSCORE', KEYS[2], ARGV[2])
local lost = 0
if (not old) or tonumber(old) <= now then lost = 1 end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[2])
local dead = redis.call('ZRANGE', KEYS[2], '-inf', now, 'BYSCORE', 'LIMIT', 0, 1)[1]
if not dead then return {lost, ''} end
local key = ARGV[1] .. 'node:' .. dead .. ':devices'
local swept = {}
for _, id in ipairs(redis.call('SPOP', key, tonumber(ARGV[4]))) do
  local cur = redis.call('HGET', KEYS[1], id)
  if cur and parse(cur) == dead then
    redis.call('HDEL', KEYS[1], id)
    table.insert(swept, id)
  end
end
if redis.call('SCARD', key) == 0 then redis.call('ZREM', KEYS[2], dead) end
return {lost, dead, unpack(swept)}`;

/** KEYS routes, nodes; ARGV prefix, nodeId → ids released: a node leaving on purpose drops its lease and routes. */
const LEAVE = `local key = ARGV[1] .. 'node:' .. ARGV[2] .. ':devices'
local released = {}
for _, id in ipairs(redis.call('SMEMBERS', key)) do
  local cur = redis.call('HGET', KEYS[1], id)
  if cur and string.sub(cur, 1, #ARGV[2] + 1) == ARGV[2] .. '\\t' then
    redis.call('HDEL', KEYS[1], id)
    table.insert(released, id)
  end
end
redis.call('DEL', key)
redis.call('ZREM', KEYS[2], ARGV[2])
return released`;

/**
 * A script run by its SHA (the text is sent once per Redis server, not with every call); a server that does not
 * know it yet (new, restarted) answers NOSCRIPT and gets the text.
 */
function script(source: string): (r: Redis, numKeys: number, ...args: Array<string | number>) => Promise<unknown> {
  const sha = createHash('sha1').update(source).digest('hex');
  return async (r, numKeys, ...args) => {
    try {
      return await r.evalsha(sha, numKeys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return r.eval(source, numKeys, ...args);
    }
  };
}

const run = {
  claim: script(CLAIM),
  release: script(RELEASE),
  lookup: script(LOOKUP),
  post: script(POST),
  list: script(LIST),
  heartbeat: script(HEARTBEAT),
  leave: script(LEAVE),
};

function parseRoute(value: string | null | undefined): Route | undefined {
  if (!value) return undefined;
  const [nodeId, connectionId, since] = value.split('\t');
  if (!nodeId || !connectionId || !since) return undefined;
  return { nodeId, connectionId, since: Number(since) };
}

/**
 * The cluster's route table in Redis: device → {node, connection}, valid while the node's lease lives
 * (heartbeat every `heartbeatMs`, lease `leaseMs`). Every call fails fast with ClusterUnavailableError while
 * Redis is down.
 */
export class RouteTable extends EventEmitter<RouteTableEvents> {
  readonly nodeId: string;
  readonly leaseMs: number;
  readonly #o: RouteTableOptions;
  readonly #scope = new Scope('route-table');
  readonly #keys: [routes: string, nodes: string];

  constructor(opts: RouteTableOptions) {
    super();
    this.#o = opts;
    this.nodeId = opts.nodeId;
    this.leaseMs = opts.leaseMs ?? 5000;
    this.#keys = [`${opts.keyPrefix}routes`, `${opts.keyPrefix}nodes`];
    if (opts.nodeId.includes('\t')) throw new Error('cluster.node_id must not contain a tab');
  }

  /** Takes the lease and starts the heartbeat; a recovered link beats at once. */
  async start(): Promise<void> {
    await this.heartbeat();
    this.#scope.interval(this.#o.heartbeatMs ?? Math.floor(this.leaseMs / 3), () => void this.#beat());
    this.#scope.on(this.#o.link, 'ready', () => void this.#beat());
  }

  /**
   * Claims the device for this node's connection, registered at `since`. A newer live route of another
   * connection wins (the device reconnected elsewhere later); otherwise the claim takes the route over.
   */
  async claim(deviceId: string, connectionId: string, since: number): Promise<ClaimResult> {
    const [won, route] = (await this.#o.link.call((r) =>
      run.claim(r, 2, ...this.#keys, this.#o.keyPrefix, deviceId, this.nodeId, connectionId, since),
    )) as [number, string];
    const other = parseRoute(route);
    if (won === 1) return other ? { won: true, previous: other } : { won: true };
    return other ? { won: false, holder: other } : { won: false };
  }

  /** Removes the route if it is still this connection's; true when it did. */
  async release(deviceId: string, connectionId: string): Promise<boolean> {
    const n = await this.#o.link.call((r) =>
      run.release(r, 1, this.#keys[0], this.#o.keyPrefix, deviceId, this.nodeId, connectionId),
    );
    return n === 1;
  }

  async lookup(deviceId: string): Promise<Route | undefined> {
    const v = await this.#o.link.call((r) => run.lookup(r, 2, ...this.#keys, deviceId));
    return parseRoute(v as string | null);
  }

  /**
   * Writes a bus message to the inbox of the node that holds the device, in the same round trip as the lookup
   * (a Post of the bus). Returns the route; nothing is written when there is none or it is this node's own.
   */
  async post(
    deviceId: string,
    json: string,
    stream: { inboxPrefix: string; maxLen: number; streamTtlMs: number },
  ): Promise<Route | undefined> {
    const v = await this.#o.link.call((r) =>
      run.post(r, 2, ...this.#keys, deviceId, this.nodeId, stream.inboxPrefix, json, stream.maxLen, stream.streamTtlMs),
    );
    return parseRoute(v as string | null);
  }

  /** The live nodes and the devices online on them: how many, and up to `limit` of them with their node. */
  async devices(limit = 100): Promise<ClusterDevices> {
    const [count, nodeCount, ...rest] = (await this.#o.link.call((r) =>
      run.list(r, 1, this.#keys[1], this.#o.keyPrefix, limit),
    )) as [number, number, ...string[]];
    const devices = new Map<string, string>();
    for (let i = nodeCount; i + 1 < rest.length; i += 2) devices.set(rest[i]!, rest[i + 1]!);
    return { count, nodes: rest.slice(0, nodeCount), devices };
  }

  /** Renews the lease once (and sweeps one dead node); the interval calls it, tests and start may too. */
  async heartbeat(): Promise<void> {
    const [lost, dead, ...swept] = (await this.#o.link.call((r) =>
      run.heartbeat(r, 2, ...this.#keys, this.#o.keyPrefix, this.nodeId, this.leaseMs, 1000),
    )) as [number, string, ...string[]];
    if (lost === 1) this.emit('leaseLost');
    if (dead && swept.length) this.emit('expired', swept, dead);
  }

  /** Leaving on purpose: drops this node's lease and routes now (the devices are offline at once). */
  async leave(): Promise<string[]> {
    this.#scope.close();
    return (await this.#o.link.call((r) => run.leave(r, 2, ...this.#keys, this.#o.keyPrefix, this.nodeId))) as string[];
  }

  /** Idempotent: stops the heartbeat (the lease then runs out on its own). */
  close(): void {
    this.#scope.close();
  }

  async #beat(): Promise<void> {
    if (!this.#o.link.ok || this.#scope.closed) return;
    try {
      await this.heartbeat();
    } catch (err) {
      // Redis went away between the check and the call: the link reports degraded, the next beat retries.
      this.#o.log.debug({ err: errorMessage(err) }, 'route heartbeat failed');
    }
  }
}
