import type { NewWebhook } from '../../features/meeting/outbox.js';
import {
  CHECKPOINT_COLUMNS,
  likeEscape,
  SUMMARY_COLUMNS,
  toCheckpoint,
  toStoredSummary,
  type CheckpointRow,
  type SummaryRow,
  MEETING_COLUMNS,
  SEGMENT_COLUMNS,
  toMeeting,
  toSegment,
  type AppendResult,
  type Checkpoint,
  type MeetingRecord,
  type MeetingStore,
  type RecentFilter,
  type Segment,
  type SnippetInput,
  type StoredSummary,
  type SummaryMeta,
  type MeetingRow,
  type SegmentRow,
} from '../../features/meeting/store.js';
import type { MeetingSummary } from '../../features/meeting/summary.js';
import type { PgDb, Sql } from './pool.js';

/**
 * Meetings in PostgreSQL: the same contract as SqliteMeetingStore (store.ts), for several nodes. Every method is one
 * transaction; where SQLite relies on its single writer, this one takes a lock: the meeting row (`FOR UPDATE`) for
 * anything that reads then writes a meeting's counters, and a per-device advisory lock for "at most one active
 * meeting per device" (the partial unique index backs it).
 */

/** Inside a transaction: the webhook of a stored summary, written with it. */
export async function enqueueWebhookPg(sql: Sql, w: NewWebhook, now: number): Promise<void> {
  await sql.exec(
    `INSERT INTO meeting_webhook_outbox (id, meeting_id, url, headers, body, timeout_ms, attempts, status, next_attempt_at, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, 0, 'pending', $7, $7)`,
    [w.id, w.meetingId, w.url, JSON.stringify(w.headers), w.body, w.timeoutMs, now],
  );
}

export class PgMeetingStore implements MeetingStore {
  constructor(private readonly db: PgDb) {}

  openMeeting(
    deviceId: string,
    sessionId: string,
    id: string,
    now: number,
  ): Promise<{ meeting: MeetingRecord; created: boolean }> {
    return this.db.tx(async (sql) => {
      await sql.exec("SELECT pg_advisory_xact_lock(hashtext('meeting:' || $1))", [deviceId]);
      const existing = await active(sql, deviceId);
      if (existing?.status === 'open') return { meeting: existing, created: false };
      if (existing) throw new Error(`meeting ${existing.id} of ${deviceId} is still finalizing`);
      const row = await sql.row<MeetingRow>(
        `INSERT INTO meetings (id, device_id, session_id, started_at, status) VALUES ($1, $2, $3, $4, 'open')
         RETURNING ${MEETING_COLUMNS}`,
        [id, deviceId, sessionId, now],
      );
      return { meeting: toMeeting(row!), created: true };
    });
  }

  activeMeeting(deviceId: string): Promise<MeetingRecord | undefined> {
    return active(this.db, deviceId);
  }

  async latestMeeting(deviceId: string): Promise<MeetingRecord | undefined> {
    const row = await this.db.row<MeetingRow>(
      `SELECT ${MEETING_COLUMNS} FROM meetings WHERE device_id = $1 ORDER BY started_at DESC, id DESC LIMIT 1`,
      [deviceId],
    );
    return row && toMeeting(row);
  }

  get(id: string): Promise<MeetingRecord | undefined> {
    return get(this.db, id);
  }

