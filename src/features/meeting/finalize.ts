import { randomUUID } from 'node:crypto';
import type { Logger } from '../../observability/log.js';
import type { Scope } from '../../session/scope.js';
import type { MeetingConfig } from './config.js';
import { FINAL_TRANSCRIPT_SEGMENTS } from './limits.js';
import type { MeetingStore, Segment, StoredSummary } from './store.js';
import type { Summarizer } from './summarizer.js';
import { emptySummary, type MeetingSummary } from './summary.js';
import { buildWebhook, type WebhookDispatcher } from './webhook.js';

/**
 * Finalize (D18, seed #14): acknowledged at once, one summary per meeting whatever the number of concurrent or
 * repeated finalize requests, progress events, the final transcript, broadcast and the webhook. The work runs on
 * the feature's scope, not the connection's: the device may disconnect or hand over meanwhile and still gets the
 * summary on its current route. A shutdown in the middle leaves the meeting `finalizing`; `resume()` at the next
 * start finishes it (the store's unique summary row keeps it single).
 */

export type Json = { type: string } & Record<string, unknown>;

export interface FinalizerDeps {
  store: MeetingStore;
  summarizer: Summarizer;
  dispatcher: WebhookDispatcher;
  config: () => MeetingConfig;
  /** Sends to the device wherever it is connected, best effort (offline: it reads the result on its next request). */
  deliver: (deviceId: string, message: Json) => void;
  /** Sends to the devices the broadcast policy names (with `from`). */
  broadcast: (deviceId: string, message: Json) => void;
  scope: Scope;
  log: Logger;
  /** Told once a meeting's summary is stored (the console shows it live). */
  summarized: (meetingId: string) => void;
}

interface Begun {
  meetingId: string | null;
  startedAt: number | null;
  pendingCount: number;
}

interface Job {
  deviceId: string;
  began: Promise<Begun>;
  /** The summary message (without `idempotent`), or undefined when the job was aborted. */
  done: Promise<Json | undefined>;
}

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const transcriptItem = (s: Segment) => ({ ts: s.ts, text: s.text, ...(s.speakerId ? { speakerId: s.speakerId } : {}) });

function summaryMessage(meetingId: string | null, summary: MeetingSummary): Json {
  return { type: 'meeting', phase: 'summary', ...summary, ...(meetingId ? { sessionId: meetingId } : {}) };
}

export class Finalizer {
  #jobs = new Map<string, Job>();

  constructor(private readonly deps: FinalizerDeps) {}

  /** True while a finalize of this device runs: snippets and recognized speech are dropped meanwhile. */
  isFinalizing(deviceId: string): boolean {
    return this.#jobs.has(deviceId);
  }

  /** Resolves when the device's finalize in progress (if any) is over. */
  async settled(deviceId: string): Promise<void> {
    await this.#jobs.get(deviceId)?.done;
  }

  /**
   * Finalizes the device's meeting. Everything before the first `await` is synchronous, so a second request
   * arriving right after finds the job and is answered from it (`idempotent: true`).
   */
  finalize(deviceId: string, fallbackSessionId: string | undefined): Promise<void> {
    const t0 = Date.now();
    const existing = this.#jobs.get(deviceId);
    if (existing) return this.#follow(existing, t0);
    const began = deferred<Begun>();
    const done = deferred<Json | undefined>();
    const job: Job = { deviceId, began: began.promise, done: done.promise };
    this.#jobs.set(deviceId, job);
    let result: Json | undefined;
    return this.deps.scope
      .run('finalize', async (signal) => {
        try {
          result = await this.#run(deviceId, fallbackSessionId, t0, signal, began.resolve);
        } catch (err) {
          if (!signal.aborted) {
            this.deps.deliver(deviceId, {
              type: 'meeting',
              status: 'error',
              phase: 'finalize',
              code: 'INTERNAL_ERROR',
              message: 'the meeting could not be finalized; try again',
            });
          }
          throw err;
        }
      })
      .finally(() => {
        began.resolve({ meetingId: null, startedAt: null, pendingCount: 0 });
        done.resolve(result);
        if (this.#jobs.get(deviceId) === job) this.#jobs.delete(deviceId);
      });
  }

  /** Finishes meetings a previous process left `finalizing`. */
  async resume(): Promise<void> {
    for (const m of await this.deps.store.finalizingMeetings()) {
      this.deps.log.info({ meeting: m.id, device: m.deviceId }, 'resuming an interrupted meeting finalize');
      void this.finalize(m.deviceId, undefined);
    }
  }

  async #follow(job: Job, t0: number): Promise<void> {
    const begun = await job.began;
    this.#ack(job.deviceId, begun, t0);
    const message = await job.done;
    if (message) this.deps.deliver(job.deviceId, { ...message, idempotent: true });
  }

