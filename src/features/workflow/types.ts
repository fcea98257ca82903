/**
 * Workflow data model (C3, fork §2.4): tasks in shared lists, one list per device group (D20).
 * A task is addressed by (groupKey, id): the same id may exist in two groups as two tasks.
 */

export const TASK_STATUSES = ['open', 'done'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** The fields the server owns; every other field a client sends (description, assignees...) is kept in `extra`. */
export const CORE_FIELDS = [
  'id',
  'groupKey',
  'title',
  'priority',
  'status',
  'owner',
  'createdAt',
  'updatedAt',
] as const;

export const MIN_PRIORITY = 0;
export const MAX_PRIORITY = 3;
/** Priority of a task created without one (P0 is the most urgent; the fork documents no default). */
export const DEFAULT_PRIORITY = 2;

export interface Task {
  id: string;
  groupKey: string;
  title: string;
  priority: number;
  status: TaskStatus;
  /** `alias|device-id` (or a free-form name); undefined = nobody. */
  owner: string | undefined;
  /** Unknown client fields, preserved as sent. */
  extra: Record<string, unknown>;
  createdAt: number;
  updatedAt: number;
}

/** A field-level change: only the fields present are written. `extra` keys are merged one by one. */
export interface TaskPatch {
  id: string;
  groupKey: string;
  title?: string;
  priority?: number;
  status?: TaskStatus;
  /** null clears the owner. */
  owner?: string | null;
  extra?: Record<string, unknown>;
}

export interface UpsertResult {
  /** Ids (per patch, in order) that now exist. */
  ids: string[];
  /** Ids that did not exist before and were created. */
  created: string[];
  /** Groups where at least one task really changed (a patch equal to the stored task changes nothing). */
  changedGroups: string[];
}

export interface CompleteResult {
  /** Set to done by this call. */
  completed: string[];
  /** Were done already (idempotent). */
  alreadyDone: string[];
  notFound: string[];
}

export interface DeleteResult {
  deleted: string[];
  notFound: string[];
}

export type AssignResult = 'changed' | 'unchanged' | 'not_found';

export interface Page {
  limit: number;
  offset: number;
}

export interface TaskPage {
  items: Task[];
  total: number;
}

/** Wire form of a task: the unknown fields first, then the server-owned ones (which win). */
export function taskToWire(task: Task): Record<string, unknown> {
  return {
    ...task.extra,
    id: task.id,
    title: task.title,
    priority: task.priority,
    status: task.status,
    ...(task.owner !== undefined ? { owner: task.owner } : {}),
    groupKey: task.groupKey,
    createdAt: task.createdAt,
    updatedAt: task.updatedAt,
  };
}
