import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { LinusConfig } from '../../config/schema.js';
import type { DeviceConnection } from '../../hub/registry.js';
import { ClusterUnavailableError } from '../../hub/cluster/link.js';
import { onlineDevices } from '../../hub/cluster/online.js';
import { deliverTo } from '../../hub/cluster/fanout.js';
import { errorMessage } from '../../errors.js';
import { Scope } from '../../session/scope.js';
import type { Session } from '../../session/session.js';
import type { Feature, FeatureDeps } from '../feature.js';
import { PeerAcl } from './acl.js';
import { peerConfig, type PeerConfig } from './config.js';
import { admit, rateLimitReply, requestIdOf, type Admission, type FailedTarget } from './admit.js';
import {
  envelopeFor,
  PeerCode,
  peerError,
  type NormalizedTask,
  type PeerEnvelope,
  type PeerMessage,
} from './message.js';
import type { FlushView, PeerQueue } from './queue.js';
import { SlidingWindowLimiter } from './rate-limit.js';
import { SqlitePeerQueue } from './sqlite-queue.js';
import { structureText } from './structure.js';
import { anySignal } from '../../signals.js';

export type { NormalizedTask, PeerEnvelope, PeerMessage } from './message.js';
export type { PeerQueue } from './queue.js';

/**
 * Called for every target of a `category:"task"` message (delivered or queued) when `peer.peer_task_to_workflow`
 * is on: the workflow feature upserts the task into the target's group with the target as owner.
 * `task` is the corrected `normalized` form, or `{title: <text>}` when there is none. Errors are logged.
 */
export type PeerTaskHook = (targetDeviceId: string, task: NormalizedTask, from: string) => void | Promise<void>;

export interface PeerFeatureOptions {
  onTask?: PeerTaskHook;
  /** Offline queue; default: the SQLite one in the server's store. */
  queue?: PeerQueue;
}

/** What the peer feature uses of the server (a FeatureDeps is one). */
export type PeerDeps = Pick<FeatureDeps, 'ctx' | 'db' | 'providers' | 'directory'>;

type RouteResult = 'delivered' | 'queued' | 'full' | 'offline' | 'error';

/** Hands a connection a message; true once it was written (or, for a connection that cannot tell, accepted). */
const written = (conn: DeviceConnection, message: PeerEnvelope): Promise<boolean> =>
  conn.deliverWritten ? conn.deliverWritten(message) : Promise.resolve(conn.deliver(message));

/** An admitted message on its way: what `#send` structures, routes and reports in the sender's receipt. */
type Outgoing = Extract<Admission, { ok: true }> & {
  /** The sender's connection, for its receipt. */
  session: Session;
  /** The message as accepted, before the LLM adds its structured form. */
  message: PeerMessage;
  config: PeerConfig;
  /** performance.now() when it arrived, for the receipt's `elapsedMs`. */
  started: number;
};

/** Messages read from the queue per page while flushing (the default per-device cap). */
const FLUSH_PAGE = 100;
/** Bytes of a flush handed to a connection before waiting for them to be written (well under its overflow limit). */
const FLUSH_WINDOW_BYTES = 32 * 1024;
const PURGE_EVERY_MS = 3_600_000;

const peerSchema = z.looseObject({ type: z.literal('peer') });

/**
 * Device-to-device messages that are never lost (C4, D19). Every delivery to a device goes through one path per
 * target (`#route`): online → its connection through the registry; not accepted or offline → the durable queue.
 * Operations for one target run in order in a per-target lane while a flush is running, so queued messages
 * always reach a device before newer ones.
 */
export class PeerFeature implements Feature {
  readonly name = 'peer';
  readonly queue: PeerQueue;
  readonly #deps: PeerDeps;
  readonly #onTask: PeerTaskHook | undefined;
  readonly #scope: Scope;
  readonly #unicast = new SlidingWindowLimiter();
  readonly #broadcast = new SlidingWindowLimiter();
  /** Per-target lanes: present while a flush (or work queued behind it) runs for that device. */
  readonly #lanes = new Map<string, Promise<void>>();
  /** Enqueues not yet committed, per target: a flush waits for them before reading. */
  readonly #writes = new Map<string, Set<Promise<unknown>>>();
  /** Cluster mode: devices with messages queued while Redis was away, nudged again when it is back. */
  readonly #stranded = new Set<string>();
  /** Per-sender order while a message waits for the LLM. */
  readonly #senderTails = new Map<string, Promise<void>>();
  /** Aborted on shutdown: structuring stops at once and falls back to pass-through. */
  readonly #llm = new AbortController();

