import type { Statement } from 'better-sqlite3';
import { applyMigrations, type Db } from '../../store/sqlite.js';
import { enqueueWebhook, type NewWebhook } from './outbox.js';
import type { MeetingSummary, SummarySource } from './summary.js';

/**
 * Where meetings live (D16): meetings, their merged segments, the snippets not yet merged (pending), checkpoints,
 * the one summary per meeting, and (outbox.ts) the webhook outbox. Every method is one atomic operation, so the
 * decisions "still open?", "who stored the summary first?" are taken inside a transaction and two callers cannot
 * both win. The methods are async so that a PostgreSQL implementation (shared store of several nodes) can satisfy
 * the same interface; the SQLite one below answers synchronously inside the promise. The SQL sticks to what both
 * engines accept (partial unique index, ON CONFLICT DO NOTHING, RETURNING, LIMIT/OFFSET).
 *
 * Sequence numbers: a meeting hands out `seq` from one counter (`last_seq`), so pending snippets and segments
 * share one order and a snippet keeps its number when it is merged.
 */

export type MeetingStatus = 'open' | 'finalizing' | 'done';

export interface MeetingRecord {
  id: string;
  deviceId: string;
  /** `session_id` of the connection that opened it. */
  sessionId: string;
  startedAt: number;
  endedAt: number | null;
  lastSnippetAt: number | null;
  status: MeetingStatus;
  title: string | null;
  /** Merged segments (pending snippets not included). */
  segmentsCount: number;
  /** Lines taken so far, merged or pending: every snippet takes the next seq and none is ever removed. */
  linesCount: number;
  durationMs: number | null;
  bulletsLength: number | null;
}

export interface SnippetInput {
  ts: number;
  text: string;
  speakerId?: string;
  tag?: string;
}

export interface Segment extends SnippetInput {
  seq: number;
}

/** What a summary was made from and how: stored with it, shown by the API, logged as the metrics line. */
export interface SummaryMeta {
  source: SummarySource;
  llmElapsedMs: number;
  model?: string;
  durationMs: number;
  segmentsCount: number;
  checkpointCount: number;
  emptyBullets: boolean;
  industry: string;
  scenario: string;
}

export interface StoredSummary {
  summary: MeetingSummary;
  meta: SummaryMeta;
  createdAt: number;
}

export interface Checkpoint {
  idx: number;
  createdAt: number;
  /** Last segment seq it covers. */
  uptoSeq: number;
  summary: MeetingSummary;
}

export interface RecentFilter {
  limit: number;
  offset: number;
  /** Case-insensitive prefix (or full id). */
  deviceId?: string;
  /** Start time bounds, ms. */
  fromTs?: number;
  toTs?: number;
  /** Default `done` (finished meetings, as the fork listed them). */
  status?: MeetingStatus | 'all';
  /** Case-insensitive text found in the title, the device id or the transcript. */
  q?: string;
}

export type AppendResult =
  { ok: true; pending: number; firstSeq: number } | { ok: false; status: MeetingStatus | 'missing' };

