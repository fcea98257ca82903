import { randomBytes } from 'node:crypto';
import type { DeviceDirectory } from '../../hub/directory.js';
import type { DeviceConnection, DeviceRegistry } from '../../hub/registry.js';
import type { Logger } from '../../observability/log.js';
import { normalizeId } from '../../protocol/ids.js';
import { AUTOMATIC_SOURCES, FRESH_SOURCES, SnapshotGate, type SnapshotSource } from './gate.js';
import type { TaskStore } from './store.js';
import {
  taskToWire,
  type AssignResult,
  type CompleteResult,
  type DeleteResult,
  type Page,
  type Task,
  type TaskPage,
  type UpsertResult,
} from './types.js';
import { checkIds, checkId, checkOwner, checkTaskInputs, normalizeGroupKey } from './validate.js';

/** A snapshot carries at most this many tasks (open ones first, by priority); `total` says when it was cut. */
export const MAX_SNAPSHOT_TASKS = 200;

/** Bad input to a workflow operation; its message is the fork's wording, sent back as `SCHEMA_INVALID`. */
export class WorkflowInputError extends Error {
  readonly code = 'SCHEMA_INVALID';
}

export class WorkflowNotFoundError extends Error {
  readonly code = 'NOT_FOUND';
}

export interface WorkflowSnapshot extends Record<string, unknown> {
  type: 'workflow';
  event: 'update';
  groupKey: string;
  tasks: Record<string, unknown>[];
  total?: number;
}

/** What the service keeps per live connection. */
interface ConnectionState {
  gate: SnapshotGate;
  /** Its group when last looked at (to notice a devices.yaml regroup). */
  group: string;
}

export interface WorkflowServiceDeps {
  store: TaskStore;
  registry: DeviceRegistry;
  directory: DeviceDirectory;
  log: Logger;
  now?: () => number;
  /** Cluster mode: tells the other nodes which groups changed, after this node's own fan-out (D17). */
  announce?: (groups: string[]) => void;
}

export interface ChangeOutcome {
  /** Groups whose devices were sent a new snapshot. */
  changedGroups: string[];
  /** Connections that received one. */
  reached: Set<DeviceConnection>;
}

/**
 * The workflow service: the one write path for tasks (WebSocket events, voice commands, HTTP import, the peer
 * feature) and the one way snapshots reach devices. After a change, each online device of each changed group
 * gets its own group's snapshot (unicast; never the full list, never another group's).
 */
export class WorkflowService {
  readonly #store: TaskStore;
  readonly #registry: DeviceRegistry;
  readonly #directory: DeviceDirectory;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #announce: ((groups: string[]) => void) | undefined;
  readonly #conns = new WeakMap<DeviceConnection, ConnectionState>();
  readonly #changeListeners = new Set<(groupKey: string) => void>();

  constructor(deps: WorkflowServiceDeps) {
    this.#store = deps.store;
    this.#registry = deps.registry;
    this.#directory = deps.directory;
    this.#log = deps.log;
    this.#now = deps.now ?? Date.now;
    this.#announce = deps.announce;
  }

  get store(): TaskStore {
    return this.#store;
  }

  // ------------------------------------------------------------------ identity

  /** Workflow group of a device (D20): its devices.yaml group, else the first 8 chars of its id. */
  groupOf(deviceId: string): string {
    return this.#directory.groupOf(deviceId);
  }

  /** Owner form of a device: `alias|device-id` when it has an alias, else its id. */
  ownerName(deviceId: string): string {
    return this.#directory.displayName(deviceId);
  }

  /** An owner given by a client: a bare id of a device with an alias becomes `alias|id`; anything else is kept. */
  ownerFromInput(raw: string): string {
    if (raw.includes('|')) return raw;
    const id = normalizeId(raw);
    return id && this.#directory.aliasOf(id) ? this.#directory.displayName(id) : raw;
  }

  /** True when the owner string names this device (`alias|id`, or the bare id). */
  isOwner(owner: string | undefined, deviceId: string): boolean {
    if (!owner) return false;
    const o = owner.toLowerCase();
    return o === deviceId || o.endsWith(`|${deviceId}`);
  }

  /** Called with each group whose tasks changed (every write ends in broadcastGroups). Returns a disposer. */
  onChange(listener: (groupKey: string) => void): () => void {
    this.#changeListeners.add(listener);
    return () => this.#changeListeners.delete(listener);
  }

  // ------------------------------------------------------------------ connections and snapshots

