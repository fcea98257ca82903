import { CORE_FIELDS, MAX_PRIORITY, MIN_PRIORITY, TASK_STATUSES, type TaskPatch, type TaskStatus } from './types.js';

/**
 * Checks of workflow input, shared by the WebSocket events, the service API and HTTP import. Errors carry the
 * fork's wording (`priority must be integer 0..3`, `ids must be non-empty string array`...), followed by where
 * the problem is, so a client matching on the fork's text still matches.
 * Only `id` is required on an update; `title`/`priority`/`status`/`owner` are checked only when present.
 */

export const MAX_TASKS_PER_UPDATE = 100;
export const MAX_IDS = 100;
export const MAX_ID_LENGTH = 200;
export const MAX_TITLE_LENGTH = 500;
export const MAX_OWNER_LENGTH = 200;
export const MAX_GROUP_KEY_LENGTH = 64;
/** Serialized size of a task's unknown fields. */
export const MAX_EXTRA_BYTES = 8192;

export type Checked<T> = { ok: true; value: T } | { ok: false; message: string };

const fail = (message: string): { ok: false; message: string } => ({ ok: false, message });

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * A group key as given (yaml groups such as `硬件部` are kept as they are), trimmed. Keys made only of hex digits
 * and separators — the default `device-id[:8]` groups — are lower-cased, as device ids are.
 */
export function normalizeGroupKey(raw: unknown): string | undefined {
  if (typeof raw !== 'string') return undefined;
  const key = raw.trim();
  if (key.length === 0 || key.length > MAX_GROUP_KEY_LENGTH || CONTROL.test(key)) return undefined;
  return /^[0-9a-f:._-]+$/i.test(key) ? key.toLowerCase() : key;
}

export function checkId(raw: unknown, what = 'id'): Checked<string> {
  if (typeof raw !== 'string') return fail(`${what} must be non-empty string`);
  const id = raw.trim();
  if (id.length === 0 || CONTROL.test(id)) return fail(`${what} must be non-empty string`);
  if (id.length > MAX_ID_LENGTH) return fail(`${what} must be at most ${MAX_ID_LENGTH} chars`);
  return { ok: true, value: id };
}

/** `ids` of complete/delete: a non-empty array of non-empty strings. */
export function checkIds(raw: unknown): Checked<string[]> {
  if (!Array.isArray(raw) || raw.length === 0) return fail('ids must be non-empty string array');
  if (raw.length > MAX_IDS) return fail(`ids must be non-empty string array of at most ${MAX_IDS}`);
  const ids: string[] = [];
  for (const v of raw) {
    const id = checkId(v);
    if (!id.ok) return fail('ids must be non-empty string array');
    ids.push(id.value);
  }
  return { ok: true, value: ids };
}

/** An optional `groupKey` (message or task level): absent is fine, present must be usable. */
export function checkOptionalGroupKey(raw: unknown, where = ''): Checked<string | undefined> {
  if (raw === undefined || raw === null) return { ok: true, value: undefined };
  const key = normalizeGroupKey(raw);
  return key
    ? { ok: true, value: key }
    : fail(`groupKey must be non-empty string of at most ${MAX_GROUP_KEY_LENGTH} chars${where}`);
}

export function checkOwner(raw: unknown, where = ''): Checked<string> {
  if (typeof raw !== 'string' || raw.trim().length === 0) return fail(`owner must be non-empty string${where}`);
  const owner = raw.trim();
  if (owner.length > MAX_OWNER_LENGTH || CONTROL.test(owner))
    return fail(`owner must be at most ${MAX_OWNER_LENGTH} chars without control characters${where}`);
  return { ok: true, value: owner };
}

export interface TaskInputOptions {
  /** Group of a task that names none itself (message `groupKey` > sender's group). */
  defaultGroup: string;
  /** Makes an id for a task sent without one; when absent, an id is required (the WebSocket contract). */
  newId?: () => string;
}

/**
 * Turns client task objects into patches. Target group per task: `task.groupKey` > `defaultGroup`.
 * Unknown fields go to `extra` and are preserved; server-owned fields (`createdAt`, `updatedAt`) are ignored.
 */
export function checkTaskInputs(raw: unknown, opts: TaskInputOptions): Checked<TaskPatch[]> {
  if (!Array.isArray(raw)) return fail('tasks must be array');
  if (raw.length > MAX_TASKS_PER_UPDATE) return fail(`tasks must have at most ${MAX_TASKS_PER_UPDATE} items`);
  const patches: TaskPatch[] = [];
  for (let i = 0; i < raw.length; i++) {
    const patch = checkTaskInput(raw[i], opts, ` (tasks[${i}])`);
    if (!patch.ok) return patch;
    patches.push(patch.value);
  }
  return { ok: true, value: patches };
}

export function checkTaskInput(raw: unknown, opts: TaskInputOptions, where = ''): Checked<TaskPatch> {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return fail(`task must be object${where}`);
  const t = raw as Record<string, unknown>;
  let id: string;
  if ((t.id === undefined || t.id === null || t.id === '') && opts.newId) id = opts.newId();
  else {
    const checked = checkId(t.id);
    if (!checked.ok) return fail(`${checked.message}${where}`);
    id = checked.value;
  }
  const group = checkOptionalGroupKey(t.groupKey, where);
  if (!group.ok) return group;
  const patch: TaskPatch = { id, groupKey: group.value ?? opts.defaultGroup };

  if (t.title !== undefined) {
    if (typeof t.title !== 'string') return fail(`title must be string${where}`);
    if (t.title.length > MAX_TITLE_LENGTH) return fail(`title must be at most ${MAX_TITLE_LENGTH} chars${where}`);
    patch.title = t.title.trim();
  }
  if (t.priority !== undefined) {
    const p = t.priority;
    if (typeof p !== 'number' || !Number.isInteger(p) || p < MIN_PRIORITY || p > MAX_PRIORITY)
      return fail(`priority must be integer 0..3${where}`);
    patch.priority = p;
  }
  if (t.status !== undefined) {
    const s = typeof t.status === 'string' ? t.status.trim().toLowerCase() : undefined;
    if (!TASK_STATUSES.includes(s as TaskStatus)) return fail(`status must be open|done${where}`);
    patch.status = s as TaskStatus;
  }
  if (t.owner !== undefined) {
    if (t.owner === null || t.owner === '') patch.owner = null;
    else {
      const owner = checkOwner(t.owner, where);
      if (!owner.ok) return owner;
      patch.owner = owner.value;
    }
  }
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(t))
    if (!(CORE_FIELDS as readonly string[]).includes(k) && v !== undefined) extra[k] = v;
  if (Object.keys(extra).length > 0) {
    if (Buffer.byteLength(JSON.stringify(extra)) > MAX_EXTRA_BYTES)
      return fail(`task fields must be at most ${MAX_EXTRA_BYTES} bytes${where}`);
    patch.extra = extra;
  }
  return { ok: true, value: patch };
}