export interface MeetingStore {
  /** The device's open meeting, or a new one with this id: at most one active (open/finalizing) meeting per device. */
  openMeeting(
    deviceId: string,
    sessionId: string,
    id: string,
    now: number,
  ): Promise<{ meeting: MeetingRecord; created: boolean }>;
  /** The device's open or finalizing meeting. */
  activeMeeting(deviceId: string): Promise<MeetingRecord | undefined>;
  /** The device's most recently started meeting, whatever its status. */
  latestMeeting(deviceId: string): Promise<MeetingRecord | undefined>;
  get(id: string): Promise<MeetingRecord | undefined>;
  /** Appends snippets as pending, only while the meeting is open. Beyond `pendingCap` pending, they are merged at once. */
  appendSnippets(meetingId: string, items: readonly SnippetInput[], pendingCap: number): Promise<AppendResult>;
  /** Texts (segments and pending) with `ts >= sinceTs`, oldest first: seeds the dedup window after a restart. */
  recentTexts(meetingId: string, sinceTs: number): Promise<{ text: string; ts: number }[]>;
  /** Moves pending snippets into segments; returns how many moved. */
  mergePending(meetingId: string): Promise<number>;
  /** One transcript push: merge, then the segments not pushed yet (the newest `maxItems`), and the total. */
  pushCycle(meetingId: string, maxItems: number): Promise<{ items: Segment[]; total: number }>;
  /**
   * open → finalizing, with its end time (kept when it was finalizing already: a finalize resumed after a restart).
   * Undefined when the meeting is done or missing.
   */
  beginFinalize(
    meetingId: string,
    endedAt: number,
  ): Promise<{ meeting: MeetingRecord; pendingCount: number } | undefined>;
  /** Meetings left `finalizing` (a crash or shutdown during finalize). */
  finalizingMeetings(): Promise<MeetingRecord[]>;
  /** Merged segments with `seq > afterSeq`, the newest `maxRows` of them, oldest first. */
  segmentsTail(meetingId: string, afterSeq: number, maxRows: number): Promise<Segment[]>;
  /** A page of the transcript: segments, then pending snippets, by seq. */
  transcript(meetingId: string, offset: number, limit: number): Promise<{ items: Segment[]; total: number }>;
  addCheckpoint(meetingId: string, uptoSeq: number, summary: MeetingSummary, now: number): Promise<Checkpoint>;
  checkpoints(meetingId: string): Promise<Checkpoint[]>;
  /**
   * Stores the one summary of a meeting and marks it done, with its webhook in the same transaction. The first
   * caller wins; a later one gets the stored summary and `won: false`.
   */
  complete(
    meetingId: string,
    summary: MeetingSummary,
    meta: SummaryMeta,
    now: number,
    webhook?: NewWebhook,
  ): Promise<{ stored: StoredSummary; won: boolean }>;
  summary(meetingId: string): Promise<StoredSummary | undefined>;
  recent(filter: RecentFilter): Promise<MeetingRecord[]>;
}

export const MEETING_MIGRATIONS: readonly string[] = [
  `CREATE TABLE meetings (
     id              TEXT PRIMARY KEY,
     device_id       TEXT NOT NULL,
     session_id      TEXT NOT NULL,
     started_at      BIGINT NOT NULL,
     ended_at        BIGINT,
     last_snippet_at BIGINT,
     status          TEXT NOT NULL CHECK (status IN ('open', 'finalizing', 'done')),
     title           TEXT,
     last_seq        INTEGER NOT NULL DEFAULT 0,
     pushed_seq      INTEGER NOT NULL DEFAULT 0,
     segments_count  INTEGER NOT NULL DEFAULT 0,
     duration_ms     BIGINT,
     bullets_length  INTEGER
   );
   CREATE UNIQUE INDEX meetings_one_active_per_device ON meetings(device_id) WHERE status <> 'done';
   CREATE INDEX meetings_by_device ON meetings(device_id, started_at);
   CREATE INDEX meetings_by_start ON meetings(status, started_at);
   CREATE TABLE meeting_segments (
     meeting_id TEXT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,
     seq        INTEGER NOT NULL,
     ts         BIGINT NOT NULL,
     text       TEXT NOT NULL,
     speaker_id TEXT,
     tag        TEXT,
     PRIMARY KEY (meeting_id, seq)
   );
   CREATE TABLE meeting_pending (
     meeting_id TEXT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,
     seq        INTEGER NOT NULL,
     ts         BIGINT NOT NULL,
     text       TEXT NOT NULL,
     speaker_id TEXT,
     tag        TEXT,
     PRIMARY KEY (meeting_id, seq)
   );
   CREATE TABLE meeting_checkpoints (
     meeting_id TEXT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,
     idx        INTEGER NOT NULL,
     created_at BIGINT NOT NULL,
     upto_seq   INTEGER NOT NULL,
     summary    TEXT NOT NULL,
     PRIMARY KEY (meeting_id, idx)
   );
   CREATE TABLE meeting_summaries (
     meeting_id TEXT PRIMARY KEY REFERENCES meetings(id) ON DELETE CASCADE,
     created_at BIGINT NOT NULL,
     summary    TEXT NOT NULL,
     meta       TEXT NOT NULL
   );
   CREATE TABLE meeting_webhook_outbox (
     id              TEXT PRIMARY KEY,
     meeting_id      TEXT NOT NULL,
     url             TEXT NOT NULL,
     headers         TEXT NOT NULL,
     body            TEXT NOT NULL,
     timeout_ms      INTEGER NOT NULL,
     attempts        INTEGER NOT NULL DEFAULT 0,
     status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
     next_attempt_at BIGINT NOT NULL,
     created_at      BIGINT NOT NULL,
     delivered_at    BIGINT,
     last_error      TEXT
   );
   CREATE INDEX meeting_webhook_due ON meeting_webhook_outbox(status, next_attempt_at);`,
];

