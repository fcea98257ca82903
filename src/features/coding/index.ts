import { relay } from '../../hub/cluster/fanout.js';
import { z } from 'zod';
import type { Disposer } from '../../session/scope.js';
import type { Session } from '../../session/session.js';
import type { Feature, FeatureDeps } from '../feature.js';
import { codingConfig, type CodingConfig } from './config.js';
import { computeInsight, type HistoryLine } from './insight.js';

const EVENTS = ['start', 'stop', 'clear', 'phase', 'log', 'step'] as const;
type CodingEvent = (typeof EVENTS)[number];

const codingSchema = z.looseObject({ type: z.literal('coding') });

/** Device-level state (survives a handover through the device record). */
interface CodingState {
  running: boolean;
  phase: string;
  history: HistoryLine[];
  /** True once the summary for the current session went out; new events clear it. */
  summarized: boolean;
}

/** Connection-level machinery: timers and the one in-flight insight. */
interface Runtime {
  debounce?: Disposer;
  busy: boolean;
  again: boolean;
  /** Bumped by clear/start/stop: an insight computed for an older generation is dropped. */
  generation: number;
}

const STATE_KEY = 'coding';

const LEVELS: Record<string, HistoryLine['level']> = {
  info: 'info',
  debug: 'info',
  trace: 'info',
  log: 'info',
  warn: 'warn',
  warning: 'warn',
  error: 'error',
  err: 'error',
  fatal: 'error',
};

