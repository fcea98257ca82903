import { parseJsonObject } from '../../json.js';
import { applyMigrations, type Db } from '../../store/sqlite.js';
import type {
  AssignResult,
  CompleteResult,
  DeleteResult,
  Page,
  Task,
  TaskPage,
  TaskPatch,
  UpsertResult,
} from './types.js';
import { DEFAULT_PRIORITY } from './types.js';

/**
 * Where tasks live. Every method is one atomic operation (one transaction), so decisions such as "already
 * done" or "same owner" are taken inside it and two concurrent callers cannot both win. The methods are
 * async so that a PostgreSQL implementation (shared store of several nodes, D16) can satisfy the same
 * interface; the SQLite one below answers synchronously inside the promise.
 *
 * Order of a group's list: open tasks first, then by priority (P0 first), then by creation order.
 */
export interface TaskStore {
  list(groupKey: string, page?: Page): Promise<TaskPage>;
  get(groupKey: string, id: string): Promise<Task | undefined>;
  /** Field-level upsert of each patch into its own group; missing ids are created. */
  upsert(patches: readonly TaskPatch[], now: number): Promise<UpsertResult>;
  complete(groupKey: string, ids: readonly string[], now: number): Promise<CompleteResult>;
  delete(groupKey: string, ids: readonly string[]): Promise<DeleteResult>;
  /** Sets only the owner; `unchanged` when it already was that owner. */
  assign(groupKey: string, id: string, owner: string, now: number): Promise<AssignResult>;
}

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE workflow_tasks (
     seq        INTEGER PRIMARY KEY AUTOINCREMENT,
     group_key  TEXT NOT NULL,
     id         TEXT NOT NULL,
     title      TEXT NOT NULL DEFAULT '',
     priority   INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 3),
     status     TEXT NOT NULL CHECK (status IN ('open', 'done')),
     owner      TEXT,
     extra      TEXT NOT NULL DEFAULT '{}',
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     UNIQUE (group_key, id)
   );
   CREATE INDEX workflow_tasks_by_group ON workflow_tasks(group_key, status DESC, priority, seq);`,
];

/** A `workflow_tasks` row as both engines return it. */
export interface TaskRow {
  group_key: string;
  id: string;
  title: string;
  priority: number;
  status: string;
  owner: string | null;
  extra: string;
  created_at: number;
  updated_at: number;
}

export const TASK_COLUMNS = 'group_key, id, title, priority, status, owner, extra, created_at, updated_at';
/** 'open' sorts after 'done', so DESC puts open tasks first. */
export const TASK_ORDER = 'ORDER BY status DESC, priority ASC, seq ASC';

export function parseExtra(text: string): Record<string, unknown> {
  return parseJsonObject(text) ?? {};
}

/** The stored columns a patch writes: a new task's (no row), or an existing one's with the patch over it. */
export interface TaskColumns {
  title: string;
  priority: number;
  status: string;
  owner: string | null;
  extra: string;
}

/**
 * What `patch` makes of `row` (both engines' upsert): the columns to insert when there is no row, else the merged
 * columns, or undefined when the patch changes nothing.
 */
export function applyTaskPatch(row: TaskRow | undefined, p: TaskPatch): TaskColumns | undefined {
  if (!row)
    return {
      title: p.title ?? '',
      priority: p.priority ?? DEFAULT_PRIORITY,
      status: p.status ?? 'open',
      owner: p.owner ?? null,
      extra: JSON.stringify(p.extra ?? {}),
    };
  const next: TaskColumns = {
    title: p.title ?? row.title,
    priority: p.priority ?? row.priority,
    status: p.status ?? row.status,
    owner: p.owner === undefined ? row.owner : p.owner,
    extra:
      p.extra && Object.keys(p.extra).length > 0 ? JSON.stringify({ ...parseExtra(row.extra), ...p.extra }) : row.extra,
  };
  const same =
    next.title === row.title &&
    next.priority === row.priority &&
    next.status === row.status &&
    next.owner === row.owner &&
    next.extra === row.extra;
  return same ? undefined : next;
}

export function toTask(row: TaskRow): Task {
  return {
    id: row.id,
    groupKey: row.group_key,
    title: row.title,
    priority: row.priority,
    status: row.status === 'done' ? 'done' : 'open',
    owner: row.owner ?? undefined,
    extra: parseExtra(row.extra),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export class SqliteTaskStore implements TaskStore {
  readonly #db: Db;
  readonly #select;
  readonly #page;
  readonly #all;
  readonly #count;
  readonly #insert;
  readonly #update;
  readonly #setStatus;
  readonly #setOwner;
  readonly #remove;

  constructor(db: Db) {
    applyMigrations(db, 'workflow', MIGRATIONS);
    this.#db = db;
    this.#select = db.prepare<[string, string], TaskRow>(
      `SELECT ${TASK_COLUMNS} FROM workflow_tasks WHERE group_key = ? AND id = ?`,
    );
    this.#page = db.prepare<[string, number, number], TaskRow>(
      `SELECT ${TASK_COLUMNS} FROM workflow_tasks WHERE group_key = ? ${TASK_ORDER} LIMIT ? OFFSET ?`,
    );
    this.#all = db.prepare<[string], TaskRow>(
      `SELECT ${TASK_COLUMNS} FROM workflow_tasks WHERE group_key = ? ${TASK_ORDER}`,
    );
    this.#count = db.prepare<[string], { n: number }>('SELECT COUNT(*) AS n FROM workflow_tasks WHERE group_key = ?');
    this.#insert = db.prepare<[string, string, string, number, string, string | null, string, number, number]>(
      `INSERT INTO workflow_tasks (${TASK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#update = db.prepare<[string, number, string, string | null, string, number, string, string]>(
      'UPDATE workflow_tasks SET title = ?, priority = ?, status = ?, owner = ?, extra = ?, updated_at = ? WHERE group_key = ? AND id = ?',
    );
    this.#setStatus = db.prepare<[string, number, string, string]>(
      'UPDATE workflow_tasks SET status = ?, updated_at = ? WHERE group_key = ? AND id = ?',
    );
    this.#setOwner = db.prepare<[string, number, string, string]>(
      'UPDATE workflow_tasks SET owner = ?, updated_at = ? WHERE group_key = ? AND id = ?',
    );
    this.#remove = db.prepare<[string, string]>('DELETE FROM workflow_tasks WHERE group_key = ? AND id = ?');
  }

  async list(groupKey: string, page?: Page): Promise<TaskPage> {
    const rows = page ? this.#page.all(groupKey, page.limit, page.offset) : this.#all.all(groupKey);
    const total = page ? (this.#count.get(groupKey)?.n ?? 0) : rows.length;
    return { items: rows.map(toTask), total };
  }

  async get(groupKey: string, id: string): Promise<Task | undefined> {
    const row = this.#select.get(groupKey, id);
    return row ? toTask(row) : undefined;
  }

  async upsert(patches: readonly TaskPatch[], now: number): Promise<UpsertResult> {
    return this.#db.transaction(() => {
      const ids: string[] = [];
      const created = new Set<string>();
      const changed = new Set<string>();
      for (const p of patches) {
        ids.push(p.id);
        const row = this.#select.get(p.groupKey, p.id);
        const next = applyTaskPatch(row, p);
        if (!next) continue;
        const { title, priority, status, owner, extra } = next;
        if (!row) {
          this.#insert.run(p.groupKey, p.id, title, priority, status, owner, extra, now, now);
          created.add(p.id);
        } else this.#update.run(title, priority, status, owner, extra, now, p.groupKey, p.id);
        changed.add(p.groupKey);
      }
      return { ids, created: [...created], changedGroups: [...changed] };
    })();
  }

  async complete(groupKey: string, ids: readonly string[], now: number): Promise<CompleteResult> {
    return this.#db.transaction(() => {
      const result: CompleteResult = { completed: [], alreadyDone: [], notFound: [] };
      for (const id of new Set(ids)) {
        const row = this.#select.get(groupKey, id);
        if (!row) result.notFound.push(id);
        else if (row.status === 'done') result.alreadyDone.push(id);
        else {
          this.#setStatus.run('done', now, groupKey, id);
          result.completed.push(id);
        }
      }
      return result;
    })();
  }

  async delete(groupKey: string, ids: readonly string[]): Promise<DeleteResult> {
    return this.#db.transaction(() => {
      const result: DeleteResult = { deleted: [], notFound: [] };
      for (const id of new Set(ids)) {
        if (this.#remove.run(groupKey, id).changes > 0) result.deleted.push(id);
        else result.notFound.push(id);
      }
      return result;
    })();
  }

  async assign(groupKey: string, id: string, owner: string, now: number): Promise<AssignResult> {
    return this.#db.transaction((): AssignResult => {
      const row = this.#select.get(groupKey, id);
      if (!row) return 'not_found';
      if (row.owner === owner) return 'unchanged';
      this.#setOwner.run(owner, now, groupKey, id);
      return 'changed';
    })();
  }
}
