import type { Logger } from '../../observability/log.js';
import type { Scope } from '../../session/scope.js';
import type { Session } from '../../session/session.js';
import type { MeetingConfig } from './config.js';
import { PUSH_MAX_ITEMS } from './limits.js';
import type { MeetingStore } from './store.js';
import type { Summarizer } from './summarizer.js';

/**
 * The two timers of an open meeting, on the connection that currently carries the device: the transcript push
 * (every `transcript_push_interval_ms`, always sent, even empty) and the checkpoint summary (every
 * `checkpoint_interval_min`). Both live in a child scope of the session, so they die with the connection, and
 * `stop(deviceId)` (finalize) closes them at once and idempotently (seed #14). Each cycle reads the config when it
 * schedules the next one: a new interval applies from the next cycle, the running one is never disturbed.
 * At most one connection per device runs them: starting them on a new connection (handover) stops the old ones.
 */
export class MeetingTimers {
  #byDevice = new Map<string, { session: Session; scope: Scope; meetingId: string }>();

  constructor(
    private readonly store: MeetingStore,
    private readonly summarizer: Summarizer,
    private readonly config: () => MeetingConfig,
    private readonly log: Logger,
  ) {}

  /** Idempotent for the same connection and meeting. */
  start(session: Session, meetingId: string): void {
    const deviceId = session.deviceId;
    const current = this.#byDevice.get(deviceId);
    if (current && current.session === session && current.meetingId === meetingId && !current.scope.closed) return;
    current?.scope.close();
    if (session.closed) return;
    const scope = session.scope.child('meeting');
    const entry = { session, scope, meetingId };
    this.#byDevice.set(deviceId, entry);
    scope.add(() => {
      if (this.#byDevice.get(deviceId) === entry) this.#byDevice.delete(deviceId);
    });
    this.#schedulePush(entry);
    this.#scheduleCheckpoint(entry);
  }

  /** Stops the device's meeting timers (and any push or checkpoint in flight). Idempotent. */
  stop(deviceId: string): void {
    this.#byDevice.get(deviceId)?.scope.close();
  }

  /** Stops the timers of this connection only (a newer connection keeps its own). */
  stopFor(session: Session): void {
    const current = this.#byDevice.get(session.deviceId);
    if (current?.session === session) current.scope.close();
  }

  running(deviceId: string): boolean {
    const e = this.#byDevice.get(deviceId);
    return !!e && !e.scope.closed;
  }

  #schedulePush(entry: { session: Session; scope: Scope; meetingId: string }): void {
    const interval = this.config().transcript_push_interval_ms;
    entry.scope.timeout(interval, () => {
      void entry.scope.run('transcript push', () => this.#push(entry, interval));
      this.#schedulePush(entry);
    });
  }

  async #push(entry: { session: Session; scope: Scope; meetingId: string }, intervalMs: number): Promise<void> {
    const { items, total } = await this.store.pushCycle(entry.meetingId, PUSH_MAX_ITEMS);
    // Finalize may have begun while the store answered: no push after that (seed #14).
    if (entry.scope.closed) return;
    entry.session.send.json({
      type: 'meeting',
      phase: 'transcript',
      items: items.map((s) => ({ ts: s.ts, text: s.text, ...(s.speakerId ? { speakerId: s.speakerId } : {}) })),
      totalSegments: total,
      sessionId: entry.meetingId,
      intervalMs,
    });
    const next = this.config().transcript_push_interval_ms;
    if (next !== intervalMs)
      this.log.info({ meeting: entry.meetingId, intervalMs, next }, `meeting transcript push: next interval=${next}ms`);
  }

  #scheduleCheckpoint(entry: { session: Session; scope: Scope; meetingId: string }): void {
    const minutes = this.config().checkpoint_interval_min;
    // Off: look at the config again later, so turning it on needs no restart of the meeting.
    const ms = minutes > 0 ? Math.max(1000, Math.round(minutes * 60_000)) : 60_000;
    entry.scope.timeout(ms, () => {
      if (minutes <= 0) return this.#scheduleCheckpoint(entry);
      void entry.scope.run('checkpoint', () => this.#checkpoint(entry)).finally(() => this.#scheduleCheckpoint(entry));
    });
  }

  /** An incremental summary of what was said since the last checkpoint; it clears nothing. */
  async #checkpoint(entry: { session: Session; scope: Scope; meetingId: string }): Promise<void> {
    const meeting = await this.store.get(entry.meetingId);
    if (!meeting || meeting.status !== 'open') return;
    await this.store.mergePending(meeting.id);
    const fresh = (await this.store.get(meeting.id)) ?? meeting;
    const result = await this.summarizer.summarize({
      meeting: fresh,
      checkpoint: true,
      endedAt: Date.now(),
      signal: entry.scope.signal,
    });
    // Nothing new, or no LLM: a checkpoint would only repeat the fallback lines.
    if (result.meta.source === 'empty' || result.meta.source === 'fallback' || entry.scope.closed) return;
    const cp = await this.store.addCheckpoint(meeting.id, result.uptoSeq, result.summary, Date.now());
    if (entry.scope.closed) return;
    entry.session.send.json({
      type: 'meeting',
      phase: 'summary',
      ...result.summary,
      checkpoint: true,
      sessionId: meeting.id,
      checkpointIndex: cp.idx,
    });
    this.log.info({ meeting: meeting.id, checkpoint: cp.idx, uptoSeq: cp.uptoSeq }, 'meeting checkpoint stored');
  }
}
