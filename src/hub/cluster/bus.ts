import { randomUUID } from 'node:crypto';
import { setTimeout as pause } from 'node:timers/promises';
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../observability/log.js';
import { Scope } from '../../session/scope.js';
import { ReplyError, type Redis } from 'ioredis';
import { ClusterUnavailableError, type RedisLink } from './link.js';
import {
  busMessageSchema,
  type BusBody,
  type BusBodyOf,
  type BusKind,
  type BusMessage,
  type BusMessageOf,
} from './messages.js';

export interface NodeBusOptions {
  link: RedisLink;
  /** `cluster.key_prefix`: every key of this cluster starts with it. */
  keyPrefix: string;
  /** `cluster.node_id`. */
  nodeId: string;
  log: Logger;
  /** A request not answered within this fails with ClusterUnavailableError (default 2000). */
  requestTimeoutMs?: number;
  /** Entries kept per stream (approximate trim; default 10,000). */
  maxLen?: number;
  /** A node's inbox is deleted this long after its last message (default 60 s), so dead nodes leave nothing. */
  streamTtlMs?: number;
  /** Longest single XREAD wait (default 2000); bounds how long close waits for the reader. */
  blockMs?: number;
}

export interface BusStats {
  sent: number;
  received: number;
  /** Entries that were not a valid bus message (counted and dropped, never thrown). */
  invalid: number;
  /** Requests read after their sender stopped waiting. */
  expired: number;
  /** Handlers that threw or rejected. */
  handlerErrors: number;
  /** Messages Redis did not take (down, or no answer in time): the caller fell back or gave up. */
  failed: number;
  /** Requests not answered in time (the other node is stalled or gone). */
  timeouts: number;
  /** Times the bus resumed reading and found broadcasts it can no longer read (see BusGap). */
  gaps: number;
}

/**
 * Broadcasts this node missed for good while it could not read: the stream was trimmed past its read position
 * (`trimmed`), deleted by its TTL and maybe written again meanwhile (`expired`), or Redis is a new, empty server
 * (`restarted`). What the broadcasts carried must be had another way (config: the last accepted reload kept in
 * Redis; tasks: fresh snapshots from the store).
 */
export interface BusGap {
  reason: 'trimmed' | 'expired' | 'restarted';
  /** The broadcast read position the node had (the last entry it handled). */
  cursor: string;
}

type Handler<K extends BusKind> = (msg: BusMessageOf<K>) => void | Promise<void>;
/** How handlers are stored: by kind, each called only with messages of its own kind. */
type AnyHandler = (msg: BusMessage) => void | Promise<void>;
type Result = BusMessageOf<'result'>;

/**
 * Writes a request (its JSON) to the inbox of the node it is for, `<inboxPrefix><nodeId>`, trimmed and with a
 * TTL as the bus writes its streams, and names the node; undefined when there is none (nothing written).
 */
export type Post = (
  json: string,
  stream: { inboxPrefix: string; maxLen: number; streamTtlMs: number },
) => Promise<string | undefined>;

/**
 * The node bus (D17, issue #10): typed messages between nodes over Redis Streams. Each node reads its own inbox
 * stream (`<prefix>bus:node:<id>`) and the broadcast stream (`<prefix>bus:all`) with one blocking XREAD, and
 * keeps its read position, so after a dropped connection it reads on from where it was: what was sent meanwhile
 * arrives late instead of never (pub/sub would lose it). Requests carry a deadline, so a replayed one whose
 * sender gave up is dropped rather than acted on twice.
 */
export class NodeBus {
  readonly nodeId: string;
  readonly stats: BusStats = {
    sent: 0,
    received: 0,
    invalid: 0,
    expired: 0,
    handlerErrors: 0,
    failed: 0,
    timeouts: 0,
    gaps: 0,
  };
  readonly #o: Required<Omit<NodeBusOptions, 'link' | 'log'>> & Pick<NodeBusOptions, 'link' | 'log'>;
  readonly #scope = new Scope('node-bus');
  readonly #handlers = new Map<BusKind, Set<AnyHandler>>();
  readonly #pending = new Map<
    string,
    { resolve: (r: Result) => void; reject: (e: Error) => void; cancel: () => void }
  >();
  readonly #inbox: string;
  readonly #all: string;
  /** Read positions: the last entry id handled per stream. */
  #cursor = { inbox: '0-0', all: '0-0' };
  #lastInvalidLog = 0;
  /** When each stream's TTL was last renewed by this node. */
  readonly #expirySet = new Map<string, number>();
  #loop: Promise<void> | undefined;
  readonly #gapListeners = new Set<(gap: BusGap) => void>();
  /** Set when a read failed (the connection dropped) or Redis restarted: check for a gap before reading on. */
  #resumed = false;
  #restarted = false;
  /** When the last successful XREAD was issued: everything written before then has been read. */
  #lastReadAt = Date.now();

