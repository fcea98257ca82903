import { createHash, createHmac } from 'node:crypto';
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../observability/log.js';
import type { Disposer, Scope } from '../../session/scope.js';
import type { MeetingConfig } from './config.js';
import type { NewWebhook, WebhookJob, WebhookOutbox } from './outbox.js';
import { timeoutSignal } from '../../signals.js';

/**
 * Meeting webhooks: compact JSON POSTed to `meeting.webhook.url` with `X-Meeting-Signature` =
 * hex HMAC-SHA256(`meeting.webhook.secret`, body), a timeout (5 s), and one retry after a random 2–5 s.
 * Deliveries come from the durable outbox, never from the finalize flow itself, so a slow or dead receiver
 * never blocks a meeting, and a restart delivers what was left.
 */

export const SIGNATURE_HEADER = 'x-meeting-signature';
export const DELIVERY_HEADER = 'x-meeting-delivery';

export function signBody(secret: string, body: string): string {
  return createHmac('sha256', secret).update(body, 'utf8').digest('hex');
}

/** The outbox row for one payload under the webhook config in force now; undefined when no URL is set. */
export function buildWebhook(
  cfg: MeetingConfig['webhook'],
  id: string,
  meetingId: string,
  payload: unknown,
): NewWebhook | undefined {
  if (!cfg.url) return undefined;
  const body = JSON.stringify(payload);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(cfg.headers)) headers[k.toLowerCase()] = v;
  headers['content-type'] = 'application/json; charset=utf-8';
  headers[DELIVERY_HEADER] = id;
  if (cfg.secret) headers[SIGNATURE_HEADER] = signBody(cfg.secret, body);
  return { id, meetingId, url: cfg.url, headers, body, timeoutMs: cfg.timeout_ms };
}

export interface DispatcherOptions {
  /** Retry backoff bounds (one retry). */
  retryMinMs?: number;
  retryMaxMs?: number;
}

/**
 * Sends due outbox rows, one run at a time, on its own scope: `kick()` after an enqueue, a timer for the next
 * retry, `stop()` on shutdown (in-flight requests get a short grace, then are aborted and stay pending).
 */
export class WebhookDispatcher {
  #timer: Disposer | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  readonly #retryMin: number;
  readonly #retryMax: number;

  constructor(
    private readonly outbox: WebhookOutbox,
    private readonly scope: Scope,
    private readonly log: Logger,
    opts: DispatcherOptions = {},
  ) {
    this.#retryMin = opts.retryMinMs ?? 2000;
    this.#retryMax = opts.retryMaxMs ?? 5000;
  }

  /** Looks for due deliveries now (coalesced with a run in progress). */
  kick(): void {
    if (this.scope.closed) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#timer?.();
    this.#timer = undefined;
    this.#running = this.scope
      .run('webhooks', () => this.#drain())
      .finally(() => {
        this.#running = undefined;
        if (this.#again) {
          this.#again = false;
          this.kick();
        } else void this.#schedule();
      });
  }

  /** Waits up to `graceMs` for deliveries in flight, then aborts the rest (they stay in the outbox). */
  async stop(graceMs: number): Promise<void> {
    this.#timer?.();
    if (this.#running) await Promise.race([this.#running, new Promise((r) => setTimeout(r, graceMs).unref())]);
    this.scope.close();
  }

  async #schedule(): Promise<void> {
    if (this.scope.closed) return;
    const at = await this.outbox.nextDueAt();
    if (at === undefined || this.scope.closed) return;
    this.#timer?.();
    this.#timer = this.scope.timeout(Math.max(0, at - Date.now()), () => this.kick());
  }

  async #drain(): Promise<void> {
    for (;;) {
      const jobs = await this.outbox.due(Date.now(), 16);
      if (jobs.length === 0 || this.scope.closed) return;
      await Promise.all(jobs.map((j) => this.#deliver(j)));
    }
  }

  async #deliver(job: WebhookJob): Promise<void> {
    const signal = timeoutSignal(job.timeoutMs, this.scope.signal);
    const facts = {
      id: job.id,
      meeting: job.meetingId,
      body_len: Buffer.byteLength(job.body),
      sha256: createHash('sha256').update(job.body).digest('hex').slice(0, 8),
    };
    let error: string;
    try {
      const res = await fetch(job.url, {
        method: 'POST',
        headers: job.headers,
        body: job.body,
        signal,
        redirect: 'manual',
      });
      // Only the status matters; a body that fails to cancel changes nothing about the delivery.
      await res.body?.cancel().catch(() => undefined);
      if (res.ok) {
        await this.outbox.delivered(job.id, Date.now());
        this.log.info(
          { ...facts, result: job.attempts === 0 ? 'ok' : 'retry_ok', status: res.status },
          'meeting webhook delivered',
        );
        return;
      }
      error = `HTTP ${res.status}`;
    } catch (err) {
      // Shutdown: not an attempt; the row stays pending for the next start.
      if (this.scope.signal.aborted) return;
      error = signal.aborted ? `no answer within ${job.timeoutMs} ms` : errorMessage(err);
    }
    if (job.attempts === 0) {
      const retryAt = Date.now() + this.#retryMin + Math.random() * (this.#retryMax - this.#retryMin);
      await this.outbox.failed(job.id, error, retryAt);
      this.log.warn(
        { ...facts, result: 'retry', error, retryInMs: Math.round(retryAt - Date.now()) },
        'meeting webhook failed; retrying once',
      );
    } else {
      await this.outbox.failed(job.id, error, undefined);
      this.log.error({ ...facts, result: 'fail', error }, 'meeting webhook failed after its retry');
    }
  }
}
