import { MEETING_MIGRATIONS } from '../../features/meeting/store.js';
import { errorMessage } from '../../errors.js';
import type { PgDb } from './pool.js';

/**
 * The PostgreSQL schema, as versioned steps per component (the same components and versions table as the SQLite
 * store, sqlite.ts). A step runs once, in its own transaction. All of it runs under one advisory lock, so N nodes
 * starting at once migrate once: the first applies the steps, the others wait and then find nothing to do.
 */

export interface PgComponent {
  component: string;
  steps: readonly string[];
}

/** Activations, dialogue memory and device bindings: the tables of the SQLite `core` component. */
const CORE: readonly string[] = [
  `CREATE TABLE activations (
     device_id    TEXT PRIMARY KEY,
     client_id    TEXT NOT NULL,
     code         TEXT NOT NULL,
     challenge    TEXT NOT NULL,
     created_at   BIGINT NOT NULL,
     activated_at BIGINT
   );
   CREATE UNIQUE INDEX activations_pending_code ON activations(code) WHERE activated_at IS NULL;
   CREATE TABLE memories (
     device_id  TEXT PRIMARY KEY,
     summary    TEXT NOT NULL,
     updated_at BIGINT NOT NULL
   );
   CREATE TABLE device_bindings (
     device_id TEXT PRIMARY KEY,
     client_id TEXT NOT NULL,
     bound_at  BIGINT NOT NULL
   );`,
];

const WORKFLOW: readonly string[] = [
  `CREATE TABLE workflow_tasks (
     seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     group_key  TEXT NOT NULL,
     id         TEXT NOT NULL,
     title      TEXT NOT NULL DEFAULT '',
     priority   INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 3),
     status     TEXT NOT NULL CHECK (status IN ('open', 'done')),
     owner      TEXT,
     extra      TEXT NOT NULL DEFAULT '{}',
     created_at BIGINT NOT NULL,
     updated_at BIGINT NOT NULL,
     UNIQUE (group_key, id)
   );
   CREATE INDEX workflow_tasks_by_group ON workflow_tasks(group_key, status DESC, priority, seq);`,
];

const PEER: readonly string[] = [
  `CREATE TABLE peer_queue (
     seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     device_id  TEXT NOT NULL,
     msg_id     TEXT NOT NULL,
     sender     TEXT NOT NULL,
     envelope   TEXT NOT NULL,
     queued_at  BIGINT NOT NULL,
     expires_at BIGINT NOT NULL
   );
   CREATE INDEX peer_queue_device ON peer_queue(device_id, seq);
   CREATE INDEX peer_queue_expiry ON peer_queue(expires_at);`,
];

/**
 * Meetings: the SQLite steps are written in SQL both engines accept (see store.ts); the outbox then gets the
 * lease column that lets one node at a time deliver a webhook.
 */
const MEETING: readonly string[] = [
  ...MEETING_MIGRATIONS,
  `ALTER TABLE meeting_webhook_outbox ADD COLUMN claimed_by TEXT;`,
];

export const PG_COMPONENTS: readonly PgComponent[] = [
  { component: 'core', steps: CORE },
  { component: 'meeting', steps: MEETING },
  { component: 'workflow', steps: WORKFLOW },
  { component: 'peer', steps: PEER },
];

export interface AppliedStep {
  component: string;
  version: number;
}

/**
 * Applies every step not applied yet, under a session advisory lock keyed by the schema (two test schemas do not
 * wait for each other); returns the steps this call applied, in order (empty when the schema was current).
 */
export async function migratePg(db: PgDb, components: readonly PgComponent[] = PG_COMPONENTS): Promise<AppliedStep[]> {
  return db.session(async (sql) => {
    await sql.exec("SELECT pg_advisory_lock(hashtext('linus-migrate:' || current_schema()))");
    try {
      await sql.exec(
        'CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT PRIMARY KEY, version INTEGER NOT NULL)',
      );
      const applied: AppliedStep[] = [];
      for (const { component, steps } of components) {
        const row = await sql.row<{ version: number }>('SELECT version FROM schema_migrations WHERE component = $1', [
          component,
        ]);
        for (let v = row?.version ?? 0; v < steps.length; v++) {
          await sql
            .tx(async (step) => {
              await step.exec(steps[v]!);
              await step.exec(
                `INSERT INTO schema_migrations (component, version) VALUES ($1, $2)
                 ON CONFLICT (component) DO UPDATE SET version = excluded.version`,
                [component, v + 1],
              );
            })
            .catch((err: unknown) => {
              throw new Error(`migration ${component} ${v + 1} failed: ${errorMessage(err)}`, { cause: err });
            });
          applied.push({ component, version: v + 1 });
        }
      }
      return applied;
    } finally {
      await sql.exec("SELECT pg_advisory_unlock(hashtext('linus-migrate:' || current_schema()))");
    }
  });
}

/** The version of each component in the database now. */
export async function schemaVersions(db: PgDb): Promise<AppliedStep[]> {
  return db.rows<AppliedStep>('SELECT component, version FROM schema_migrations ORDER BY component');
}