  constructor(opts: NodeBusOptions) {
    this.#o = { requestTimeoutMs: 2000, maxLen: 10_000, streamTtlMs: 60_000, blockMs: 2000, ...opts };
    this.nodeId = opts.nodeId;
    this.#inbox = NodeBus.inboxKey(opts.keyPrefix, opts.nodeId);
    this.#all = `${opts.keyPrefix}bus:all`;
    this.#scope.on(opts.link, 'ready', ({ reset }: { reset: boolean }) => {
      // A new Redis server has new, empty streams: read them from the start (its ids could be below our
      // positions if its clock is behind the old server's, and XREAD would skip those entries).
      if (reset) {
        this.#cursor = { inbox: '0-0', all: '0-0' };
        this.#restarted = true;
      }
    });
  }

  static inboxKey(prefix: string, nodeId: string): string {
    return `${prefix}bus:node:${nodeId}`;
  }

  /**
   * Starts reading: the inbox from its start (messages to an earlier process with this node id are dropped
   * first), the broadcast stream from its current end. Needs the link up.
   */
  async start(): Promise<void> {
    const last = await this.#o.link.call(async (r) => {
      await r.del(this.#inbox);
      return r.xrevrange(this.#all, '+', '-', 'COUNT', 1);
    });
    this.#cursor = { inbox: '0-0', all: last[0]?.[0] ?? '0-0' };
    this.#lastReadAt = Date.now();
    this.#loop ??= this.#read();
  }

  /** Handles every message of one kind; returns the disposer. A throwing handler is counted and logged. */
  on<K extends BusKind>(kind: K, handler: Handler<K>): () => void {
    let set = this.#handlers.get(kind);
    if (!set) this.#handlers.set(kind, (set = new Set()));
    const stored = handler as unknown as AnyHandler;
    set.add(stored);
    return () => set.delete(stored);
  }

  /**
   * Calls `listener` each time the bus resumes reading after broadcasts were lost (before it reads what is
   * left); returns the disposer. A throwing listener is logged.
   */
  onGap(listener: (gap: BusGap) => void): () => void {
    this.#gapListeners.add(listener);
    return () => this.#gapListeners.delete(listener);
  }

  /** To one node's inbox. Rejects with ClusterUnavailableError when Redis cannot take it. */
  send(nodeId: string, body: BusBody): Promise<string> {
    return this.#add(NodeBus.inboxKey(this.#o.keyPrefix, nodeId), body);
  }

  /** To every other node. */
  broadcast(body: BusBody): Promise<string> {
    return this.#add(this.#all, body);
  }

  /**
   * Broadcasts `body` and keeps it in Redis as the last of its kind (`<prefix>bus:last:<kind>`, no TTL), numbered:
   * the message carries `seq`, one more than the one kept before and more than `after` (the highest this node has
   * seen: a Redis restored from an older snapshot must not hand out a number already used), and the numbering's
   * `epoch` (made by the first kept message on a Redis: a new, empty Redis starts a new one). Written in the same
   * step as the broadcast so both agree. A node that missed broadcasts reads it back with `lastKept`.
   */
  async broadcastKept(body: BusBodyOf<'config'>, after = 0): Promise<{ seq: number; epoch: string }> {
    const json = this.#encode(body, undefined, randomUUID());
    let kept: [number, string];
    try {
      kept = (await this.#o.link.call((r) =>
        r.eval(
          KEEP_SCRIPT,
          2,
          this.#lastKey(body.kind),
          this.#all,
          json,
          this.#o.maxLen,
          this.#o.streamTtlMs,
          randomUUID(),
          after,
        ),
      )) as [number, string];
    } catch (err) {
      this.stats.failed++;
      throw err;
    }
    this.stats.sent++;
    return { seq: Number(kept[0]), epoch: String(kept[1]) };
  }

  /** The last message of the kind kept by `broadcastKept` (any node's, this one's included); undefined if none. */
  async lastKept(kind: 'config'): Promise<BusMessageOf<'config'> | undefined> {
    const raw = await this.#o.link.call((r) => r.hget(this.#lastKey(kind), 'm'));
    if (raw === null) return undefined;
    const parsed = busMessageSchema.safeParse(safeJson(raw));
    if (parsed.success && parsed.data.kind === kind) return parsed.data;
    this.stats.invalid++;
    this.#o.log.warn({ kind }, 'bad kept bus message ignored');
    return undefined;
  }

  #lastKey(kind: BusKind): string {
    return `${this.#o.keyPrefix}bus:last:${kind}`;
  }

  /**
   * A request whose message `post` writes to the inbox of the node it is for (e.g. a script that finds the node
   * holding a device and writes there in the same round trip), naming that node; undefined when `post` found
   * no node and wrote nothing. Rejects with ClusterUnavailableError when Redis is down or no answer comes within
   * the timeout (the caller falls back, e.g. to the durable queue).
   */
  async requestVia(
    post: Post,
    body: BusBodyOf<'deliver'>,
    timeoutMs = this.#o.requestTimeoutMs,
  ): Promise<{ nodeId: string; result: Result } | undefined> {
    // A closed bus reads no answers: fail now rather than wait for one.
    if (this.#scope.closed) throw new ClusterUnavailableError('bus closed');
    const id = randomUUID();
    const json = this.#encode(body, Date.now() + timeoutMs, id);
    let nodeId: string | undefined;
    // Waiting before the write: the answer can be read before the write's own reply arrives.
    const answer = new Promise<Result>((resolve, reject) => {
      const cancel = this.#scope.timeout(timeoutMs, () => {
        this.#pending.delete(id);
        this.stats.timeouts++;
        reject(new ClusterUnavailableError(`no answer from node ${nodeId ?? '?'} within ${timeoutMs} ms`));
      });
      this.#pending.set(id, { resolve, reject, cancel });
    });
    // Awaited only once the write went out: a timeout or close() rejecting it before then (or when the write fails
    // or finds no node) must not be an unhandled rejection. The await below still sees it.
    answer.catch(() => undefined);
    const forget = (): void => {
      this.#pending.get(id)?.cancel();
      this.#pending.delete(id);
    };
    try {
      nodeId = await post(json, { inboxPrefix: NodeBus.inboxKey(this.#o.keyPrefix, ''), ...this.limits });
    } catch (err) {
      forget();
      this.stats.failed++;
      throw err;
    }
    if (nodeId === undefined) {
      forget();
      return undefined;
    }
    this.stats.sent++;
    return { nodeId, result: await answer };
  }

  /** What a `Post` needs to write a stream as the bus does. */
  get limits(): { maxLen: number; streamTtlMs: number } {
    return { maxLen: this.#o.maxLen, streamTtlMs: this.#o.streamTtlMs };
  }

  /** Answers a request. */
  async reply(to: BusMessage, result: { ok: boolean; reason?: 'offline' | 'not_sent' }): Promise<void> {
    await this.send(to.from, { kind: 'result', re: to.id, ...result });
  }

  /**
   * Idempotent: fails the requests still waiting and stops reading. The read in progress ends when its XREAD
   * returns (within blockMs) or the link closes; `stopped` settles then.
   */
  close(): void {
    if (this.#scope.closed) return;
    this.#scope.close();
    for (const p of this.#pending.values()) p.reject(new ClusterUnavailableError('bus closed'));
    this.#pending.clear();
  }

  /** Settles once the read loop has ended (after close). */
  get stopped(): Promise<void> {
    return this.#loop ?? Promise.resolve();
  }

  async #add(stream: string, body: BusBody): Promise<string> {
    const id = randomUUID();
    try {
      await this.#xadd(stream, this.#encode(body, undefined, id));
    } catch (err) {
      this.stats.failed++;
      throw err;
    }
    this.stats.sent++;
    return id;
  }

  #encode(body: BusBody, expiresAt: number | undefined, id: string): string {
    // Not validated here: the type holds it, and the receiver checks every message it reads.
    return JSON.stringify({
      ...body,
      v: 1,
      id,
      from: this.nodeId,
      ts: Date.now(),
      ...(expiresAt ? { expiresAt } : {}),
    });
  }

  #xadd(stream: string, json: string): Promise<unknown> {
    return this.#o.link.call((r) => {
      const added = r.xadd(stream, 'MAXLEN', '~', this.#o.maxLen, '*', 'm', json);
      // The TTL only has to outlive the stream's last writer: renewed at most a few times per TTL, not per message.
      const now = Date.now();
      if ((this.#expirySet.get(stream) ?? 0) < now - this.#o.streamTtlMs / 4) {
        this.#expirySet.set(stream, now);
        void r.pexpire(stream, this.#o.streamTtlMs).catch(() => {
          // Lost with the connection: renewed by a later message (the interval above resets on the next one).
          this.#expirySet.delete(stream);
        });
      }
      return added;
    });
  }

  async #read(): Promise<void> {
    const signal = this.#scope.signal;
    const { link } = this.#o;
    while (!signal.aborted) {
      try {
        await link.whenReady(signal);
        if (this.#resumed || this.#restarted) await this.#checkGap();
        const issuedAt = Date.now();
        const res = await link.read.xread(
          'COUNT',
          1000,
          'BLOCK',
          this.#o.blockMs,
          'STREAMS',
          this.#inbox,
          this.#all,
          this.#cursor.inbox,
          this.#cursor.all,
        );
        // Everything written before this read was issued has now been read.
        this.#lastReadAt = issuedAt;
        for (const [stream, entries] of res ?? []) {
          const which = stream === this.#inbox ? 'inbox' : 'all';
          for (const [entryId, fields] of entries) {
            this.#cursor[which] = entryId;
            this.#dispatch(fields, which === 'all');
          }
        }
      } catch (err) {
        if (signal.aborted) break;
        this.#resumed = true;
        // The read connection dropped: the link marks itself degraded and reconnects; read on once it is up.
        // A short pause keeps a connection that fails at once from spinning.
        this.#o.log.debug({ err: errorMessage(err) }, 'bus read interrupted');
        await pause(100, undefined, { signal }).catch(() => {
          // Aborted by close: the loop condition ends the read.
        });
      }
    }
  }

  /**
   * After an outage: were broadcasts lost? The inbox is not checked: what it carries is a request with a deadline
   * (its sender has given up and fallen back, e.g. to the durable queue) or the answer to one.
   */
  async #checkGap(): Promise<void> {
    const cursor = this.#cursor.all;
    let reason: BusGap['reason'] | undefined;
    if (this.#restarted) reason = 'restarted';
    else {
      const info = await this.#o.link.call((r) => streamInfo(r, this.#all));
      // A deleted stream lived at least 3/4 of its TTL after its last write (the TTL is renewed every quarter):
      // away for less than that, nothing written since the last read can have gone with it.
      const longAway = Date.now() - this.#lastReadAt >= (this.#o.streamTtlMs * 3) / 4;
      const past = info && info.first !== undefined && compareIds(info.first, cursor) > 0;
      // Emptied after an entry past our position was written: that one at least is lost.
      const emptied = info && info.first === undefined && compareIds(info.lastId, cursor) > 0;
      if (info && (compareIds(info.maxDeleted, cursor) > 0 || emptied || (past && info.removed)))
        // Entries after our position were deleted, or the stream was trimmed past it (an entry just after it
        // may have been the first kept: then this is a gap that lost nothing, resynced all the same).
        reason = 'trimmed';
      else if (longAway && (!info || past))
        // Gone, or begun anew after our position with nothing removed: the stream we read expired.
        reason = 'expired';
    }
    this.#resumed = this.#restarted = false;
    if (!reason) return;
    this.stats.gaps++;
    this.#o.log.warn({ reason, cursor, gaps: this.stats.gaps }, 'bus broadcasts lost while away; resyncing');
    for (const listener of this.#gapListeners) {
      try {
        listener({ reason, cursor });
      } catch (err) {
        this.#o.log.error({ err: errorMessage(err) }, 'bus gap listener failed');
      }
    }
  }

  #dispatch(fields: string[], broadcast: boolean): void {
    const raw = fields[0] === 'm' ? fields[1] : undefined;
    let msg: BusMessage;
    try {
      msg = busMessageSchema.parse(JSON.parse(raw ?? ''));
    } catch (err) {
      this.stats.invalid++;
      // One line per second at most: a flood of bad entries must not flood the log.
      if (Date.now() - this.#lastInvalidLog > 1000) {
        this.#lastInvalidLog = Date.now();
        this.#o.log.warn(
          { err: errorMessage(err).slice(0, 300), invalid: this.stats.invalid },
          'bad bus message dropped',
        );
      }
      return;
    }
    if (broadcast && msg.from === this.nodeId) return;
    this.stats.received++;
    if (msg.kind === 'result') {
      const p = this.#pending.get(msg.re);
      if (p) {
        this.#pending.delete(msg.re);
        p.cancel();
        p.resolve(msg);
      }
      return;
    }
    if (msg.expiresAt !== undefined && Date.now() > msg.expiresAt) {
      this.stats.expired++;
      return;
    }
    for (const handler of this.#handlers.get(msg.kind) ?? []) {
      try {
        const r = handler(msg);
        if (r) r.catch((err: unknown) => this.#handlerFailed(msg, err));
      } catch (err) {
        this.#handlerFailed(msg, err);
      }
    }
  }

  #handlerFailed(msg: BusMessage, err: unknown): void {
    this.stats.handlerErrors++;
    this.#o.log.error({ err: errorMessage(err), kind: msg.kind, from: msg.from }, 'bus handler failed');
  }
}