/** A `meetings` row as both engines return it (times as numbers). */
export interface MeetingRow {
  id: string;
  device_id: string;
  session_id: string;
  started_at: number;
  ended_at: number | null;
  last_snippet_at: number | null;
  status: MeetingStatus;
  title: string | null;
  segments_count: number;
  last_seq: number;
  duration_ms: number | null;
  bullets_length: number | null;
}

export interface SegmentRow {
  seq: number;
  ts: number;
  text: string;
  speaker_id: string | null;
  tag: string | null;
}

export const MEETING_COLUMNS =
  'id, device_id, session_id, started_at, ended_at, last_snippet_at, status, title, segments_count, last_seq, duration_ms, bullets_length';
export const SEGMENT_COLUMNS = 'seq, ts, text, speaker_id, tag';

export function toMeeting(r: MeetingRow): MeetingRecord {
  return {
    id: r.id,
    deviceId: r.device_id,
    sessionId: r.session_id,
    startedAt: r.started_at,
    endedAt: r.ended_at,
    lastSnippetAt: r.last_snippet_at,
    status: r.status,
    title: r.title,
    segmentsCount: r.segments_count,
    linesCount: r.last_seq,
    durationMs: r.duration_ms,
    bulletsLength: r.bullets_length,
  };
}

export function toSegment(r: SegmentRow): Segment {
  return {
    seq: r.seq,
    ts: r.ts,
    text: r.text,
    ...(r.speaker_id ? { speakerId: r.speaker_id } : {}),
    ...(r.tag ? { tag: r.tag } : {}),
  };
}

/** A `meeting_checkpoints` row as both stores read it (`CHECKPOINT_COLUMNS`). */
export interface CheckpointRow {
  idx: number;
  created_at: number;
  upto_seq: number;
  summary: string;
}
export const CHECKPOINT_COLUMNS = 'idx, created_at, upto_seq, summary';

export function toCheckpoint(r: CheckpointRow): Checkpoint {
  return { idx: r.idx, createdAt: r.created_at, uptoSeq: r.upto_seq, summary: JSON.parse(r.summary) as MeetingSummary };
}

/** A `meeting_summaries` row as both stores read it (`SUMMARY_COLUMNS`). */
export interface SummaryRow {
  summary: string;
  meta: string;
  created_at: number;
}
export const SUMMARY_COLUMNS = 'summary, meta, created_at';

export function toStoredSummary(r: SummaryRow): StoredSummary {
  return {
    summary: JSON.parse(r.summary) as MeetingSummary,
    meta: JSON.parse(r.meta) as SummaryMeta,
    createdAt: r.created_at,
  };
}

