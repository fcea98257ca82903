import { errorMessage } from '../../errors.js';
import { deliverTo, relay } from '../../hub/cluster/fanout.js';
import { randomUUID } from 'node:crypto';
import type { Logger } from '../../observability/log.js';
import { Scope } from '../../session/scope.js';
import type { Session } from '../../session/session.js';
import type { FeatureDeps } from '../feature.js';
import { broadcastAudience } from './broadcast.js';
import { meetingConfig, type MeetingConfig } from './config.js';
import { Finalizer, type Json } from './finalize.js';
import { RateWindow } from '../../rate.js';
import { DEDUP_WINDOW_MS, DedupWindow, PENDING_CAP, SNIPPETS_PER_SECOND } from './limits.js';
import { meetingEnvelopeSchema, parseMeetingMessage, type SnippetItem } from './messages.js';
import { SqliteWebhookOutbox, type WebhookOutbox } from './outbox.js';
import { isEndMeetingPhrase, isStartMeetingPhrase } from './phrases.js';
import { SqliteMeetingStore, type MeetingStore, type SnippetInput } from './store.js';
import { Summarizer } from './summarizer.js';
import { dedupKey, prepareSnippetText } from './text.js';
import { MeetingTimers } from './timers.js';
import { WebhookDispatcher } from './webhook.js';

/** The meeting entry cue (fork-contracts §2.2): `tts start` with this url and text, then `tts stop`. */
export const ENTRY_CUE = { url: 'config/assets/evening.wav', text: '已进入会议模式' } as const;

/** An open meeting of a device, as this node holds it: the store has the rest. */
interface LiveMeeting {
  id: string;
  deviceId: string;
  startedAt: number;
  dedup: DedupWindow;
}

export type IngestResult =
  | { kind: 'ok'; meetingId: string; accepted: number; duplicates: number; limited: number; empty: number }
  | { kind: 'rate_limited'; limited: number }
  | { kind: 'finalizing'; dropped: number };

/**
 * The meeting feature at run time (C2): one ingestion path for snippets and recognized speech, the meeting's
 * timers on the device's current connection, mode hooks (start = cue + open/resume + timers; end = finalize),
 * resume after reconnect, handover and restart (everything that matters is in the store), and finalize.
 */
export class MeetingService {
  readonly store: MeetingStore;
  readonly outbox: WebhookOutbox;
  readonly #deps: FeatureDeps;
  readonly #log: Logger;
  readonly #scope: Scope;
  readonly #timers: MeetingTimers;
  readonly #finalizer: Finalizer;
  readonly #dispatcher: WebhookDispatcher;
  #live = new Map<string, LiveMeeting>();
  #loading = new Map<string, Promise<{ live: LiveMeeting; created: boolean } | undefined>>();
  #rates = new WeakMap<Session, RateWindow>();
  #flagsLogged = new WeakSet<Session>();
  #chains = new WeakMap<Session, Promise<void>>();

  /** The stores default to SQLite in `deps.db`; the server passes those of its mode (store/compose.ts). */
  constructor(deps: FeatureDeps, opts: { store?: MeetingStore; outbox?: WebhookOutbox } = {}) {
    this.#deps = deps;
    this.#log = deps.ctx.log.child({ feature: 'meeting' });
    this.#scope = new Scope('meeting', (err, where) => this.#log.error({ err, where }, 'meeting task failed'));
    this.store = opts.store ?? new SqliteMeetingStore(deps.db);
    this.outbox = opts.outbox ?? new SqliteWebhookOutbox(deps.db);
    // Registered once for every session: speech in meeting mode is transcript, and meeting.disable_tts silences replies.
    this.#scope.add(deps.voiceHooks.intercept((s, text) => this.#intercept(s, text)));
    this.#scope.add(
      deps.voiceHooks.bypassTts((s) => this.#deps.modes.current(s) === 'meeting' && this.config().disable_tts),
    );
    const config = () => this.config();
    const summarizer = new Summarizer(this.store, deps.providers, config, this.#log);
    this.#timers = new MeetingTimers(this.store, summarizer, config, this.#log);
    this.#dispatcher = new WebhookDispatcher(this.outbox, this.#scope.child('webhooks'), this.#log);
    this.#finalizer = new Finalizer({
      store: this.store,
      summarizer,
      dispatcher: this.#dispatcher,
      config,
      deliver: (deviceId, message) => this.#deliver(deviceId, message),
      broadcast: (deviceId, message) => this.#broadcast(deviceId, message),
      scope: this.#scope,
      log: this.#log,
      summarized: (meetingId) => this.#changed(meetingId, 'summary'),
    });

