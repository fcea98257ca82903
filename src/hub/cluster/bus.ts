import { randomUUID } from 'node:crypto';
import { setTimeout as pause } from 'node:timers/promises';
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../observability/log.js';
import { Scope } from '../../session/scope.js';
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
  readonly stats: BusStats = { sent: 0, received: 0, invalid: 0, expired: 0, handlerErrors: 0, failed: 0, timeouts: 0 };
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

  constructor(opts: NodeBusOptions) {
    this.#o = { requestTimeoutMs: 2000, maxLen: 10_000, streamTtlMs: 60_000, blockMs: 2000, ...opts };
    this.nodeId = opts.nodeId;
    this.#inbox = NodeBus.inboxKey(opts.keyPrefix, opts.nodeId);
    this.#all = `${opts.keyPrefix}bus:all`;
    this.#scope.on(opts.link, 'ready', ({ reset }: { reset: boolean }) => {
      // A new Redis server has new, empty streams: read them from the start (its ids could be below our
      // positions if its clock is behind the old server's, and XREAD would skip those entries).
      if (reset) this.#cursor = { inbox: '0-0', all: '0-0' };
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

  /** To one node's inbox. Rejects with ClusterUnavailableError when Redis cannot take it. */
  send(nodeId: string, body: BusBody): Promise<string> {
    return this.#add(NodeBus.inboxKey(this.#o.keyPrefix, nodeId), body);
  }

  /** To every other node. */
  broadcast(body: BusBody): Promise<string> {
    return this.#add(this.#all, body);
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
        for (const [stream, entries] of res ?? []) {
          const which = stream === this.#inbox ? 'inbox' : 'all';
          for (const [entryId, fields] of entries) {
            this.#cursor[which] = entryId;
            this.#dispatch(fields, which === 'all');
          }
        }
      } catch (err) {
        if (signal.aborted) break;
        // The read connection dropped: the link marks itself degraded and reconnects; read on once it is up.
        // A short pause keeps a connection that fails at once from spinning.
        this.#o.log.debug({ err: errorMessage(err) }, 'bus read interrupted');
        await pause(100, undefined, { signal }).catch(() => {
          // Aborted by close: the loop condition ends the read.
        });
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