/** `s` with LIKE's wildcards escaped (for `ESCAPE '\\'`). */
export function likeEscape(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** `LIKE` pattern for a literal prefix. */
function likePrefix(prefix: string): string {
  return `${likeEscape(prefix)}%`;
}

export class SqliteMeetingStore implements MeetingStore {
  /** Prepared statements, compiled once per store (snippet ingestion is the hot path). */
  readonly #statements = new Map<string, Statement>();

  constructor(private readonly db: Db) {
    applyMigrations(db, 'meeting', MEETING_MIGRATIONS);
  }

  #sql<P extends unknown[] = unknown[], R = unknown>(sql: string): Statement<P, R> {
    let st = this.#statements.get(sql);
    if (!st) this.#statements.set(sql, (st = this.db.prepare(sql)));
    return st as unknown as Statement<P, R>;
  }

  async openMeeting(
    deviceId: string,
    sessionId: string,
    id: string,
    now: number,
  ): Promise<{ meeting: MeetingRecord; created: boolean }> {
    return this.db.transaction(() => {
      const existing = this.#active(deviceId);
      if (existing?.status === 'open') return { meeting: existing, created: false };
      if (existing) throw new Error(`meeting ${existing.id} of ${deviceId} is still finalizing`);
      this.#sql("INSERT INTO meetings (id, device_id, session_id, started_at, status) VALUES (?, ?, ?, ?, 'open')").run(
        id,
        deviceId,
        sessionId,
        now,
      );
      return { meeting: this.#get(id)!, created: true };
    })();
  }

  async activeMeeting(deviceId: string): Promise<MeetingRecord | undefined> {
    return this.#active(deviceId);
  }

  async latestMeeting(deviceId: string): Promise<MeetingRecord | undefined> {
    const row = this.#sql<[string], MeetingRow>(
      `SELECT ${MEETING_COLUMNS} FROM meetings WHERE device_id = ? ORDER BY started_at DESC, id DESC LIMIT 1`,
    ).get(deviceId);
    return row && toMeeting(row);
  }

  async get(id: string): Promise<MeetingRecord | undefined> {
    return this.#get(id);
  }

  async appendSnippets(meetingId: string, items: readonly SnippetInput[], pendingCap: number): Promise<AppendResult> {
    if (items.length === 0) return { ok: true, pending: 0, firstSeq: 0 };
    return this.db.transaction((): AppendResult => {
      const lastTs = Math.max(...items.map((i) => i.ts));
      const row = this.#sql<[number, number, number, string], { last_seq: number }>(
        `UPDATE meetings SET last_seq = last_seq + ?,
             last_snippet_at = CASE WHEN last_snippet_at IS NULL OR last_snippet_at < ? THEN ? ELSE last_snippet_at END
           WHERE id = ? AND status = 'open' RETURNING last_seq`,
      ).get(items.length, lastTs, lastTs, meetingId);
      if (!row) return { ok: false, status: this.#get(meetingId)?.status ?? 'missing' };
      const firstSeq = row.last_seq - items.length + 1;
      const insert = this.#sql(
        'INSERT INTO meeting_pending (meeting_id, seq, ts, text, speaker_id, tag) VALUES (?, ?, ?, ?, ?, ?)',
      );
      items.forEach((it, i) =>
        insert.run(meetingId, firstSeq + i, it.ts, it.text, it.speakerId ?? null, it.tag ?? null),
      );
      let pending = this.#pendingCount(meetingId);
      if (pending >= pendingCap) {
        this.#merge(meetingId);
        pending = 0;
      }
      return { ok: true, pending, firstSeq };
    })();
  }

  async recentTexts(meetingId: string, sinceTs: number): Promise<{ text: string; ts: number }[]> {
    return this.#sql<[string, number, string, number], { text: string; ts: number }>(
      `SELECT text, ts FROM (
           SELECT seq, text, ts FROM meeting_segments WHERE meeting_id = ? AND ts >= ?
           UNION ALL
           SELECT seq, text, ts FROM meeting_pending WHERE meeting_id = ? AND ts >= ?
         ) t ORDER BY seq`,
    ).all(meetingId, sinceTs, meetingId, sinceTs);
  }

  async mergePending(meetingId: string): Promise<number> {
    return this.db.transaction(() => this.#merge(meetingId))();
  }

  async pushCycle(meetingId: string, maxItems: number): Promise<{ items: Segment[]; total: number }> {
    return this.db.transaction(() => {
      this.#merge(meetingId);
      const m = this.#sql<[string], { pushed_seq: number; segments_count: number }>(
        'SELECT pushed_seq, segments_count FROM meetings WHERE id = ?',
      ).get(meetingId);
      if (!m) return { items: [], total: 0 };
      const rows = this.#sql<[string, number, number], SegmentRow>(
        `SELECT ${SEGMENT_COLUMNS} FROM meeting_segments WHERE meeting_id = ? AND seq > ? ORDER BY seq DESC LIMIT ?`,
      )
        .all(meetingId, m.pushed_seq, maxItems)
        .reverse();
      const last = rows.at(-1);
      if (last) {
        // Everything up to the newest segment counts as pushed, also what did not fit in this push.
        const max =
          this.#sql<[string], { s: number | null }>(
            'SELECT MAX(seq) AS s FROM meeting_segments WHERE meeting_id = ?',
          ).get(meetingId)?.s ?? last.seq;
        this.#sql('UPDATE meetings SET pushed_seq = ? WHERE id = ?').run(max, meetingId);
      }
      return { items: rows.map(toSegment), total: m.segments_count };
    })();
  }

  async beginFinalize(
    meetingId: string,
    endedAt: number,
  ): Promise<{ meeting: MeetingRecord; pendingCount: number } | undefined> {
    return this.db.transaction(() => {
      const changed = this.#sql(
        "UPDATE meetings SET status = 'finalizing', ended_at = COALESCE(ended_at, ?) WHERE id = ? AND status IN ('open', 'finalizing')",
      ).run(endedAt, meetingId).changes;
      if (changed === 0) return undefined;
      return { meeting: this.#get(meetingId)!, pendingCount: this.#pendingCount(meetingId) };
    })();
  }

  async finalizingMeetings(): Promise<MeetingRecord[]> {
    return this.#sql<[], MeetingRow>(
      `SELECT ${MEETING_COLUMNS} FROM meetings WHERE status = 'finalizing' ORDER BY started_at`,
    )
      .all()
      .map(toMeeting);
  }

  async segmentsTail(meetingId: string, afterSeq: number, maxRows: number): Promise<Segment[]> {
    return this.#sql<[string, number, number], SegmentRow>(
      `SELECT ${SEGMENT_COLUMNS} FROM meeting_segments WHERE meeting_id = ? AND seq > ? ORDER BY seq DESC LIMIT ?`,
    )
      .all(meetingId, afterSeq, maxRows)
      .reverse()
      .map(toSegment);
  }

  async transcript(meetingId: string, offset: number, limit: number): Promise<{ items: Segment[]; total: number }> {
    return this.db.transaction(() => {
      const total =
        (this.#sql<[string], { n: number }>('SELECT segments_count AS n FROM meetings WHERE id = ?').get(meetingId)
          ?.n ?? 0) + this.#pendingCount(meetingId);
      const items = this.#sql<[string, string, number, number], SegmentRow>(
        `SELECT ${SEGMENT_COLUMNS} FROM (
             SELECT ${SEGMENT_COLUMNS} FROM meeting_segments WHERE meeting_id = ?
             UNION ALL
             SELECT ${SEGMENT_COLUMNS} FROM meeting_pending WHERE meeting_id = ?
           ) t ORDER BY seq LIMIT ? OFFSET ?`,
      )
        .all(meetingId, meetingId, limit, offset)
        .map(toSegment);
      return { items, total };
    })();
  }

  async addCheckpoint(meetingId: string, uptoSeq: number, summary: MeetingSummary, now: number): Promise<Checkpoint> {
    return this.db.transaction(() => {
      const idx =
        (this.#sql<[string], { n: number | null }>(
          'SELECT MAX(idx) AS n FROM meeting_checkpoints WHERE meeting_id = ?',
        ).get(meetingId)?.n ?? 0) + 1;
      this.#sql(
        'INSERT INTO meeting_checkpoints (meeting_id, idx, created_at, upto_seq, summary) VALUES (?, ?, ?, ?, ?)',
      ).run(meetingId, idx, now, uptoSeq, JSON.stringify(summary));
      return { idx, createdAt: now, uptoSeq, summary };
    })();
  }

  async checkpoints(meetingId: string): Promise<Checkpoint[]> {
    return this.#sql<[string], CheckpointRow>(
      `SELECT ${CHECKPOINT_COLUMNS} FROM meeting_checkpoints WHERE meeting_id = ? ORDER BY idx`,
    )
      .all(meetingId)
      .map(toCheckpoint);
  }

  async complete(
    meetingId: string,
    summary: MeetingSummary,
    meta: SummaryMeta,
    now: number,
    webhook?: NewWebhook,
  ): Promise<{ stored: StoredSummary; won: boolean }> {
    return this.db.transaction(() => {
      const inserted = this.#sql(
        'INSERT INTO meeting_summaries (meeting_id, created_at, summary, meta) VALUES (?, ?, ?, ?) ON CONFLICT (meeting_id) DO NOTHING',
      ).run(meetingId, now, JSON.stringify(summary), JSON.stringify(meta)).changes;
      if (inserted === 0) return { stored: this.#summary(meetingId)!, won: false };
      this.#merge(meetingId);
      this.#sql(
        "UPDATE meetings SET status = 'done', title = ?, duration_ms = ?, bullets_length = ?, ended_at = COALESCE(ended_at, ?) WHERE id = ?",
      ).run(summary.title, meta.durationMs, summary.bulletsLength, now, meetingId);
      if (webhook) enqueueWebhook(this.db, webhook, now);
      return { stored: { summary, meta, createdAt: now }, won: true };
    })();
  }

  async summary(meetingId: string): Promise<StoredSummary | undefined> {
    return this.#summary(meetingId);
  }

  async recent(filter: RecentFilter): Promise<MeetingRecord[]> {
    const where: string[] = [];
    const args: (string | number)[] = [];
    const status = filter.status ?? 'done';
    if (status !== 'all') {
      where.push('status = ?');
      args.push(status);
    }
    if (filter.deviceId) {
      where.push("device_id LIKE ? ESCAPE '\\'");
      args.push(likePrefix(filter.deviceId.toLowerCase()));
    }
    if (filter.q) {
      const like = `%${likeEscape(filter.q)}%`;
      where.push(
        `(title LIKE ? ESCAPE '\\' OR device_id LIKE ? ESCAPE '\\' OR id IN (
           SELECT meeting_id FROM meeting_segments WHERE text LIKE ? ESCAPE '\\'
           UNION SELECT meeting_id FROM meeting_pending WHERE text LIKE ? ESCAPE '\\'))`,
      );
      args.push(like, like, like, like);
    }
    if (filter.fromTs !== undefined) {
      where.push('started_at >= ?');
      args.push(filter.fromTs);
    }
    if (filter.toTs !== undefined) {
      where.push('started_at <= ?');
      args.push(filter.toTs);
    }
    const sql = `SELECT ${MEETING_COLUMNS} FROM meetings ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
                 ORDER BY COALESCE(ended_at, started_at) DESC, started_at DESC LIMIT ? OFFSET ?`;
    return this.#sql<(string | number)[], MeetingRow>(sql)
      .all(...args, filter.limit, filter.offset)
      .map(toMeeting);
  }

  #get(id: string): MeetingRecord | undefined {
    const row = this.#sql<[string], MeetingRow>(`SELECT ${MEETING_COLUMNS} FROM meetings WHERE id = ?`).get(id);
    return row && toMeeting(row);
  }

  #active(deviceId: string): MeetingRecord | undefined {
    const row = this.#sql<[string], MeetingRow>(
      `SELECT ${MEETING_COLUMNS} FROM meetings WHERE device_id = ? AND status <> 'done'`,
    ).get(deviceId);
    return row && toMeeting(row);
  }

  #pendingCount(meetingId: string): number {
    return (
      this.#sql<[string], { n: number }>('SELECT COUNT(*) AS n FROM meeting_pending WHERE meeting_id = ?').get(
        meetingId,
      )?.n ?? 0
    );
  }

  /** Inside a transaction: pending → segments, keeping seq. */
  #merge(meetingId: string): number {
    const moved = this.#sql(
      `INSERT INTO meeting_segments (meeting_id, ${SEGMENT_COLUMNS}) SELECT meeting_id, ${SEGMENT_COLUMNS} FROM meeting_pending WHERE meeting_id = ?`,
    ).run(meetingId).changes;
    if (moved === 0) return 0;
    this.#sql('DELETE FROM meeting_pending WHERE meeting_id = ?').run(meetingId);
    this.#sql('UPDATE meetings SET segments_count = segments_count + ? WHERE id = ?').run(moved, meetingId);
    return moved;
  }

  #summary(meetingId: string): StoredSummary | undefined {
    const row = this.#sql<[string], SummaryRow>(
      `SELECT ${SUMMARY_COLUMNS} FROM meeting_summaries WHERE meeting_id = ?`,
    ).get(meetingId);
    return row && toStoredSummary(row);
  }
}