  #ack(deviceId: string, b: Begun, t0: number): void {
    this.deps.deliver(deviceId, {
      type: 'meeting',
      phase: 'finalize',
      sessionId: b.meetingId,
      startedAt: b.startedAt,
      pendingCount: b.pendingCount,
    });
    this.deps.log.debug({ device: deviceId, ackMs: Date.now() - t0 }, 'meeting finalize acknowledged');
  }

  async #run(
    deviceId: string,
    fallbackSessionId: string | undefined,
    t0: number,
    signal: AbortSignal,
    began: (b: Begun) => void,
  ): Promise<Json | undefined> {
    const { store, deliver } = this.deps;
    const active = await store.activeMeeting(deviceId);
    const begin = active ? await store.beginFinalize(active.id, t0) : undefined;
    if (!begin) {
      // Nothing open: a repeated finalize gets the stored summary of the last meeting; none at all, an empty one.
      const latest = await store.latestMeeting(deviceId);
      const stored = latest?.status === 'done' ? await store.summary(latest.id) : undefined;
      const b: Begun =
        stored && latest
          ? { meetingId: latest.id, startedAt: latest.startedAt, pendingCount: 0 }
          : { meetingId: fallbackSessionId ?? null, startedAt: null, pendingCount: 0 };
      began(b);
      this.#ack(deviceId, b, t0);
      if (stored && latest) {
        const message = summaryMessage(latest.id, stored.summary);
        deliver(deviceId, { ...message, idempotent: true });
        return message;
      }
      const message = summaryMessage(
        null,
        emptySummary({ durationMs: 0, sourceSegments: 0, checkpoint: false, lang: 'zh' }),
      );
      deliver(deviceId, message);
      return message;
    }

    const meetingId = begin.meeting.id;
    const b: Begun = { meetingId, startedAt: begin.meeting.startedAt, pendingCount: begin.pendingCount };
    began(b);
    this.#ack(deviceId, b, t0);
    const progress = (stage: 'prepare' | 'llm_start' | 'llm_done' | 'done', extra: Record<string, unknown> = {}) =>
      deliver(deviceId, {
        type: 'meeting',
        phase: 'progress',
        stage,
        elapsedMs: Date.now() - t0,
        sessionId: meetingId,
        ...extra,
      });

    progress('prepare');
    await store.mergePending(meetingId);
    const meeting = (await store.get(meetingId)) ?? begin.meeting;
    let llmCalled = false;
    const result = await this.deps.summarizer.summarize({
      meeting,
      checkpoint: false,
      endedAt: meeting.endedAt ?? t0,
      signal,
      onLlmStart: (maxTokens) => {
        llmCalled = true;
        progress('llm_start', { maxTokens });
      },
    });
    if (llmCalled) progress('llm_done', { source: result.meta.source, llmElapsedMs: result.meta.llmElapsedMs });
    if (signal.aborted) return undefined;

    const cfg = this.deps.config();
    const webhookId = randomUUID();
    const payload = {
      sessionId: meetingId,
      deviceId,
      summary: result.summary,
      metrics: result.meta,
      durationMs: result.meta.durationMs,
    };
    const webhook = buildWebhook(cfg.webhook, webhookId, meetingId, payload);
    const { stored, won } = await store.complete(meetingId, result.summary, result.meta, Date.now(), webhook);
    if (won && webhook) this.deps.dispatcher.kick();
    if (won) {
      this.#logMetrics(meetingId, stored);
      this.deps.summarized(meetingId);
    }

    const tail = await store.segmentsTail(meetingId, 0, FINAL_TRANSCRIPT_SEGMENTS);
    const transcript: Json = {
      type: 'meeting',
      phase: 'transcript',
      items: tail.map(transcriptItem),
      totalSegments: stored.meta.segmentsCount,
      final: true,
      sessionId: meetingId,
    };
    const message = summaryMessage(meetingId, stored.summary);
    deliver(deviceId, transcript);
    deliver(deviceId, won ? message : { ...message, idempotent: true });
    progress('done');
    if (won) {
      this.deps.broadcast(deviceId, transcript);
      this.deps.broadcast(deviceId, message);
    }
    return message;
  }

  #logMetrics(meetingId: string, s: StoredSummary): void {
    const m = s.meta;
    this.deps.log.info(
      { meeting: meetingId, ...m, bulletsLength: s.summary.bulletsLength },
      `[Meeting Metrics] segmentsCount=${m.segmentsCount}, checkpointCount=${m.checkpointCount}, llmElapsedMs=${m.llmElapsedMs}, emptyBullets=${m.emptyBullets}, bulletsLength=${s.summary.bulletsLength}, industry=${m.industry || '-'}, scenario=${m.scenario || '-'}`,
    );
  }
}
