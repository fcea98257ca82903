import type { PeerEnvelope } from './message.js';

/**
 * The offline queue of peer messages (D16, D19): messages for a device that could not take them, kept durably
 * until it registers again. The interface is async and knows nothing of SQLite, so that a PostgreSQL or Redis
 * implementation (cluster mode, D17) can take its place.
 *
 * Contract:
 *  - `enqueue` resolves only once the messages are durable; outcomes come back in item order.
 *    A device holding `maxPerDevice` unexpired messages gets `full` (the message is refused, never an older one dropped).
 *  - `peek` returns a device's unexpired messages oldest first (enqueue order); it removes nothing.
 *  - `remove` deletes messages by `ref` once their send succeeded (at-least-once).
 *  - `exclusive` runs a flush of one device as the only one among every process sharing the store.
 */
export interface QueuedPeerMessage {
  /** Opaque, store-specific handle (a row id, a stream id). */
  ref: string;
  deviceId: string;
  id: string;
  from: string;
  envelope: PeerEnvelope;
  queuedAt: number;
  expiresAt: number;
}

export interface EnqueueItem {
  deviceId: string;
  envelope: PeerEnvelope;
  queuedAt: number;
  expiresAt: number;
  maxPerDevice: number;
}

export type EnqueueOutcome = 'queued' | 'full';

/** What a flush reads and removes with while it holds a device's queue (`PeerQueue.exclusive`). */
export type FlushView = Pick<PeerQueue, 'peek' | 'remove'>;

export interface PeerQueue {
  enqueue(items: readonly EnqueueItem[]): Promise<EnqueueOutcome[]>;
  peek(deviceId: string, limit: number, now: number): Promise<QueuedPeerMessage[]>;
  remove(refs: readonly string[]): Promise<void>;
  /** Deletes expired messages (of one device, or all); resolves with how many went. */
  dropExpired(now: number, deviceId?: string): Promise<number>;
  /** Unexpired messages waiting for a device. */
  count(deviceId: string, now: number): Promise<number>;
  /** Devices with unexpired messages waiting, and how many each (most first), at most `limit` devices. */
  waiting(now: number, limit: number): Promise<{ deviceId: string; count: number }[]>;
  /**
   * Runs `fn` as the only flush of the device's queue among every process sharing the store: another waits until
   * it has ended and its removals are committed, so two nodes flushing one device during a handover hand each
   * message out once. `fn` reads and removes through the view it is given, nothing else; `now` as for `peek`.
   */
  exclusive<T>(deviceId: string, now: number, fn: (q: FlushView) => Promise<T>): Promise<T>;
  /** Commits anything still pending; later calls reject. */
  close(): Promise<void>;
}

/** A stored row of the queue, as both engines' `peer_queue` tables hold it. */
export interface PeerQueueRow {
  seq: number;
  device_id: string;
  msg_id: string;
  sender: string;
  envelope: string;
  queued_at: number;
  expires_at: number;
}

export function toQueuedMessage(r: PeerQueueRow): QueuedPeerMessage {
  return {
    ref: String(r.seq),
    deviceId: r.device_id,
    id: r.msg_id,
    from: r.sender,
    envelope: JSON.parse(r.envelope) as PeerEnvelope,
    queuedAt: r.queued_at,
    expiresAt: r.expires_at,
  };
}

/** A write waiting for the next group commit: an enqueue (outcomes per item) or a removal. */
export type PendingWrite =
  | {
      kind: 'enqueue';
      items: readonly EnqueueItem[];
      resolve: (outcomes: EnqueueOutcome[]) => void;
      reject: (err: unknown) => void;
    }
  | { kind: 'remove'; refs: readonly string[]; resolve: () => void; reject: (err: unknown) => void };