/** What the workflow feature imports from a meeting (`POST /supie/workflow/import-from-meeting`). */
export interface MeetingSummaryRef {
  meetingId: string;
  deviceId: string;
  title: string;
  actions: string[];
  nextSteps: string[];
  endedAt: number | null;
}

/**
 * The title, actions and next steps of a finished meeting, for other features: by id, or without an id the most
 * recently finished meeting (optionally only among devices whose id starts with `devicePrefix`). Undefined when
 * there is no such finished meeting.
 */
export async function meetingSummaryFor(
  store: MeetingStore,
  id?: string,
  opts: { devicePrefix?: string } = {},
): Promise<MeetingSummaryRef | undefined> {
  let meeting: MeetingRecord | undefined;
  if (id) meeting = await store.get(id);
  else
    [meeting] = await store.recent({
      limit: 1,
      offset: 0,
      status: 'done',
      ...(opts.devicePrefix ? { deviceId: opts.devicePrefix } : {}),
    });
  if (!meeting || meeting.status !== 'done') return undefined;
  const stored = await store.summary(meeting.id);
  if (!stored) return undefined;
  return {
    meetingId: meeting.id,
    deviceId: meeting.deviceId,
    title: stored.summary.title,
    actions: stored.summary.actions,
    nextSteps: stored.summary.nextSteps,
    endedAt: meeting.endedAt,
  };
}
