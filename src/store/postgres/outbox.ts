import {
  toWebhookJob,
  type OutboxRow,
  type WebhookDelivery,
  type WebhookJob,
  type WebhookOutbox,
} from '../../features/meeting/outbox.js';
import type { PgDb } from './pool.js';

/**
 * The meeting webhook outbox in PostgreSQL, drained by one node at a time: `due` claims rows with
 * `FOR UPDATE SKIP LOCKED` and moves their `next_attempt_at` past the request's timeout (a lease), so other nodes
 * skip them while this one delivers. A node killed mid-delivery leaves the row pending: once its lease runs out,
 * any node delivers it (at least once, as the SQLite outbox after a crash).
 */

/** Beyond the request's own timeout, the time a claim holds (the answer, the status update). */
const LEASE_MARGIN_MS = 30_000;

export class PgWebhookOutbox implements WebhookOutbox {
  constructor(
    private readonly db: PgDb,
    private readonly nodeId: string,
  ) {}

  async due(now: number, limit: number): Promise<WebhookJob[]> {
    const rows = await this.db.rows<OutboxRow>(
      `WITH claimed AS (
         SELECT id, next_attempt_at FROM meeting_webhook_outbox
         WHERE status = 'pending' AND next_attempt_at <= $1
         ORDER BY next_attempt_at, created_at LIMIT $2
         FOR UPDATE SKIP LOCKED)
       UPDATE meeting_webhook_outbox o SET next_attempt_at = $1 + o.timeout_ms + $3, claimed_by = $4
       FROM claimed WHERE o.id = claimed.id
       RETURNING o.id, o.meeting_id, o.url, o.headers, o.body, o.timeout_ms, o.attempts,
                 claimed.next_attempt_at`,
      [now, limit, LEASE_MARGIN_MS, this.nodeId],
    );
    return rows.sort((a, b) => a.next_attempt_at - b.next_attempt_at).map(toWebhookJob);
  }

  async nextDueAt(): Promise<number | undefined> {
    const row = await this.db.row<{ t: number | null }>(
      "SELECT MIN(next_attempt_at) AS t FROM meeting_webhook_outbox WHERE status = 'pending'",
    );
    return row?.t ?? undefined;
  }

  async delivered(id: string, now: number): Promise<void> {
    await this.db.exec(
      "UPDATE meeting_webhook_outbox SET status = 'delivered', delivered_at = $1, last_error = NULL WHERE id = $2",
      [now, id],
    );
  }

  async failed(id: string, error: string, retryAt: number | undefined): Promise<void> {
    await this.db.exec(
      `UPDATE meeting_webhook_outbox SET attempts = attempts + 1, last_error = $1,
         status = CASE WHEN $2::bigint IS NULL THEN 'failed' ELSE 'pending' END,
         next_attempt_at = COALESCE($2::bigint, next_attempt_at)
       WHERE id = $3`,
      [error.slice(0, 500), retryAt ?? null, id],
    );
  }

  async status(id: string): Promise<{ status: 'pending' | 'delivered' | 'failed'; attempts: number } | undefined> {
    return this.db.row('SELECT status, attempts FROM meeting_webhook_outbox WHERE id = $1', [id]);
  }

  async ofMeeting(meetingId: string): Promise<WebhookDelivery | null> {
    return (
      (await this.db.row<WebhookDelivery>(
        `SELECT status, attempts, delivered_at AS "deliveredAt", last_error AS "lastError" FROM meeting_webhook_outbox
         WHERE meeting_id = $1 ORDER BY created_at DESC LIMIT 1`,
        [meetingId],
      )) ?? null
    );
  }
}