function text(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

/** What the coding feature uses of the server. */
export type CodingDeps = Pick<FeatureDeps, 'ctx' | 'providers' | 'modes' | 'directory'>;

/**
 * Coding mode (C5). A device (or a developer tool speaking for it) reports its coding session as
 * `{"type":"coding","event":"start"|"stop"|"clear"|"phase"|"log"|"step",...}`. Each event is acknowledged with
 * `{"type":"coding","status":"ok","event"}` (the text is never echoed back), relayed to the other devices with
 * `from`, and kept in a bounded history. Insights (`event:"insight"`) come from the `coding` LLM purpose: a burst of
 * `log` lines waits `coding.insight_debounce_ms` from its first line (so a steady stream still gets insights),
 * error logs, steps and phases go at once; one insight runs at a time per session and a trigger during it gives
 * exactly one more. `stop` (or `mode end coding`) produces one summary (`event:"summary"`).
 * Every timer and LLM call lives in the session's scope: a closing session cancels them.
 */
export class CodingFeature implements Feature {
  readonly name = 'coding';
  readonly #deps: CodingDeps;
  readonly #runtimes = new WeakMap<Session, Runtime>();
  /** State of a session with no device record (not registered): kept per connection instead. */
  readonly #orphanStates = new WeakMap<Session, CodingState>();

  constructor(deps: CodingDeps) {
    this.#deps = deps;
    deps.ctx.messages.register('coding', {
      schema: codingSchema,
      handle: (session, msg) => this.#handle(session, msg),
    });
    // `mode start coding` starts a fresh coding session (the fork resets its stream flag and phase);
    // `mode end coding` is a stop: one summary if there is anything to summarise.
    deps.modes.onStart('coding', (session) => this.#reset(session, true));
    deps.modes.onEnd('coding', (session) => {
      this.#summarize(session);
    });
  }

  #config(): CodingConfig {
    return codingConfig(this.#deps.ctx.config.current, this.#deps.ctx.log);
  }

  #stateOf(session: Session): CodingState {
    const store = session.record?.state;
    let s = (store?.get(STATE_KEY) as CodingState | undefined) ?? this.#orphanStates.get(session);
    if (!s) {
      s = { running: false, phase: '', history: [], summarized: false };
      if (store) store.set(STATE_KEY, s);
      else this.#orphanStates.set(session, s);
    }
    return s;
  }

  #runtimeOf(session: Session): Runtime {
    let r = this.#runtimes.get(session);
    if (!r) this.#runtimes.set(session, (r = { busy: false, again: false, generation: 0 }));
    return r;
  }

  /** Relays to the other devices (all, the sender's group, or none), on every node of a cluster. */
  #relay(session: Session, message: { type: string } & Record<string, unknown>): void {
    const { ctx, directory } = this.#deps;
    const scope = this.#config().broadcast;
    if (scope === 'off') return;
    const groupOf = (id: string) => directory.groupOf(id);
    const except = session.deviceId;
    const audience = scope === 'group' ? { group: groupOf(except), except } : { all: true, except };
    // In order: Redis answers one connection's commands in order.
    void session.scope.run('coding:relay', () => relay(ctx, groupOf, audience, message, session.log));
  }

  #reset(session: Session, running: boolean): void {
    const s = this.#stateOf(session);
    s.running = running;
    s.phase = '';
    s.history = [];
    s.summarized = false;
    const r = this.#runtimeOf(session);
    r.debounce?.();
    r.debounce = undefined;
    r.again = false;
    r.generation++;
  }

  #remember(session: Session, line: Omit<HistoryLine, 'ts' | 'phase'>): void {
    const s = this.#stateOf(session);
    s.history.push({ ...line, ts: Date.now(), phase: s.phase });
    const max = this.#config().history_max_lines;
    if (s.history.length > max) s.history.splice(0, s.history.length - max);
    s.summarized = false;
  }

  /** Runs one insight or summary in the session scope and sends it to the device and the others. */
  async #produce(session: Session, kind: 'insight' | 'summary', signal: AbortSignal): Promise<void> {
    const { providers } = this.#deps;
    const s = this.#stateOf(session);
    const cfg = this.#config();
    const r = this.#runtimeOf(session);
    const generation = r.generation;
    const history = [...s.history];
    const phase = s.phase;
    const route = providers.llmRoute('coding');
    const lease = route.alias ? await providers.lease('llm', route.alias, route.overrides) : undefined;
    let result;
    try {
      result = await computeInsight({ history, phase, summary: kind === 'summary', cfg, llm: lease?.provider, signal });
    } finally {
      lease?.release();
    }
    if (result.reason) session.log.info({ kind, reason: result.reason }, 'coding: heuristic insight used');
    if (kind === 'insight' && generation !== r.generation) return;
    const message = {
      type: 'coding',
      event: kind,
      phase,
      ...result.insight,
      source: result.source,
      from: session.deviceId,
    };
    session.send.json(message);
    this.#relay(session, message);
  }

  #runInsight(session: Session): void {
    const r = this.#runtimeOf(session);
    r.debounce?.();
    r.debounce = undefined;
    if (!this.#config().insight_enabled) return;
    if (r.busy) {
      r.again = true;
      return;
    }
    r.busy = true;
    void session.scope
      .run('coding-insight', (signal) => this.#produce(session, 'insight', signal))
      .finally(() => {
        r.busy = false;
        if (r.again && !session.closed) {
          r.again = false;
          this.#runInsight(session);
        }
      });
  }

  #scheduleInsight(session: Session, immediate: boolean): void {
    const cfg = this.#config();
    if (!cfg.insight_enabled) return;
    const r = this.#runtimeOf(session);
    if (immediate) return this.#runInsight(session);
    r.debounce ??= session.scope.timeout(cfg.insight_debounce_ms, () => {
      r.debounce = undefined;
      this.#runInsight(session);
    });
  }

  #summarize(session: Session): boolean {
    const s = this.#stateOf(session);
    if (s.summarized || (!s.running && s.history.length === 0)) return false;
    s.summarized = true;
    s.running = false;
    const r = this.#runtimeOf(session);
    r.debounce?.();
    r.debounce = undefined;
    r.again = false;
    r.generation++;
    void session.scope.run('coding-summary', (signal) => this.#produce(session, 'summary', signal));
    return true;
  }

  #fail(session: Session, message: string, event?: unknown): void {
    session.ctx.metrics.badFrames.labels('schema').inc();
    session.send.json({
      type: 'coding',
      status: 'error',
      code: 'SCHEMA_INVALID',
      message,
      ...(typeof event === 'string' ? { event } : {}),
    });
  }

  #handle(session: Session, msg: Record<string, unknown>): void {
    const event = msg.event;
    if (typeof event !== 'string' || !(EVENTS as readonly string[]).includes(event)) {
      this.#fail(session, `event must be one of ${EVENTS.join(', ')}`, event);
      return;
    }
    const cfg = this.#config();
    const from = session.deviceId;
    const ack = (extra: Record<string, unknown> = {}) =>
      session.send.json({ type: 'coding', status: 'ok', event, ...extra });
    switch (event as CodingEvent) {
      case 'start':
        this.#reset(session, true);
        ack();
        this.#relay(session, { type: 'coding', event: 'start', from });
        return;
      case 'stop': {
        const produced = this.#summarize(session);
        ack(produced ? {} : { idempotent: true });
        this.#relay(session, { type: 'coding', event: 'stop', from });
        return;
      }
      case 'clear':
        this.#reset(session, this.#stateOf(session).running);
        ack();
        this.#relay(session, { type: 'coding', event: 'clear', from });
        return;
      case 'phase': {
        const phase = text(msg.phase) ?? text(msg.name) ?? text(msg.text);
        if (!phase?.trim()) return this.#fail(session, 'phase needs a "phase" string', event);
        const p = phase.trim().slice(0, 64);
        this.#stateOf(session).phase = p;
        this.#remember(session, { kind: 'phase', text: p });
        ack({ phase: p });
        this.#relay(session, { type: 'coding', event: 'phase', phase: p, from });
        this.#scheduleInsight(session, true);
        return;
      }
      case 'log': {
        const raw = text(msg.text) ?? text(msg.message) ?? text(msg.line);
        if (raw === undefined || !raw.trim()) return this.#fail(session, 'log needs a non-empty "text" string', event);
        const levelRaw = text(msg.level)?.trim().toLowerCase() ?? 'info';
        const level = LEVELS[levelRaw] ?? 'info';
        const line = raw.trim().slice(0, cfg.per_message_max_len);
        this.#remember(session, { kind: 'log', level, text: line });
        ack();
        this.#relay(session, {
          type: 'coding',
          event: 'log',
          level,
          text: line,
          phase: this.#stateOf(session).phase,
          from,
        });
        this.#scheduleInsight(session, level === 'error');
        return;
      }
      case 'step': {
        const name = text(msg.name) ?? text(msg.step) ?? text(msg.text);
        if (!name?.trim()) return this.#fail(session, 'step needs a "name" string', event);
        const status = (text(msg.status) ?? 'ok').trim().toLowerCase().slice(0, 16);
        const n = name.trim().slice(0, cfg.per_message_max_len);
        this.#remember(session, { kind: 'step', text: n, status });
        ack();
        this.#relay(session, {
          type: 'coding',
          event: 'step',
          name: n,
          status,
          phase: this.#stateOf(session).phase,
          from,
        });
        this.#scheduleInsight(session, true);
        return;
      }
    }
  }
}