  async appendSnippets(meetingId: string, items: readonly SnippetInput[], pendingCap: number): Promise<AppendResult> {
    if (items.length === 0) return { ok: true, pending: 0, firstSeq: 0 };
    return this.db.tx(async (sql): Promise<AppendResult> => {
      const lastTs = Math.max(...items.map((i) => i.ts));
      // The UPDATE locks the meeting row: appends to one meeting take their seq numbers one after the other.
      const row = await sql.row<{ last_seq: number }>(
        `UPDATE meetings SET last_seq = last_seq + $1,
             last_snippet_at = GREATEST(COALESCE(last_snippet_at, $2), $2)
           WHERE id = $3 AND status = 'open' RETURNING last_seq`,
        [items.length, lastTs, meetingId],
      );
      if (!row) return { ok: false, status: (await get(sql, meetingId))?.status ?? 'missing' };
      const firstSeq = row.last_seq - items.length + 1;
      await sql.exec(
        `INSERT INTO meeting_pending (meeting_id, seq, ts, text, speaker_id, tag)
         SELECT $1::text, * FROM unnest($2::int[], $3::bigint[], $4::text[], $5::text[], $6::text[])`,
        [
          meetingId,
          items.map((_, i) => firstSeq + i),
          items.map((i) => i.ts),
          items.map((i) => i.text),
          items.map((i) => i.speakerId ?? null),
          items.map((i) => i.tag ?? null),
        ],
      );
      let pending = await pendingCount(sql, meetingId);
      if (pending >= pendingCap) {
        await merge(sql, meetingId);
        pending = 0;
      }
      return { ok: true, pending, firstSeq };
    });
  }

  recentTexts(meetingId: string, sinceTs: number): Promise<{ text: string; ts: number }[]> {
    return this.db.rows(
      `SELECT text, ts FROM (
           SELECT seq, text, ts FROM meeting_segments WHERE meeting_id = $1 AND ts >= $2
           UNION ALL
           SELECT seq, text, ts FROM meeting_pending WHERE meeting_id = $1 AND ts >= $2
         ) t ORDER BY seq`,
      [meetingId, sinceTs],
    );
  }

  mergePending(meetingId: string): Promise<number> {
    return this.db.tx((sql) => merge(sql, meetingId));
  }

  pushCycle(meetingId: string, maxItems: number): Promise<{ items: Segment[]; total: number }> {
    return this.db.tx(async (sql) => {
      const m = await sql.row<{ pushed_seq: number }>('SELECT pushed_seq FROM meetings WHERE id = $1 FOR UPDATE', [
        meetingId,
      ]);
      if (!m) return { items: [], total: 0 };
      await merge(sql, meetingId);
      const rows = (
        await sql.rows<SegmentRow>(
          `SELECT ${SEGMENT_COLUMNS} FROM meeting_segments WHERE meeting_id = $1 AND seq > $2 ORDER BY seq DESC LIMIT $3`,
          [meetingId, m.pushed_seq, maxItems],
        )
      ).reverse();
      if (rows.length) {
        // Everything up to the newest segment counts as pushed, also what did not fit in this push.
        await sql.exec(
          'UPDATE meetings SET pushed_seq = (SELECT MAX(seq) FROM meeting_segments WHERE meeting_id = $1) WHERE id = $1',
          [meetingId],
        );
      }
      const total = await sql.row<{ n: number }>('SELECT segments_count AS n FROM meetings WHERE id = $1', [meetingId]);
      return { items: rows.map(toSegment), total: total?.n ?? 0 };
    });
  }

  beginFinalize(
    meetingId: string,
    endedAt: number,
  ): Promise<{ meeting: MeetingRecord; pendingCount: number } | undefined> {
    return this.db.tx(async (sql) => {
      const row = await sql.row<MeetingRow>(
        `UPDATE meetings SET status = 'finalizing', ended_at = COALESCE(ended_at, $1)
         WHERE id = $2 AND status IN ('open', 'finalizing') RETURNING ${MEETING_COLUMNS}`,
        [endedAt, meetingId],
      );
      if (!row) return undefined;
      return { meeting: toMeeting(row), pendingCount: await pendingCount(sql, meetingId) };
    });
  }

  async finalizingMeetings(): Promise<MeetingRecord[]> {
    const rows = await this.db.rows<MeetingRow>(
      `SELECT ${MEETING_COLUMNS} FROM meetings WHERE status = 'finalizing' ORDER BY started_at`,
    );
    return rows.map(toMeeting);
  }