    deps.ctx.messages.register('meeting', {
      schema: meetingEnvelopeSchema,
      handle: (session, msg) => this.#onMessage(session, msg),
    });
    deps.modes.onStart('meeting', (session) => this.#onModeStart(session));
    deps.modes.onEnd('meeting', (session) => this.#onModeEnd(session));
    const onRegistered = (session: Session) => this.#onRegistered(session);
    deps.ctx.events.on('registered', onRegistered);
    this.#scope.add(() => deps.ctx.events.off('registered', onRegistered));

    // Work a previous process left: finalizes to finish, webhooks to deliver.
    void this.#scope.run('startup', async () => {
      await this.#finalizer.resume();
      this.#dispatcher.kick();
    });
  }

  /** The meeting block in force now (never kept). */
  config(): MeetingConfig {
    return meetingConfig(this.#deps.ctx.config.current, this.#log);
  }

  /** Shutdown: finalizes in flight get a moment to store their summary, webhooks a moment to finish, then both stop. */
  async close(): Promise<void> {
    await Promise.race([this.#scope.drain(), new Promise((r) => setTimeout(r, 3000).unref())]);
    await this.#dispatcher.stop(1000);
    this.#scope.close();
  }

  // ------------------------------------------------------------------ messages

  #onMessage(session: Session, raw: Record<string, unknown>): void {
    const parsed = parseMeetingMessage(raw);
    if (!parsed.ok) {
      this.#deps.ctx.metrics.badFrames.labels('schema').inc();
      session.send.json({
        type: 'meeting',
        status: 'error',
        code: 'SCHEMA_INVALID',
        message: parsed.error,
        ...(typeof raw.phase === 'string' ? { phase: raw.phase } : {}),
      });
      return;
    }
    const msg = parsed.message;
    if (msg.phase === 'finalize') {
      // Behind the snippets sent before it (they belong to the meeting), ahead of anything sent after it.
      void this.#serial(session, 'meeting finalize', async () => this.finalize(session));
      return;
    }
    void this.#serial(session, 'meeting snippet', async () => {
      let result: IngestResult;
      try {
        result = await this.ingest(session, msg.items);
      } catch (err) {
        this.#log.error({ err, device: session.deviceId }, 'snippet ingestion failed');
        session.send.json({
          type: 'meeting',
          status: 'error',
          phase: 'snippet',
          code: 'INTERNAL_ERROR',
          message: 'the snippet could not be stored; send it again',
        });
        return;
      }
      session.send.json(snippetReply(result));
    });
  }

  /**
   * Runs a connection's snippet work one at a time, in arrival order: commits (and so `seq`) follow the order the
   * device sent them in, and acknowledgements come back in that order too.
   */
  #serial(session: Session, name: string, work: () => Promise<void>): Promise<void> {
    const previous = this.#chains.get(session) ?? Promise.resolve();
    const next = previous.then(() => session.scope.run(name, work));
    this.#chains.set(session, next);
    return next;
  }

  // ------------------------------------------------------------------ ingestion (the one path)

  /**
   * Stores snippets of the device's open meeting (opening one when there is none). Each text is preprocessed,
   * cut to 2 KB, checked against the 60 s dedup window; at most 10 snippets per second per connection.
   * Resolves after the commit: only then may the caller acknowledge.
   */
  async ingest(session: Session, items: readonly SnippetItem[]): Promise<IngestResult> {
    const deviceId = session.deviceId;
    if (this.#finalizer.isFinalizing(deviceId)) return { kind: 'finalizing', dropped: items.length };
    const now = Date.now();
    let rate = this.#rates.get(session);
    if (!rate) this.#rates.set(session, (rate = new RateWindow()));
    const admitted = rate.take(items.length, SNIPPETS_PER_SECOND, now);
    const limited = items.length - admitted;
    if (admitted === 0) {
      this.#log.warn({ device: deviceId, limited }, `more than ${SNIPPETS_PER_SECOND} snippets per second; dropped`);
      return { kind: 'rate_limited', limited };
    }
    const cfg = this.config();
    const opened = await this.#ensure(session, true);
    if (!opened) return { kind: 'finalizing', dropped: admitted };
    const { live, created } = opened;
    if (created) this.#onOpened(session, cfg);
    this.#startTimers(session, live.id);

    const accepted: SnippetInput[] = [];
    let duplicates = 0;
    let empty = 0;
    for (const item of items.slice(0, admitted)) {
      const text = prepareSnippetText(item.text, cfg.term_map);
      if (!text) {
        empty++;
        continue;
      }
      if (live.dedup.check(dedupKey(text), now)) {
        duplicates++;
        continue;
      }
      const speakerId = item.speakerId?.trim();
      const tag = item.tag?.trim();
      accepted.push({ ts: now, text, ...(speakerId ? { speakerId } : {}), ...(tag ? { tag } : {}) });
    }
    if (accepted.length > 0) {
      let stored;
      try {
        stored = await this.store.appendSnippets(live.id, accepted, PENDING_CAP);
      } catch (err) {
        for (const a of accepted) live.dedup.forget(dedupKey(a.text), now);
        throw err;
      }
      if (!stored.ok) {
        // The meeting stopped being open under us (finalized elsewhere): forget it, drop these.
        if (this.#live.get(deviceId) === live) this.#live.delete(deviceId);
        return { kind: 'finalizing', dropped: admitted };
      }
      this.#changed(live.id, 'transcript');
      this.#broadcast(deviceId, {
        type: 'meeting',
        phase: 'snippet',
        items: accepted.map(({ ts, text, speakerId, tag }) => ({ ts, text, speakerId, tag })),
      });
    }
    return { kind: 'ok', meetingId: live.id, accepted: accepted.length, duplicates, limited, empty };
  }

  /** The device's open meeting as held here; loaded from the store (resume) or, with `create`, opened. */
  async #ensure(session: Session, create: boolean): Promise<{ live: LiveMeeting; created: boolean } | undefined> {
    const deviceId = session.deviceId;
    const cached = this.#live.get(deviceId);
    if (cached) return { live: cached, created: false };
    const inFlight = this.#loading.get(deviceId);
    if (inFlight) {
      // The caller that started the load reports its failure; this one only retries or gives up.
      const r = await inFlight.catch(() => undefined);
      return r ? { live: r.live, created: false } : create ? this.#ensure(session, create) : undefined;
    }
    const load = (async () => {
      let meeting = await this.store.activeMeeting(deviceId);
      let created = false;
      if (meeting && meeting.status !== 'open') return undefined;
      if (!meeting) {
        if (!create) return undefined;
        ({ meeting, created } = await this.store.openMeeting(deviceId, session.sessionId, randomUUID(), Date.now()));
        this.#log.info({ device: deviceId, meeting: meeting.id }, 'meeting opened');
      }
      const live: LiveMeeting = { id: meeting.id, deviceId, startedAt: meeting.startedAt, dedup: new DedupWindow() };
      for (const r of await this.store.recentTexts(meeting.id, Date.now() - DEDUP_WINDOW_MS))
        live.dedup.remember(dedupKey(r.text), r.ts);
      // A finalize that began meanwhile owns the meeting now.
      if (this.#finalizer.isFinalizing(deviceId)) return undefined;
      this.#live.set(deviceId, live);
      return { live, created };
    })();
    this.#loading.set(deviceId, load);
    try {
      return await load;
    } finally {
      this.#loading.delete(deviceId);
    }
  }

  /** A meeting that just opened or was found open on a new connection: the device is in meeting mode. */
  #onOpened(session: Session, cfg: MeetingConfig): void {
    const record = session.record;
    if (record && !record.state.has('mode')) record.state.set('mode', 'meeting');
    if (record?.state.get('mode') === 'meeting' && cfg.prefer_device_vad)
      session.listen = { ...session.listen, mode: 'manual' };
    if (!this.#flagsLogged.has(session)) {
      this.#flagsLogged.add(session);
      this.#log.info(
        {
          device: session.deviceId,
          disable_tts: cfg.disable_tts,
          disable_chat_on_snippet: cfg.disable_chat_on_snippet,
        },
        'meeting bypass flags',
      );
    }
  }

  // ------------------------------------------------------------------ modes, connections, voice

  async #onModeStart(session: Session): Promise<void> {
    // A meeting still being finalized ends first; the new one starts after its summary.
    await this.#finalizer.settled(session.deviceId);
    const cfg = this.config();
    const opened = await this.#ensure(session, true);
    if (!opened || session.closed) return;
    if (cfg.disable_tts) {
      session.send.json({ type: 'tts', state: 'start', session_id: session.sessionId });
    } else {
      session.send.json({
        type: 'tts',
        state: 'start',
        url: ENTRY_CUE.url,
        text: ENTRY_CUE.text,
        session_id: session.sessionId,
      });
    }
    session.send.json({ type: 'tts', state: 'stop', session_id: session.sessionId });
    this.#onOpened(session, cfg);
    this.#startTimers(session, opened.live.id);
  }

  /** Timers run on the device's current route only: a replaced connection (handover) never takes them back. */
  #startTimers(session: Session, meetingId: string): void {
    if (this.#deps.ctx.registry.get(session.deviceId) === session) this.#timers.start(session, meetingId);
  }

  async #onModeEnd(session: Session): Promise<void> {
    await this.#serial(session, 'meeting finalize', async () => this.finalize(session));
  }

  /**
   * Finalize from the device (message, `mode end meeting`, a voice phrase). The synchronous part stops the
   * timers, resets the ASR stream (seed #8) and leaves meeting mode; the finalizer acknowledges at once.
   */
  /** Tells listeners of the server's events (the console) that a meeting's transcript or summary changed. */
  #changed(meetingId: string, what: 'transcript' | 'summary'): void {
    try {
      this.#deps.ctx.events.emit('meeting', meetingId, what);
    } catch (err) {
      this.#log.error({ err, meetingId }, 'meeting listener failed');
    }
  }

  finalize(session: Session): void {
    const deviceId = session.deviceId;
    this.#timers.stop(deviceId);
    this.#live.delete(deviceId);
    const record = session.record;
    if (record?.state.get('mode') === 'meeting') record.state.delete('mode');
    // Every connection of the device (two during a handover): fresh ASR stream, listening back to auto.
    for (const s of this.#deps.sessions()) {
      if (s.deviceId !== deviceId || s.closed) continue;
      this.#deps.voiceOf(s)?.resetAudio();
      if (s.listen.mode === 'manual' && !s.record?.state.has('mode')) s.listen = { ...s.listen, mode: 'auto' };
    }
    void this.#finalizer.finalize(deviceId, session.sessionId);
  }

  /** A new connection of a device: voice hooks, and the resume of its open meeting (timers move here). */
  #onRegistered(session: Session): void {
    // The old connection (handover) stops pushing at once; this one takes over below.
    this.#timers.stop(session.deviceId);
    void this.#scope.run('resume', async () => {
      if (this.#finalizer.isFinalizing(session.deviceId)) return;
      const opened = await this.#ensure(session, false);
      if (!opened || session.closed) return;
      this.#onOpened(session, this.config());
      this.#startTimers(session, opened.live.id);
      this.#log.info({ device: session.deviceId, meeting: opened.live.id }, 'meeting resumed on a new connection');
    });
  }

  /** Recognized or typed text: in meeting mode it becomes a snippet (speaker = the device), not a chat turn. */
  #intercept(session: Session, text: string): boolean {
    const deviceId = session.deviceId;
    if (this.#finalizer.isFinalizing(deviceId)) return true; // speech during finalize is dropped
    const inMeeting = this.#deps.modes.current(session) === 'meeting';
    if (!inMeeting) {
      if (!isStartMeetingPhrase(text)) return false;
      session.send.json({
        type: 'stt',
        text,
        intent: 'mode_switch',
        target_mode: 'meeting',
        session_id: session.sessionId,
      });
      void this.#deps.modes.start(session, 'meeting', 'voice');
      return true;
    }
    if (isEndMeetingPhrase(text)) {
      void this.#deps.modes.end(session, 'meeting', 'voice');
      return true;
    }
    void this.#serial(session, 'meeting speech', async () => {
      const r = await this.ingest(session, [{ text, speakerId: deviceId }]);
      if (r.kind !== 'ok')
        this.#log.info({ device: deviceId, result: r.kind }, 'recognized speech not stored as a snippet');
    });
    return this.config().disable_chat_on_snippet;
  }

  // ------------------------------------------------------------------ delivery

  /** To the device wherever it is connected; nothing when it is offline (it reads the result on its next request). */
  #deliver(deviceId: string, message: Json): void {
    // The device may have moved to another node (a finalize asked for here, e.g. over HTTP): its node hands it on
    // (D17). When that fails it is as for an offline device: the summary stays in the store for the next request.
    deliverTo(this.#deps.ctx, this.#scope, deviceId, message, (err) =>
      this.#log.warn({ err: errorMessage(err), device: deviceId }, 'meeting message not passed to the device’s node'),
    );
  }

  #broadcast(deviceId: string, message: Json): void {
    const groupOf = (id: string) => this.#deps.directory.groupOf(id);
    const audience = broadcastAudience(this.config().broadcast, deviceId, groupOf);
    if (!audience) return;
    // Devices on the other nodes too (D17): each node picks its own by the audience.
    void this.#scope.run('relay', () =>
      relay(this.#deps.ctx, groupOf, audience, { ...message, from: deviceId }, this.#log),
    );
  }
}

function snippetReply(r: IngestResult): Json {
  switch (r.kind) {
    case 'ok':
      return {
        type: 'meeting',
        status: 'ok',
        phase: 'snippet',
        sessionId: r.meetingId,
        accepted: r.accepted,
        duplicates: r.duplicates,
        dropped: r.limited,
      };
    case 'rate_limited':
      return {
        type: 'meeting',
        status: 'error',
        phase: 'snippet',
        code: 'RATE_LIMITED',
        message: `more than ${SNIPPETS_PER_SECOND} snippets per second; ${r.limited} dropped`,
      };
    case 'finalizing':
      // The fork answers ok while finalizing; `dropped` says that nothing was stored.
      return {
        type: 'meeting',
        status: 'ok',
        phase: 'snippet',
        accepted: 0,
        duplicates: 0,
        dropped: r.dropped,
        finalizing: true,
      };
  }
}