  /** Starts tracking a live connection (its snapshot gate). Idempotent. */
  attach(conn: DeviceConnection): void {
    if (!this.#conns.has(conn))
      this.#conns.set(conn, { gate: new SnapshotGate(undefined, this.#now), group: this.groupOf(conn.deviceId) });
  }

  /** The snapshot message of a group. */
  async snapshot(groupKey: string): Promise<WorkflowSnapshot> {
    const page = await this.#store.list(groupKey, { limit: MAX_SNAPSHOT_TASKS, offset: 0 });
    return {
      type: 'workflow',
      event: 'update',
      groupKey,
      tasks: page.items.map(taskToWire),
      ...(page.total > page.items.length ? { total: page.total } : {}),
    };
  }

  /**
   * One snapshot of its own group to one connection. Automatic sources (register, hello, mode start) go through
   * the connection's gate; those of a fresh connection are skipped when the list is empty: the firmware ignores
   * empty lists, and a fresh connection has nothing on screen to clear. Answers (list, pull, command) and change pushes always go,
   * empty or not, and restart the gate's window.
   */
  async sendSnapshot(conn: DeviceConnection, source: SnapshotSource): Promise<boolean> {
    const state = this.#conns.get(conn);
    const automatic = AUTOMATIC_SOURCES.has(source);
    if (automatic && state && !state.gate.admit()) {
      this.#log.debug({ source, to: conn.deviceId }, '[Workflow] op=snapshot debounced');
      return false;
    }
    const admittedAt = state?.gate.lastAt;
    const group = this.groupOf(conn.deviceId);
    const snap = await this.snapshot(group);
    if (isClosed(conn)) return false;
    if (FRESH_SOURCES.has(source) && snap.tasks.length === 0) {
      if (state && admittedAt !== undefined) state.gate.release(admittedAt);
      return false;
    }
    if (!automatic) state?.gate.record();
    if (state) state.group = group;
    const ok = conn.deliver(snap);
    this.#log.info(
      { op: 'snapshot', source, group, to: conn.deviceId, count: snap.tasks.length },
      `[Workflow] op=snapshot source=${source} group=${group} to=${conn.deviceId} count=${snap.tasks.length}`,
    );
    return ok;
  }

  /**
   * Pushes each group's snapshot to every online device of that group. Reusable by other features after they
   * changed tasks. Returns the connections reached.
   */
  async broadcastGroups(groups: Iterable<string>, source: SnapshotSource = 'change'): Promise<Set<DeviceConnection>> {
    const wanted = [...new Set(groups)];
    const reached = await this.fanOut(wanted, source);
    if (wanted.length) this.#announce?.(wanted);
    return reached;
  }

  /**
   * This node's part of a broadcast: the change listeners and the snapshots to its own devices. Called directly
   * for a change another node announced (it is not announced again).
   */
  async fanOut(groups: Iterable<string>, source: SnapshotSource = 'change'): Promise<Set<DeviceConnection>> {
    const wanted = new Set(groups);
    const reached = new Set<DeviceConnection>();
    if (wanted.size === 0) return reached;
    for (const group of wanted) {
      for (const listener of [...this.#changeListeners]) {
        try {
          listener(group);
        } catch (err) {
          this.#log.error({ err, group }, '[Workflow] change listener failed');
        }
      }
    }
    const byGroup = new Map<string, DeviceConnection[]>();
    for (const id of this.#registry.deviceIds()) {
      const group = this.groupOf(id);
      const conn = this.#registry.get(id);
      if (!conn || !wanted.has(group)) continue;
      byGroup.set(group, [...(byGroup.get(group) ?? []), conn]);
    }
    for (const [group, conns] of byGroup) {
      const snap = await this.snapshot(group);
      for (const conn of conns) {
        if (isClosed(conn)) continue;
        const state = this.#conns.get(conn);
        state?.gate.record();
        if (state) state.group = group;
        conn.deliver(snap);
        reached.add(conn);
      }
      this.#log.info(
        { op: 'snapshot', source, group, to: conns.map((c) => c.deviceId), count: snap.tasks.length },
        `[Workflow] op=snapshot source=${source} group=${group} to=${conns.length} devices count=${snap.tasks.length}`,
      );
    }
    return reached;
  }