  constructor(deps: PeerDeps, options: PeerFeatureOptions = {}) {
    this.#deps = deps;
    this.#onTask = options.onTask;
    const log = deps.ctx.log.child({ feature: 'peer' });
    this.#scope = new Scope('peer', (err, where) => log.error({ err, where }, 'peer task failed'));
    this.queue = options.queue ?? new SqlitePeerQueue(deps.db);
    deps.ctx.messages.register('peer', { schema: peerSchema, handle: (session, msg) => this.#onMessage(session, msg) });
    this.#scope.on(deps.ctx.events, 'registered', (session: Session) => this.#onRegistered(session.deviceId));
    const cluster = deps.ctx.cluster;
    if (cluster) {
      this.#scope.add(
        cluster.bus.on('flush', (m) => {
          if (deps.ctx.registry.get(m.deviceId)) this.#onRegistered(m.deviceId);
        }),
      );
      this.#scope.add(
        cluster.onRecovered(() => {
          const ids = [...this.#stranded];
          this.#stranded.clear();
          for (const id of ids) this.#nudge(id);
        }),
      );
    }
    this.#scope.interval(60_000, () => {
      this.#unicast.sweep(1000);
      this.#broadcast.sweep(60_000);
    });
    this.#scope.interval(PURGE_EVERY_MS, () => void this.#scope.run('purge', () => this.#purge()));
    void this.#scope.run('purge', () => this.#purge());
  }

  get #log() {
    return this.#deps.ctx.log;
  }

  #config(config: LinusConfig = this.#deps.ctx.config.current): PeerConfig {
    return peerConfig(config, this.#log);
  }

  async close(): Promise<void> {
    // Aborts LLM calls (their messages fall back to pass-through and are still routed), waits for every message
    // still waiting behind another of its sender and for every routing and flush task, then closes the store:
    // nothing accepted is lost on shutdown.
    this.#llm.abort(new Error('server shutdown'));
    while (this.#senderTails.size) await Promise.allSettled([...this.#senderTails.values()]);
    await this.#scope.drain();
    this.#scope.close();
    await this.#scope.drain();
    await this.queue.close();
  }

  // ------------------------------------------------------------------ inbound

  #onMessage(session: Session, msg: Record<string, unknown>): void {
    const started = performance.now();
    const from = session.deviceId;
    const config = this.#config();
    const admission = admit(msg, {
      from,
      config,
      // ACL before anything costly (the LLM).
      acl: new PeerAcl(config, this.#deps.directory),
      online: () => this.#deps.ctx.registry.deviceIds(),
    });
    if (!admission.ok) {
      if (admission.malformed) this.#deps.ctx.metrics.badFrames.labels('schema').inc();
      session.send.json(admission.reply);
      return;
    }
    const { request } = admission;
    const limit = request.broadcast
      ? this.#broadcast.take(from, config.broadcast_per_minute, 60_000)
      : this.#unicast.take(from, config.rate_limit_per_second, 1000);
    if (!limit.ok) {
      session.send.json(rateLimitReply(config, request, limit.retryAfterMs));
      return;
    }
    const message: PeerMessage = {
      id: randomUUID(),
      from,
      category: request.category,
      payload: request.payload,
      ts: Date.now(),
    };
    const outgoing: Outgoing = { ...admission, session, message, config, started };
    const send = (signal: AbortSignal) => this.#send(outgoing, signal);
    // Messages of one sender keep their order even when one waits for the LLM.
    const tail = this.#senderTails.get(from);
    if (!admission.needsLlm && !tail) {
      void this.#scope.run('send', send);
      return;
    }
    const run = (tail ?? Promise.resolve()).then(() => this.#scope.run('send', send));
    this.#senderTails.set(from, run);
    void run.then(() => {
      if (this.#senderTails.get(from) === run) this.#senderTails.delete(from);
    });
  }

  async #send(
    { session, request, message: accepted, recipients, failed, needsLlm, config, started }: Outgoing,
    signal: AbortSignal,
  ): Promise<void> {
    let normalized = request.normalized;
    let structuring: 'llm' | 'passthrough' | 'device' | 'none' = normalized ? 'device' : 'none';
    if (needsLlm) {
      // `done` ends the linked signal afterwards: its listener on the feature's long-lived signal must not stay.
      const done = new AbortController();
      const r = await structureText(String(request.payload.text), {
        providers: this.#deps.providers,
        signal: anySignal([signal, this.#llm.signal, done.signal]),
        timeoutMs: config.llm_timeout_ms,
        maxInputChars: config.llm_max_input_chars,
        log: this.#log,
      }).finally(() => done.abort());
      if (r.ok) {
        normalized = r.normalized;
        structuring = 'llm';
      } else {
        structuring = 'passthrough';
        this.#log.warn(
          { id: accepted.id, from: accepted.from, reason: r.reason },
          'peer: LLM structuring failed; message passed through as sent',
        );
      }
    }
    const message: PeerMessage = { ...accepted, ...(normalized ? { normalized } : {}) };
    const to =
      request.broadcast && !failed.some((f) => f.to === 'broadcast')
        ? await this.#everywhere(recipients, accepted.from)
        : recipients;
    const { delivered, enqueued, offline } = await this.#routeAll(message, to, failed, config);
    const rid = requestIdOf(request);
    session.send.json({
      type: 'peer',
      status: 'done',
      id: accepted.id,
      ...rid,
      category: accepted.category,
      delivered,
      failed,
      enqueued,
      summary: { delivered: delivered.length, enqueued: enqueued.length, failed: failed.length },
      ...(config.llm_structuring ? { structuring } : {}),
      elapsedMs: Math.round(performance.now() - started),
      targetsCount: delivered.length + enqueued.length + failed.length,
    });
    // The fork's follow-up, kept only for what it means: targets that are offline and will NOT get the message.
    if (offline.length) {
      session.send.json(
        peerError(PeerCode.TargetOffline, 'some targets are offline and the message could not be queued for them', {
          id: accepted.id,
          ...rid,
          failed: offline,
        }),
      );
    }
    this.#log.debug(
      {
        id: accepted.id,
        from: accepted.from,
        delivered: delivered.length,
        enqueued: enqueued.length,
        failed: failed.length,
        structuring,
      },
      'peer message routed',
    );
    if (accepted.category === 'task' && config.peer_task_to_workflow && this.#onTask) {
      const text = typeof accepted.payload.text === 'string' ? accepted.payload.text.trim() : '';
      const task: NormalizedTask | undefined = normalized ?? (text ? { title: text.slice(0, 80) } : undefined);
      if (task) {
        for (const to of [...delivered, ...enqueued]) {
          try {
            await this.#onTask(to, task, accepted.from);
          } catch (err) {
            this.#log.error({ err, to, id: accepted.id }, 'peer: task hook (peer_task_to_workflow) failed');
          }
        }
      }
    }
  }

  // ------------------------------------------------------------------ routing

  /** Routes one message to each recipient; targets it could neither deliver nor queue are added to `failed`. */
  async #routeAll(
    message: PeerMessage,
    recipients: readonly string[],
    failed: FailedTarget[],
    cfg: PeerConfig,
  ): Promise<{ delivered: string[]; enqueued: string[]; offline: string[] }> {
    const results = await Promise.all(recipients.map((to) => this.#route(to, envelopeFor(message, to), cfg)));
    const delivered: string[] = [];
    const enqueued: string[] = [];
    const offline: string[] = [];
    results.forEach((r, i) => {
      const to = recipients[i]!;
      if (r === 'delivered') delivered.push(to);
      else if (r === 'queued') enqueued.push(to);
      else {
        offline.push(to);
        failed.push(
          r === 'full'
            ? {
                to,
                code: PeerCode.QueueFull,
                message: `target is offline and its queue is full (peer.offline_max_per_device = ${cfg.offline_max_per_device})`,
              }
            : r === 'offline'
              ? {
                  to,
                  code: PeerCode.TargetOffline,
                  message:
                    'target is offline and the offline queue is off (peer.offline_max_per_device / offline_ttl_ms)',
                }
              : { to, code: PeerCode.InternalError, message: 'could not store the message for the offline target' },
        );
      }
    });
    return { delivered, enqueued, offline };
  }

  /**
   * A message from the server side (the console, an admin API call) to devices: no ACL, rate limit or LLM (the
   * caller has admin rights and writes the text itself); routed and queued like every device's message.
   */
  async sendFrom(
    from: string,
    targets: readonly string[],
    category: string,
    text: string,
  ): Promise<{ id: string; delivered: string[]; enqueued: string[]; failed: FailedTarget[] }> {
    const cfg = this.#config();
    const message: PeerMessage = { id: randomUUID(), from, category, payload: { text }, ts: Date.now() };
    const failed: FailedTarget[] = [];
    // In the feature's scope, so shutdown waits for the queue writes before closing the store.
    let routed: { delivered: string[]; enqueued: string[] } = { delivered: [], enqueued: [] };
    await this.#scope.run('send', async () => {
      routed = await this.#routeAll(message, [...new Set(targets)], failed, cfg);
    });
    const { delivered, enqueued } = routed;
    this.#log.info(
      { id: message.id, from, delivered: delivered.length, enqueued: enqueued.length, failed: failed.length },
      'peer message from the server routed',
    );
    return { id: message.id, delivered, enqueued, failed };
  }

  /**
   * A permitted broadcast's recipients: admission listed this node's online devices; in cluster mode the devices
   * online on the other nodes are added (D17). While Redis is away, this node's devices are all it can name.
   */
  async #everywhere(recipients: string[], from: string): Promise<string[]> {
    if (!this.#deps.ctx.cluster) return recipients;
    const online = await onlineDevices(this.#deps.ctx, { log: this.#log });
    if (!online.cluster) {
      this.#log.warn({ from }, 'peer: broadcast reaches this node’s devices only (Redis away)');
      return recipients;
    }
    const all = new Set(recipients);
    for (const id of online.devices.keys()) if (id !== from) all.add(id);
    return [...all];
  }

  /** The one way a message reaches a device: its connection, or the queue. */
  #route(to: string, envelope: PeerEnvelope, cfg: PeerConfig): Promise<RouteResult> {
    if (this.#lanes.has(to)) return this.#lane(to, () => this.#deliverOrQueue(to, envelope, cfg));
    return this.#deliverOrQueue(to, envelope, cfg);
  }

  async #deliverOrQueue(to: string, envelope: PeerEnvelope, cfg: PeerConfig): Promise<RouteResult> {
    const conn = this.#deps.ctx.registry.get(to);
    // `delivered` only once the message has left this process; one the connection could not write is queued.
    if (conn) return (await written(conn, envelope)) ? 'delivered' : this.#enqueue(to, envelope, cfg);
    // Cluster mode (D17): the device may be online on another node, which settles once its socket took it.
    // Offline, not taken, or Redis away / the node silent: the durable (PostgreSQL) queue keeps it.
    const cluster = this.#deps.ctx.cluster;
    if (!cluster) return this.#enqueue(to, envelope, cfg);
    try {
      if ((await cluster.registry.deliver(to, envelope, { written: true })).ok) return 'delivered';
    } catch (err) {
      if (!(err instanceof ClusterUnavailableError)) throw err;
      // Not lost: queued below and delivered by whichever node the device registers on next.
    }
    const r = await this.#enqueue(to, envelope, cfg);
    if (r === 'queued') this.#nudge(to);
    return r;
  }

  /**
   * Cluster mode: the device may have registered somewhere between the failed delivery and the commit, and that
   * node's flush may have read the queue before it. Its node (if any) is asked to flush again; an empty queue
   * costs it one read.
   */
  #nudge(deviceId: string): void {
    const cluster = this.#deps.ctx.cluster;
    if (!cluster) return;
    void this.#scope.run('nudge', async () => {
      try {
        const route = await cluster.registry.route(deviceId);
        if (!route) return;
        if (route.nodeId === cluster.registry.nodeId) this.#onRegistered(deviceId);
        else await cluster.bus.send(route.nodeId, { kind: 'flush', deviceId });
      } catch (err) {
        if (!(err instanceof ClusterUnavailableError)) throw err;
        // Redis is away: asked again when it is back (the device may be online on another node all along).
        this.#stranded.add(deviceId);
      }
    });
  }

  /** A server notice to a device on this node or, in cluster mode, on another; best effort (receipts). */
  #notify(deviceId: string, message: { type: string } & Record<string, unknown>): void {
    // A receipt is a notice, not a message: a sender that cannot be reached now is not owed it later.
    deliverTo(this.#deps.ctx, this.#scope, deviceId, message, (err) =>
      this.#log.debug({ err: errorMessage(err), device: deviceId }, 'peer: notice to another node not sent'),
    );
  }

  async #enqueue(to: string, envelope: PeerEnvelope, cfg: PeerConfig): Promise<RouteResult> {
    if (cfg.offline_max_per_device === 0 || cfg.offline_ttl_ms === 0) return 'offline';
    const now = Date.now();
    const write = this.queue.enqueue([
      {
        deviceId: to,
        envelope,
        queuedAt: now,
        expiresAt: now + cfg.offline_ttl_ms,
        maxPerDevice: cfg.offline_max_per_device,
      },
    ]);
    let set = this.#writes.get(to);
    if (!set) this.#writes.set(to, (set = new Set()));
    set.add(write);
    try {
      const [outcome] = await write;
      return outcome === 'queued' ? 'queued' : 'full';
    } catch (err) {
      this.#log.error({ err, to, id: envelope.id }, 'peer: offline queue write failed');
      return 'error';
    } finally {
      set.delete(write);
      if (set.size === 0 && this.#writes.get(to) === set) this.#writes.delete(to);
    }
  }

  /** Runs `task` after everything already in the target's lane. */
  #lane<T>(deviceId: string, task: () => Promise<T>): Promise<T> {
    const prev = this.#lanes.get(deviceId) ?? Promise.resolve();
    const run = prev.then(task);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.#lanes.set(deviceId, tail);
    void tail.then(() => {
      if (this.#lanes.get(deviceId) === tail) this.#lanes.delete(deviceId);
    });
    return run;
  }

  // ------------------------------------------------------------------ offline queue flush

  #onRegistered(deviceId: string): void {
    void this.#scope.run(`flush:${deviceId}`, () => this.#lane(deviceId, () => this.#flush(deviceId)));
  }

  /**
   * Sends a device its queued messages in order, removing each only once the send path accepted it; stops at the
   * first refusal (the rest stays queued for the next registration). Then one `redelivered` per online sender.
   * In cluster mode the queue is read as the only flush of the device across nodes: during a handover the old and
   * the new node may both flush it, and the second then finds only what the first left.
   */
  async #flush(deviceId: string): Promise<void> {
    for (let set = this.#writes.get(deviceId); set?.size; set = this.#writes.get(deviceId))
      await Promise.allSettled([...set]);
    const now = Date.now();
    const dropped = await this.queue.dropExpired(now, deviceId);
    const { sent, stopped, perSender } = await this.queue.exclusive(deviceId, now, (q) =>
      this.#drain(deviceId, q, now),
    );
    if (sent || dropped)
      this.#log.info({ device: deviceId, sent, dropped, kept: stopped }, 'peer: offline queue flushed');
    for (const [sender, count] of perSender) {
      this.#notify(sender, { type: 'peer', event: 'redelivered', to: deviceId, count });
    }
  }

  /** The flush's pages: read, hand over, remove what was written, until empty or refused. */
  async #drain(
    deviceId: string,
    q: FlushView,
    now: number,
  ): Promise<{ sent: number; stopped: boolean; perSender: Map<string, number> }> {
    const perSender = new Map<string, number>();
    let sent = 0;
    let stopped = false;
    const cluster = this.#deps.ctx.cluster;
    while (!stopped) {
      const conn = this.#deps.ctx.registry.get(deviceId);
      if (!conn) break;
      const items = await q.peek(deviceId, FLUSH_PAGE, now);
      if (!items.length) break;
      // Cluster mode: a message whose cross-node delivery was answered too late was queued by its sender as well,
      // though the device got it; it is removed without being sent again.
      const got = cluster
        ? await cluster.registry.deliveredLate(
            deviceId,
            items.map((i) => i.id),
          )
        : undefined;
      // Handed over in order, removed only once written to the socket: a message still in a send buffer when the
      // connection or the process dies stays queued and comes again (at least once; never lost). At most
      // FLUSH_WINDOW_BYTES wait for their write at a time, so a slow reader's send queue never overflows.
      const writes: boolean[] = [];
      let batch: Promise<boolean>[] = [];
      let batchBytes = 0;
      for (const item of items) {
        if (got?.has(item.id)) {
          batch.push(Promise.resolve(true));
          continue;
        }
        batch.push(written(conn, item.envelope));
        batchBytes += JSON.stringify(item.envelope).length;
        if (batchBytes < FLUSH_WINDOW_BYTES) continue;
        writes.push(...(await Promise.all(batch)));
        batch = [];
        batchBytes = 0;
        if (writes.includes(false)) break;
      }
      writes.push(...(await Promise.all(batch)));
      const done: string[] = [];
      items.slice(0, writes.length).forEach((item, i) => {
        if (!writes[i]) {
          stopped = true;
          return;
        }
        done.push(item.ref);
        const sender = item.from.trim().toLowerCase();
        perSender.set(sender, (perSender.get(sender) ?? 0) + 1);
      });
      await q.remove(done);
      sent += done.length;
    }
    return { sent, stopped, perSender };
  }

  async #purge(): Promise<void> {
    const n = await this.queue.dropExpired(Date.now());
    if (n) this.#log.info({ dropped: n }, 'peer: expired offline messages removed');
  }
}
