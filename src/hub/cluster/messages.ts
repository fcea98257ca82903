import { z } from 'zod';

/**
 * The messages nodes send each other over the bus (src/hub/cluster/bus.ts), one schema per kind. Every one is
 * checked on arrival: what another node (or anything else writing to the stream) sends is input like any other.
 */

const id = z.string().min(1).max(200);

/** Fields every bus message carries; set by the bus, not by the caller. */
const envelope = {
  v: z.literal(1),
  /** Unique per message; a reply names the request it answers by it. */
  id,
  /** The sending node. */
  from: id,
  ts: z.number(),
  /** A message read after this (ms since the epoch) is stale and dropped: its sender stopped waiting. */
  expiresAt: z.number().optional(),
};

/** A JSON message for a device, as a connection's `deliver` takes it. */
const deviceMessage = z.looseObject({ type: z.string().min(1) });

const bodies = [
  /** Hand `message` to the device if it is connected to the receiving node; answered with a `result`. */
  z.object({
    kind: z.literal('deliver'),
    deviceId: id,
    message: deviceMessage,
    /** Settle only once the message left the process (DeviceConnection.deliverWritten), for the peer queue. */
    written: z.boolean().default(false),
  }),
  /** The answer to a request. `reason` says why `ok` is false. */
  z.object({
    kind: z.literal('result'),
    re: id,
    ok: z.boolean(),
    reason: z.enum(['offline', 'not_sent']).optional(),
  }),
  /** The device's connection `connectionId` on the receiving node was taken over by a newer one (D6). */
  z.object({
    kind: z.literal('replaced'),
    deviceId: id,
    connectionId: id,
    byNodeId: id,
    byConnectionId: id,
  }),
  /** The task lists of these groups changed: each node sends fresh snapshots to its own devices of them (C3). */
  z.object({ kind: z.literal('tasks'), groups: z.array(z.string()).max(10_000) }),
  /** A config reload was accepted on the sending node: every node reloads from the same source (D12). */
  z.object({
    kind: z.literal('config'),
    source: z.string(),
    patch: z.record(z.string(), z.unknown()).optional(),
    /** Its place in the cluster's accepted reloads (set by the bus when it keeps it, NodeBus.broadcastKept). */
    seq: z.number().int().positive().optional(),
    /** The kept numbering it belongs to: a new one when a new, empty Redis starts numbering again. */
    epoch: z.string().max(64).optional(),
  }),
  /** A device came online on the sending node, or went offline (its route released or its node's lease expired). */
  z.object({ kind: z.literal('presence'), deviceId: id, online: z.boolean() }),
  /**
   * Messages for the device were queued (durably) while its route was not yet visible: the receiving node, which
   * holds it, sends it its queue again (the flush it ran on register may have read before they were committed).
   */
  z.object({ kind: z.literal('flush'), deviceId: id }),
  /**
   * A relay to many devices (best effort): the receiving node hands `message` to its own devices of the audience
   * (fanout.ts), picked as the sending node would.
   */
  z.object({
    kind: z.literal('fanout'),
    audience: z.object({
      all: z.boolean().optional(),
      group: z.string().optional(),
      // From the sender's validated config (meeting.broadcast.allowed_targets); bounded as any input is.
      named: z.array(id).max(10_000).optional(),
      except: id.optional(),
    }),
    message: deviceMessage,
  }),
] as const;

export const busBodySchema = z.discriminatedUnion('kind', bodies);
export const busMessageSchema = z.discriminatedUnion('kind', [
  bodies[0].extend(envelope),
  bodies[1].extend(envelope),
  bodies[2].extend(envelope),
  bodies[3].extend(envelope),
  bodies[4].extend(envelope),
  bodies[5].extend(envelope),
  bodies[6].extend(envelope),
  bodies[7].extend(envelope),
]);

export type BusBody = z.input<typeof busBodySchema>;
export type BusMessage = z.output<typeof busMessageSchema>;
export type BusKind = BusMessage['kind'];
export type BusMessageOf<K extends BusKind> = Extract<BusMessage, { kind: K }>;
export type BusBodyOf<K extends BusKind> = Extract<BusBody, { kind: K }>;