/**
 * KEYS: the kept message's hash, the broadcast stream. ARGV: the message's JSON (an object), MAXLEN, TTL (ms), an
 * epoch for a hash that has none yet (a uuid), the number the message must be above. Numbers the message (`seq` and
 * `epoch` added to its JSON), keeps it and broadcasts it, atomically; returns { seq, epoch }.
 */
const KEEP_SCRIPT = `
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[4])
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
if seq <= tonumber(ARGV[5]) then
  seq = tonumber(ARGV[5]) + 1
  redis.call('HSET', KEYS[1], 'seq', seq)
end
local json = string.sub(ARGV[1], 1, -2) .. ',"seq":' .. seq .. ',"epoch":"' .. epoch .. '"}'
redis.call('HSET', KEYS[1], 'm', json)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'm', json)
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return { seq, epoch }
`;

function safeJson(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    // Counted as invalid by the caller's schema check.
    return undefined;
  }
}

/**
 * `XINFO STREAM` of a stream: its first entry, the id of the last one added, the newest id XDEL removed
 * (trimming does not set it), and whether entries were ever removed from it (added > kept); undefined when the
 * stream is gone.
 */
async function streamInfo(
  r: Redis,
  key: string,
): Promise<{ first: string | undefined; lastId: string; maxDeleted: string; removed: boolean } | undefined> {
  let reply: unknown[];
  try {
    reply = (await r.call('XINFO', 'STREAM', key)) as unknown[];
  } catch (err) {
    if (err instanceof ReplyError && /no such key/i.test(errorMessage(err))) return undefined;
    throw err;
  }
  const field = (name: string): unknown => {
    const i = reply.indexOf(name);
    return i < 0 ? undefined : reply[i + 1];
  };
  const first = field('first-entry') as [string, unknown] | null | undefined;
  const maxDeleted = field('max-deleted-entry-id');
  const added = field('entries-added');
  const lastId = field('last-generated-id');
  return {
    first: first?.[0],
    lastId: typeof lastId === 'string' ? lastId : '0-0',
    maxDeleted: typeof maxDeleted === 'string' ? maxDeleted : '0-0',
    // Redis < 7 does not count what was added: assume removals (conservative: a gap rather than a silent loss).
    removed: typeof added === 'number' ? added > Number(field('length')) : true,
  };
}

/** Orders two stream entry ids (`<ms>-<seq>`). */
export function compareIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am - bm || as - bs;
}