  async segmentsTail(meetingId: string, afterSeq: number, maxRows: number): Promise<Segment[]> {
    const rows = await this.db.rows<SegmentRow>(
      `SELECT ${SEGMENT_COLUMNS} FROM meeting_segments WHERE meeting_id = $1 AND seq > $2 ORDER BY seq DESC LIMIT $3`,
      [meetingId, afterSeq, maxRows],
    );
    return rows.reverse().map(toSegment);
  }

  transcript(meetingId: string, offset: number, limit: number): Promise<{ items: Segment[]; total: number }> {
    return this.db.tx(async (sql) => {
      const total = await sql.row<{ n: number }>(
        `SELECT COALESCE((SELECT segments_count FROM meetings WHERE id = $1), 0)
              + (SELECT COUNT(*) FROM meeting_pending WHERE meeting_id = $1) AS n`,
        [meetingId],
      );
      const rows = await sql.rows<SegmentRow>(
        `SELECT ${SEGMENT_COLUMNS} FROM (
             SELECT ${SEGMENT_COLUMNS} FROM meeting_segments WHERE meeting_id = $1
             UNION ALL
             SELECT ${SEGMENT_COLUMNS} FROM meeting_pending WHERE meeting_id = $1
           ) t ORDER BY seq LIMIT $2 OFFSET $3`,
        [meetingId, limit, offset],
      );
      return { items: rows.map(toSegment), total: total?.n ?? 0 };
    });
  }

  addCheckpoint(meetingId: string, uptoSeq: number, summary: MeetingSummary, now: number): Promise<Checkpoint> {
    return this.db.tx(async (sql) => {
      // The meeting row's lock orders two checkpoints of one meeting (each takes the next idx).
      await sql.exec('SELECT 1 FROM meetings WHERE id = $1 FOR UPDATE', [meetingId]);
      const row = await sql.row<{ idx: number }>(
        `INSERT INTO meeting_checkpoints (meeting_id, idx, created_at, upto_seq, summary)
         SELECT $1::text, COALESCE(MAX(idx), 0) + 1, $2::bigint, $3::int, $4::text FROM meeting_checkpoints WHERE meeting_id = $1
         RETURNING idx`,
        [meetingId, now, uptoSeq, JSON.stringify(summary)],
      );
      return { idx: row!.idx, createdAt: now, uptoSeq, summary };
    });
  }

  async checkpoints(meetingId: string): Promise<Checkpoint[]> {
    const rows = await this.db.rows<CheckpointRow>(
      `SELECT ${CHECKPOINT_COLUMNS} FROM meeting_checkpoints WHERE meeting_id = $1 ORDER BY idx`,
      [meetingId],
    );
    return rows.map(toCheckpoint);
  }

  complete(
    meetingId: string,
    summary: MeetingSummary,
    meta: SummaryMeta,
    now: number,
    webhook?: NewWebhook,
  ): Promise<{ stored: StoredSummary; won: boolean }> {
    return this.db.tx(async (sql) => {
      // A second caller waits here for the first one's commit, then finds its row: one winner across nodes.
      const inserted = await sql.exec(
        `INSERT INTO meeting_summaries (meeting_id, created_at, summary, meta) VALUES ($1, $2, $3, $4)
         ON CONFLICT (meeting_id) DO NOTHING`,
        [meetingId, now, JSON.stringify(summary), JSON.stringify(meta)],
      );
      if (inserted === 0) return { stored: (await storedSummary(sql, meetingId))!, won: false };
      await sql.exec('SELECT 1 FROM meetings WHERE id = $1 FOR UPDATE', [meetingId]);
      await merge(sql, meetingId);
      await sql.exec(
        `UPDATE meetings SET status = 'done', title = $1, duration_ms = $2, bullets_length = $3,
           ended_at = COALESCE(ended_at, $4) WHERE id = $5`,
        [summary.title, meta.durationMs, summary.bulletsLength, now, meetingId],
      );
      if (webhook) await enqueueWebhookPg(sql, webhook, now);
      return { stored: { summary, meta, createdAt: now }, won: true };
    });
  }

