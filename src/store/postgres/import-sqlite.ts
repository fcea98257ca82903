import type { Db } from '../sqlite.js';
import type { PgDb } from './pool.js';

/**
 * `linus migrate --from-sqlite data/linus.db`: copies a single node's data into PostgreSQL (migrated first). Each
 * table is copied in one transaction, in chunks; a row whose key is there already is left alone, so a second run
 * copies nothing twice. Meeting rows (segments, summaries...) whose meeting could not be copied (the device has
 * another active meeting in PostgreSQL) are skipped with it. Meant for a cluster's first start, before the
 * nodes serve: a queued peer message delivered from PostgreSQL meanwhile would be copied again (at-least-once).
 */

type PgType = 'text' | 'bigint' | 'int';

interface TableSpec {
  table: string;
  columns: readonly (readonly [name: string, type: PgType])[];
  /** SQLite order of reading (and so of inserting: identity columns follow it). */
  order: string;
  /** An extra condition on the row `u`, e.g. that its meeting was copied. */
  where?: string;
}

const MEETING_COPIED = 'EXISTS (SELECT 1 FROM meetings m WHERE m.id = u.meeting_id)';
const SEGMENT: TableSpec['columns'] = [
  ['meeting_id', 'text'],
  ['seq', 'int'],
  ['ts', 'bigint'],
  ['text', 'text'],
  ['speaker_id', 'text'],
  ['tag', 'text'],
];

const TABLES: readonly TableSpec[] = [
  {
    table: 'meetings',
    columns: [
      ['id', 'text'],
      ['device_id', 'text'],
      ['session_id', 'text'],
      ['started_at', 'bigint'],
      ['ended_at', 'bigint'],
      ['last_snippet_at', 'bigint'],
      ['status', 'text'],
      ['title', 'text'],
      ['last_seq', 'int'],
      ['pushed_seq', 'int'],
      ['segments_count', 'int'],
      ['duration_ms', 'bigint'],
      ['bullets_length', 'int'],
    ],
    order: 'started_at, id',
  },
  { table: 'meeting_segments', columns: SEGMENT, order: 'meeting_id, seq', where: MEETING_COPIED },
  { table: 'meeting_pending', columns: SEGMENT, order: 'meeting_id, seq', where: MEETING_COPIED },
  {
    table: 'meeting_checkpoints',
    columns: [
      ['meeting_id', 'text'],
      ['idx', 'int'],
      ['created_at', 'bigint'],
      ['upto_seq', 'int'],
      ['summary', 'text'],
    ],
    order: 'meeting_id, idx',
    where: MEETING_COPIED,
  },
  {
    table: 'meeting_summaries',
    columns: [
      ['meeting_id', 'text'],
      ['created_at', 'bigint'],
      ['summary', 'text'],
      ['meta', 'text'],
    ],
    order: 'meeting_id',
    where: MEETING_COPIED,
  },
  {
    table: 'meeting_webhook_outbox',
    columns: [
      ['id', 'text'],
      ['meeting_id', 'text'],
      ['url', 'text'],
      ['headers', 'text'],
      ['body', 'text'],
      ['timeout_ms', 'int'],
      ['attempts', 'int'],
      ['status', 'text'],
      ['next_attempt_at', 'bigint'],
      ['created_at', 'bigint'],
      ['delivered_at', 'bigint'],
      ['last_error', 'text'],
    ],
    order: 'created_at, id',
  },
  {
    table: 'workflow_tasks',
    columns: [
      ['group_key', 'text'],
      ['id', 'text'],
      ['title', 'text'],
      ['priority', 'int'],
      ['status', 'text'],
      ['owner', 'text'],
      ['extra', 'text'],
      ['created_at', 'bigint'],
      ['updated_at', 'bigint'],
    ],
    order: 'seq',
  },
  {
    table: 'peer_queue',
    columns: [
      ['device_id', 'text'],
      ['msg_id', 'text'],
      ['sender', 'text'],
      ['envelope', 'text'],
      ['queued_at', 'bigint'],
      ['expires_at', 'bigint'],
    ],
    order: 'seq',
    // No natural key: a message is the same when its device and id are.
    where: 'NOT EXISTS (SELECT 1 FROM peer_queue p WHERE p.device_id = u.device_id AND p.msg_id = u.msg_id)',
  },
  {
    table: 'memories',
    columns: [
      ['device_id', 'text'],
      ['summary', 'text'],
      ['updated_at', 'bigint'],
    ],
    order: 'device_id',
  },
  {
    table: 'activations',
    columns: [
      ['device_id', 'text'],
      ['client_id', 'text'],
      ['code', 'text'],
      ['challenge', 'text'],
      ['created_at', 'bigint'],
      ['activated_at', 'bigint'],
    ],
    order: 'device_id',
  },
  {
    table: 'device_bindings',
    columns: [
      ['device_id', 'text'],
      ['client_id', 'text'],
      ['bound_at', 'bigint'],
    ],
    order: 'device_id',
  },
];

const CHUNK = 1000;

export interface TableCopy {
  table: string;
  /** Rows in the SQLite file. */
  read: number;
  /** Rows this run inserted. */
  copied: number;
}

function insertSql(spec: TableSpec): string {
  const names = spec.columns.map(([n]) => n);
  const arrays = spec.columns.map(([, t], i) => `$${i + 1}::${t}[]`).join(', ');
  return `INSERT INTO ${spec.table} (${names.join(', ')})
          SELECT ${names.map((n) => `u.${n}`).join(', ')}
          FROM unnest(${arrays}) WITH ORDINALITY AS u(${names.join(', ')}, n)
          ${spec.where ? `WHERE ${spec.where}` : ''}
          ORDER BY n
          ON CONFLICT DO NOTHING`;
}

/** Copies every table the file has (a file from an older version may lack some); returns what each table gave. */
export async function copySqliteToPg(sqlite: Db, pg: PgDb): Promise<TableCopy[]> {
  const present = new Set(
    sqlite
      .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'")
      .all()
      .map((r) => r.name),
  );
  const report: TableCopy[] = [];
  for (const spec of TABLES) {
    if (!present.has(spec.table)) continue;
    const names = spec.columns.map(([n]) => n);
    const select = sqlite.prepare<[number, number], Record<string, unknown>>(
      `SELECT ${names.join(', ')} FROM ${spec.table} ORDER BY ${spec.order} LIMIT ? OFFSET ?`,
    );
    const sql = insertSql(spec);
    const copy = await pg.tx(async (tx) => {
      let read = 0;
      let copied = 0;
      for (;;) {
        const rows = select.all(CHUNK, read);
        if (!rows.length) break;
        read += rows.length;
        copied += await tx.exec(
          sql,
          names.map((n) => rows.map((r) => r[n] ?? null)),
        );
        if (rows.length < CHUNK) break;
      }
      return { table: spec.table, read, copied };
    });
    report.push(copy);
  }
  return report;
}
