import {
  applyTaskPatch,
  TASK_COLUMNS,
  TASK_ORDER,
  toTask,
  type TaskRow,
  type TaskStore,
} from '../../features/workflow/store.js';
import {
  type AssignResult,
  type CompleteResult,
  type DeleteResult,
  type Page,
  type TaskPage,
  type TaskPatch,
  type UpsertResult,
} from '../../features/workflow/types.js';
import type { PgDb, Sql } from './pool.js';

/**
 * Tasks in PostgreSQL: the contract of SqliteTaskStore (workflow/store.ts) for several nodes. A write takes a
 * transaction-level advisory lock per group it touches (in sorted order, so two writers never wait on each other
 * in a circle): its read-decide-write runs as alone as on SQLite's single writer.
 */

const SELECT = `SELECT ${TASK_COLUMNS} FROM workflow_tasks WHERE group_key = $1 AND id = $2`;

async function lockGroups(sql: Sql, groups: Iterable<string>): Promise<void> {
  const sorted = [...new Set(groups)].sort();
  await sql.exec(
    "SELECT pg_advisory_xact_lock(hashtext('tasks:' || g)) FROM unnest($1::text[]) WITH ORDINALITY AS t(g, n) ORDER BY n",
    [sorted],
  );
}

export class PgTaskStore implements TaskStore {
  constructor(private readonly db: PgDb) {}

  async list(groupKey: string, page?: Page): Promise<TaskPage> {
    if (!page) {
      const rows = await this.db.rows<TaskRow>(
        `SELECT ${TASK_COLUMNS} FROM workflow_tasks WHERE group_key = $1 ${TASK_ORDER}`,
        [groupKey],
      );
      return { items: rows.map(toTask), total: rows.length };
    }
    const rows = await this.db.rows<TaskRow & { total: number }>(
      `SELECT ${TASK_COLUMNS}, COUNT(*) OVER () AS total FROM workflow_tasks WHERE group_key = $1 ${TASK_ORDER}
       LIMIT $2 OFFSET $3`,
      [groupKey, page.limit, page.offset],
    );
    // A page past the end has no row to carry the total.
    const total =
      rows[0]?.total ??
      (await this.db.row<{ n: number }>('SELECT COUNT(*) AS n FROM workflow_tasks WHERE group_key = $1', [groupKey]))
        ?.n ??
      0;
    return { items: rows.map(toTask), total };
  }

  async get(groupKey: string, id: string): Promise<TaskPage['items'][number] | undefined> {
    const row = await this.db.row<TaskRow>(SELECT, [groupKey, id]);
    return row ? toTask(row) : undefined;
  }

  upsert(patches: readonly TaskPatch[], now: number): Promise<UpsertResult> {
    return this.db.tx(async (sql) => {
      await lockGroups(
        sql,
        patches.map((p) => p.groupKey),
      );
      const ids: string[] = [];
      const created = new Set<string>();
      const changed = new Set<string>();
      for (const p of patches) {
        ids.push(p.id);
        const row = await sql.row<TaskRow>(SELECT, [p.groupKey, p.id]);
        const next = applyTaskPatch(row, p);
        if (!next) continue;
        const { title, priority, status, owner, extra } = next;
        if (!row) {
          await sql.exec(`INSERT INTO workflow_tasks (${TASK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`, [
            p.groupKey,
            p.id,
            title,
            priority,
            status,
            owner,
            extra,
            now,
          ]);
          created.add(p.id);
        } else
          await sql.exec(
            `UPDATE workflow_tasks SET title = $1, priority = $2, status = $3, owner = $4, extra = $5, updated_at = $6
           WHERE group_key = $7 AND id = $8`,
            [title, priority, status, owner, extra, now, p.groupKey, p.id],
          );
        changed.add(p.groupKey);
      }
      return { ids, created: [...created], changedGroups: [...changed] };
    });
  }

  complete(groupKey: string, ids: readonly string[], now: number): Promise<CompleteResult> {
    return this.db.tx(async (sql) => {
      await lockGroups(sql, [groupKey]);
      const result: CompleteResult = { completed: [], alreadyDone: [], notFound: [] };
      for (const id of new Set(ids)) {
        const row = await sql.row<TaskRow>(SELECT, [groupKey, id]);
        if (!row) result.notFound.push(id);
        else if (row.status === 'done') result.alreadyDone.push(id);
        else {
          await sql.exec(
            "UPDATE workflow_tasks SET status = 'done', updated_at = $1 WHERE group_key = $2 AND id = $3",
            [now, groupKey, id],
          );
          result.completed.push(id);
        }
      }
      return result;
    });
  }

  delete(groupKey: string, ids: readonly string[]): Promise<DeleteResult> {
    return this.db.tx(async (sql) => {
      await lockGroups(sql, [groupKey]);
      const result: DeleteResult = { deleted: [], notFound: [] };
      for (const id of new Set(ids)) {
        if ((await sql.exec('DELETE FROM workflow_tasks WHERE group_key = $1 AND id = $2', [groupKey, id])) > 0)
          result.deleted.push(id);
        else result.notFound.push(id);
      }
      return result;
    });
  }

  assign(groupKey: string, id: string, owner: string, now: number): Promise<AssignResult> {
    return this.db.tx(async (sql): Promise<AssignResult> => {
      await lockGroups(sql, [groupKey]);
      const row = await sql.row<TaskRow>(SELECT, [groupKey, id]);
      if (!row) return 'not_found';
      if (row.owner === owner) return 'unchanged';
      await sql.exec('UPDATE workflow_tasks SET owner = $1, updated_at = $2 WHERE group_key = $3 AND id = $4', [
        owner,
        now,
        groupKey,
        id,
      ]);
      return 'changed';
    });
  }
}