  summary(meetingId: string): Promise<StoredSummary | undefined> {
    return storedSummary(this.db, meetingId);
  }

  async recent(filter: RecentFilter): Promise<MeetingRecord[]> {
    const where: string[] = [];
    const args: (string | number)[] = [];
    const arg = (v: string | number): string => `$${args.push(v)}`;
    const status = filter.status ?? 'done';
    if (status !== 'all') where.push(`status = ${arg(status)}`);
    if (filter.deviceId)
      where.push(`device_id ILIKE ${arg(`${likeEscape(filter.deviceId.toLowerCase())}%`)} ESCAPE '\\'`);
    if (filter.q) {
      const like = arg(`%${likeEscape(filter.q)}%`);
      where.push(
        `(title ILIKE ${like} ESCAPE '\\' OR device_id ILIKE ${like} ESCAPE '\\' OR id IN (
           SELECT meeting_id FROM meeting_segments WHERE text ILIKE ${like} ESCAPE '\\'
           UNION SELECT meeting_id FROM meeting_pending WHERE text ILIKE ${like} ESCAPE '\\'))`,
      );
    }
    if (filter.fromTs !== undefined) where.push(`started_at >= ${arg(filter.fromTs)}`);
    if (filter.toTs !== undefined) where.push(`started_at <= ${arg(filter.toTs)}`);
    const rows = await this.db.rows<MeetingRow>(
      `SELECT ${MEETING_COLUMNS} FROM meetings ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY COALESCE(ended_at, started_at) DESC, started_at DESC LIMIT ${arg(filter.limit)} OFFSET ${arg(filter.offset)}`,
      args,
    );
    return rows.map(toMeeting);
  }
}

async function get(sql: Sql, id: string): Promise<MeetingRecord | undefined> {
  const row = await sql.row<MeetingRow>(`SELECT ${MEETING_COLUMNS} FROM meetings WHERE id = $1`, [id]);
  return row && toMeeting(row);
}

async function active(sql: Sql, deviceId: string): Promise<MeetingRecord | undefined> {
  const row = await sql.row<MeetingRow>(
    `SELECT ${MEETING_COLUMNS} FROM meetings WHERE device_id = $1 AND status <> 'done'`,
    [deviceId],
  );
  return row && toMeeting(row);
}

async function pendingCount(sql: Sql, meetingId: string): Promise<number> {
  return (
    (await sql.row<{ n: number }>('SELECT COUNT(*) AS n FROM meeting_pending WHERE meeting_id = $1', [meetingId]))?.n ??
    0
  );
}

/**
 * Inside a transaction: pending → segments, keeping seq. One statement moves the rows, so two merges of one
 * meeting on two nodes cannot both move a row (the second waits on the row locks, then finds them gone).
 */
async function merge(sql: Sql, meetingId: string): Promise<number> {
  const row = await sql.row<{ n: number }>(
    `WITH moved AS (DELETE FROM meeting_pending WHERE meeting_id = $1 RETURNING meeting_id, ${SEGMENT_COLUMNS}),
          ins AS (INSERT INTO meeting_segments (meeting_id, ${SEGMENT_COLUMNS})
                  SELECT meeting_id, ${SEGMENT_COLUMNS} FROM moved RETURNING 1)
     SELECT COUNT(*) AS n FROM ins`,
    [meetingId],
  );
  const moved = row?.n ?? 0;
  if (moved > 0)
    await sql.exec('UPDATE meetings SET segments_count = segments_count + $1 WHERE id = $2', [moved, meetingId]);
  return moved;
}

async function storedSummary(sql: Sql, meetingId: string): Promise<StoredSummary | undefined> {
  const row = await sql.row<SummaryRow>(`SELECT ${SUMMARY_COLUMNS} FROM meeting_summaries WHERE meeting_id = $1`, [
    meetingId,
  ]);
  return row && toStoredSummary(row);
}