  /**
   * After devices.yaml changed: every tracked connection whose group moved gets its new group's snapshot
   * (a change, so it goes even when empty).
   */
  async regroup(conns: Iterable<DeviceConnection>): Promise<number> {
    let moved = 0;
    for (const conn of conns) {
      const state = this.#conns.get(conn);
      if (!state || isClosed(conn)) continue;
      const group = this.groupOf(conn.deviceId);
      if (group === state.group) continue;
      this.#log.info(
        { device: conn.deviceId, from: state.group, to: group },
        '[Workflow] device moved to another group',
      );
      moved++;
      await this.sendSnapshot(conn, 'regroup');
    }
    return moved;
  }

  /**
   * After this node missed task changes announced by others (cluster bus gap, D17): every tracked connection gets
   * its group's snapshot again, through its gate (one per connection, debounced). The tasks are in the shared
   * store, so the snapshot is current. Returns how many were sent.
   */
  async resync(conns: Iterable<DeviceConnection>): Promise<number> {
    let sent = 0;
    for (const conn of conns) {
      if (this.#conns.has(conn) && !isClosed(conn) && (await this.sendSnapshot(conn, 'resync'))) sent++;
    }
    return sent;
  }

  // ------------------------------------------------------------------ operations (each ends with the pushes)

  async listTasks(groupKey: string, page?: Page): Promise<TaskPage> {
    return this.#store.list(groupKey, page);
  }

  /**
   * Field-level upsert for other features (peer `peer_task_to_workflow`, import from a meeting) and the
   * WebSocket `update` event. Target group per task: `task.groupKey` > `groupKey`. A task without an id gets
   * one unless `requireId` (the WebSocket contract). Pushes the new snapshot to the devices of changed groups.
   * Throws WorkflowInputError (fork wording) on bad input; nothing is written then.
   */
  async upsertTasks(
    groupKey: string,
    tasks: readonly unknown[],
    by: string,
    opts: { requireId?: boolean } = {},
  ): Promise<UpsertResult & ChangeOutcome> {
    const group = normalizeGroupKey(groupKey);
    if (!group) throw new WorkflowInputError('groupKey must be non-empty string');
    const checked = checkTaskInputs(tasks, { defaultGroup: group, ...(opts.requireId ? {} : { newId: newTaskId }) });
    if (!checked.ok) throw new WorkflowInputError(checked.message);
    const result = checked.value.length
      ? await this.#store.upsert(checked.value, this.#now())
      : { ids: [], created: [], changedGroups: [] };
    const reached = await this.broadcastGroups(result.changedGroups);
    this.#log.info(
      { op: 'update', groups: result.changedGroups, count: checked.value.length, by },
      `[Workflow] op=update groups=[${result.changedGroups.join(',')}] count=${checked.value.length} by=${by}`,
    );
    return { ...result, reached };
  }

  async completeTasks(groupKey: string, ids: unknown, by: string): Promise<CompleteResult & ChangeOutcome> {
    const checked = checkIds(ids);
    if (!checked.ok) throw new WorkflowInputError(checked.message);
    const result = await this.#store.complete(groupKey, checked.value, this.#now());
    const changedGroups = result.completed.length ? [groupKey] : [];
    const reached = await this.broadcastGroups(changedGroups);
    this.#log.info(
      { op: 'complete', ids: checked.value, group: groupKey, by, idempotent: changedGroups.length === 0 },
      `[Workflow] op=complete id=${checked.value.join(',')} group=${groupKey} by=${by}${changedGroups.length ? '' : ' idempotent:true'}`,
    );
    return { ...result, changedGroups, reached };
  }

  async deleteTasks(groupKey: string, ids: unknown, by: string): Promise<DeleteResult & ChangeOutcome> {
    const checked = checkIds(ids);
    if (!checked.ok) throw new WorkflowInputError(checked.message);
    const result = await this.#store.delete(groupKey, checked.value);
    const changedGroups = result.deleted.length ? [groupKey] : [];
    const reached = await this.broadcastGroups(changedGroups);
    this.#log.info(
      { op: 'delete', ids: checked.value, group: groupKey, by },
      `[Workflow] op=delete id=${checked.value.join(',')} group=${groupKey} by=${by}`,
    );
    return { ...result, changedGroups, reached };
  }

  /** Sets the owner of one task; throws WorkflowNotFoundError for an unknown id. */
  async assignTask(
    groupKey: string,
    id: unknown,
    owner: unknown,
    by: string,
  ): Promise<{ result: AssignResult; owner: string } & ChangeOutcome> {
    const checkedId = checkId(id);
    if (!checkedId.ok) throw new WorkflowInputError(checkedId.message);
    const checkedOwner = checkOwner(owner);
    if (!checkedOwner.ok) throw new WorkflowInputError(checkedOwner.message);
    const name = this.ownerFromInput(checkedOwner.value);
    const result = await this.#store.assign(groupKey, checkedId.value, name, this.#now());
    if (result === 'not_found')
      throw new WorkflowNotFoundError(`task ${checkedId.value} not found in group ${groupKey}`);
    const changedGroups = result === 'changed' ? [groupKey] : [];
    const reached = await this.broadcastGroups(changedGroups);
    this.#log.info(
      { op: 'assign', id: checkedId.value, group: groupKey, owner: name, by, idempotent: result === 'unchanged' },
      `[Workflow] op=assign id=${checkedId.value} group=${groupKey} by=${by}${result === 'unchanged' ? ' idempotent:true' : ''}`,
    );
    return { result, owner: name, changedGroups, reached };
  }

  /** The Nth open task of a group (1-based), in list order. */
  async nthOpenTask(groupKey: string, n: number, filter: (t: Task) => boolean = () => true): Promise<Task | undefined> {
    const { items } = await this.#store.list(groupKey);
    return items.filter((t) => t.status === 'open' && filter(t))[n - 1];
  }
}

function isClosed(conn: DeviceConnection): boolean {
  return (conn as { closed?: unknown }).closed === true;
}

function newTaskId(): string {
  return `T-${randomBytes(5).toString('hex')}`;
}
