import type { Db } from '../../store/sqlite.js';

/**
 * The durable webhook outbox (table `meeting_webhook_outbox`, created by the meeting migrations in store.ts).
 * A delivery is written in the same transaction as the summary it reports, then sent later by the dispatcher
 * (webhook.ts); a restart picks up what was not delivered. Rows keep what was decided when the summary was
 * stored (URL, headers with the signature, body), so a later config change does not alter a queued delivery.
 */

export interface NewWebhook {
  id: string;
  meetingId: string;
  url: string;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
}

export interface WebhookJob extends NewWebhook {
  /** Failed attempts so far. */
  attempts: number;
  nextAttemptAt: number;
}

export interface WebhookOutbox {
  /** Pending deliveries due at `now`, oldest first. */
  due(now: number, limit: number): Promise<WebhookJob[]>;
  /** When the next pending delivery is due, if any. */
  nextDueAt(): Promise<number | undefined>;
  delivered(id: string, now: number): Promise<void>;
  /** Records a failed attempt; `retryAt` undefined = give up (status failed). */
  failed(id: string, error: string, retryAt: number | undefined): Promise<void>;
  /** Status of one delivery (tests, API). */
  status(id: string): Promise<{ status: 'pending' | 'delivered' | 'failed'; attempts: number } | undefined>;
  /** The delivery state of a meeting's webhook (the newest one), or null when it has none (no webhook set). */
  ofMeeting(meetingId: string): Promise<WebhookDelivery | null>;
}

export interface WebhookDelivery {
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  deliveredAt: number | null;
  lastError: string | null;
}

/** Inside the caller's transaction. */
export function enqueueWebhook(db: Db, w: NewWebhook, now: number): void {
  db.prepare(
    "INSERT INTO meeting_webhook_outbox (id, meeting_id, url, headers, body, timeout_ms, attempts, status, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, 0, 'pending', ?, ?)",
  ).run(w.id, w.meetingId, w.url, JSON.stringify(w.headers), w.body, w.timeoutMs, now, now);
}

/** A stored outbox row, as both engines' `meeting_webhook_outbox` tables hold it. */
export interface OutboxRow {
  id: string;
  meeting_id: string;
  url: string;
  headers: string;
  body: string;
  timeout_ms: number;
  attempts: number;
  next_attempt_at: number;
}

export function toWebhookJob(r: OutboxRow): WebhookJob {
  return {
    id: r.id,
    meetingId: r.meeting_id,
    url: r.url,
    headers: JSON.parse(r.headers) as Record<string, string>,
    body: r.body,
    timeoutMs: r.timeout_ms,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
  };
}

export class SqliteWebhookOutbox implements WebhookOutbox {
  constructor(private readonly db: Db) {}

  async due(now: number, limit: number): Promise<WebhookJob[]> {
    return this.db
      .prepare<[number, number], OutboxRow>(
        "SELECT id, meeting_id, url, headers, body, timeout_ms, attempts, next_attempt_at FROM meeting_webhook_outbox WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, created_at LIMIT ?",
      )
      .all(now, limit)
      .map(toWebhookJob);
  }

  async nextDueAt(): Promise<number | undefined> {
    return (
      this.db
        .prepare<[], { t: number | null }>(
          "SELECT MIN(next_attempt_at) AS t FROM meeting_webhook_outbox WHERE status = 'pending'",
        )
        .get()?.t ?? undefined
    );
  }

  async delivered(id: string, now: number): Promise<void> {
    this.db
      .prepare(
        "UPDATE meeting_webhook_outbox SET status = 'delivered', delivered_at = ?, last_error = NULL WHERE id = ?",
      )
      .run(now, id);
  }

  async failed(id: string, error: string, retryAt: number | undefined): Promise<void> {
    this.db
      .prepare(
        `UPDATE meeting_webhook_outbox SET attempts = attempts + 1, last_error = ?,
           status = CASE WHEN ? IS NULL THEN 'failed' ELSE 'pending' END,
           next_attempt_at = COALESCE(?, next_attempt_at)
         WHERE id = ?`,
      )
      .run(error.slice(0, 500), retryAt ?? null, retryAt ?? null, id);
  }

  async status(id: string): Promise<{ status: 'pending' | 'delivered' | 'failed'; attempts: number } | undefined> {
    return this.db
      .prepare<[string], { status: 'pending' | 'delivered' | 'failed'; attempts: number }>(
        'SELECT status, attempts FROM meeting_webhook_outbox WHERE id = ?',
      )
      .get(id);
  }

  async ofMeeting(meetingId: string): Promise<WebhookDelivery | null> {
    return (
      this.db
        .prepare<[string], WebhookDelivery>(
          `SELECT status, attempts, delivered_at AS deliveredAt, last_error AS lastError FROM meeting_webhook_outbox
           WHERE meeting_id = ? ORDER BY created_at DESC LIMIT 1`,
        )
        .get(meetingId) ?? null
    );
  }
}
