import { z } from 'zod';
import type { Disposer } from '../../session/scope.js';
import type { Session } from '../../session/session.js';
import type { Feature, FeatureDeps } from '../feature.js';
import { codingConfig, type CodingConfig } from './config.js';
import { computeInsight, type HistoryLine } from './insight.js';

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

export function createCodingFeature(deps: FeatureDeps): Feature {
  const { ctx, providers, modes, directory } = deps;
  const runtimes = new WeakMap<Session, Runtime>();
  const orphanStates = new WeakMap<Session, CodingState>();

  const cfgNow = (): CodingConfig => codingConfig(ctx.config.current, ctx.log);

  const stateOf = (session: Session): CodingState => {
    const store = session.record?.state;
    let s = (store?.get(STATE_KEY) as CodingState | undefined) ?? orphanStates.get(session);
    if (!s) {
      s = { running: false, phase: '', history: [], summarized: false };
      if (store) store.set(STATE_KEY, s);
      else orphanStates.set(session, s);
    }
    return s;
  };

  const runtimeOf = (session: Session): Runtime => {
    let r = runtimes.get(session);
    if (!r) runtimes.set(session, (r = { busy: false, again: false, generation: 0 }));
    return r;
  };

  /** Relays to the other devices (all, the sender's group, or none), through the registry only. */
  const relay = (session: Session, message: { type: string } & Record<string, unknown>): void => {
    const scope = cfgNow().broadcast;
    if (scope === 'off') return;
    const group = scope === 'group' ? directory.groupOf(session.deviceId) : undefined;
    for (const id of ctx.registry.deviceIds()) {
      if (id === session.deviceId) continue;
      if (group !== undefined && directory.groupOf(id) !== group) continue;
      ctx.registry.get(id)?.deliver(message);
    }
  };

  const reset = (session: Session, running: boolean): void => {
    const s = stateOf(session);
    s.running = running;
    s.phase = '';
    s.history = [];
    s.summarized = false;
    const r = runtimeOf(session);
    r.debounce?.();
    r.debounce = undefined;
    r.again = false;
    r.generation++;
  };

  const remember = (session: Session, line: Omit<HistoryLine, 'ts' | 'phase'>): void => {
    const s = stateOf(session);
    s.history.push({ ...line, ts: Date.now(), phase: s.phase });
    const max = cfgNow().history_max_lines;
    if (s.history.length > max) s.history.splice(0, s.history.length - max);
    s.summarized = false;
  };

  /** Runs one insight or summary in the session scope and sends it to the device and the others. */
  const produce = async (session: Session, kind: 'insight' | 'summary', signal: AbortSignal): Promise<void> => {
    const s = stateOf(session);
    const cfg = cfgNow();
    const r = runtimeOf(session);
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
    relay(session, message);
  };

  const runInsight = (session: Session): void => {
    const r = runtimeOf(session);
    r.debounce?.();
    r.debounce = undefined;
    if (!cfgNow().insight_enabled) return;
    if (r.busy) {
      r.again = true;
      return;
    }
    r.busy = true;
    void session.scope
      .run('coding-insight', (signal) => produce(session, 'insight', signal))
      .finally(() => {
        r.busy = false;
        if (r.again && !session.closed) {
          r.again = false;
          runInsight(session);
        }
      });
  };

  const scheduleInsight = (session: Session, immediate: boolean): void => {
    const cfg = cfgNow();
    if (!cfg.insight_enabled) return;
    const r = runtimeOf(session);
    if (immediate) return runInsight(session);
    r.debounce ??= session.scope.timeout(cfg.insight_debounce_ms, () => {
      r.debounce = undefined;
      runInsight(session);
    });
  };

  const summarize = (session: Session): boolean => {
    const s = stateOf(session);
    if (s.summarized || (!s.running && s.history.length === 0)) return false;
    s.summarized = true;
    s.running = false;
    const r = runtimeOf(session);
    r.debounce?.();
    r.debounce = undefined;
    r.again = false;
    r.generation++;
    void session.scope.run('coding-summary', (signal) => produce(session, 'summary', signal));
    return true;
  };

  const fail = (session: Session, message: string, event?: unknown): void => {
    session.ctx.metrics.badFrames.labels('schema').inc();
    session.send.json({
      type: 'coding',
      status: 'error',
      code: 'SCHEMA_INVALID',
      message,
      ...(typeof event === 'string' ? { event } : {}),
    });
  };

  const handle = (session: Session, msg: Record<string, unknown>): void => {
    const event = msg.event;
    if (typeof event !== 'string' || !(EVENTS as readonly string[]).includes(event)) {
      fail(session, `event must be one of ${EVENTS.join(', ')}`, event);
      return;
    }
    const cfg = cfgNow();
    const from = session.deviceId;
    const ack = (extra: Record<string, unknown> = {}) =>
      session.send.json({ type: 'coding', status: 'ok', event, ...extra });
    switch (event as CodingEvent) {
      case 'start':
        reset(session, true);
        ack();
        relay(session, { type: 'coding', event: 'start', from });
        return;
      case 'stop': {
        const produced = summarize(session);
        ack(produced ? {} : { idempotent: true });
        relay(session, { type: 'coding', event: 'stop', from });
        return;
      }
      case 'clear':
        reset(session, stateOf(session).running);
        ack();
        relay(session, { type: 'coding', event: 'clear', from });
        return;
      case 'phase': {
        const phase = text(msg.phase) ?? text(msg.name) ?? text(msg.text);
        if (!phase?.trim()) return fail(session, 'phase needs a "phase" string', event);
        const p = phase.trim().slice(0, 64);
        stateOf(session).phase = p;
        remember(session, { kind: 'phase', text: p });
        ack({ phase: p });
        relay(session, { type: 'coding', event: 'phase', phase: p, from });
        scheduleInsight(session, true);
        return;
      }
      case 'log': {
        const raw = text(msg.text) ?? text(msg.message) ?? text(msg.line);
        if (raw === undefined || !raw.trim()) return fail(session, 'log needs a non-empty "text" string', event);
        const levelRaw = text(msg.level)?.trim().toLowerCase() ?? 'info';
        const level = LEVELS[levelRaw] ?? 'info';
        const line = raw.trim().slice(0, cfg.per_message_max_len);
        remember(session, { kind: 'log', level, text: line });
        ack();
        relay(session, { type: 'coding', event: 'log', level, text: line, phase: stateOf(session).phase, from });
        scheduleInsight(session, level === 'error');
        return;
      }
      case 'step': {
        const name = text(msg.name) ?? text(msg.step) ?? text(msg.text);
        if (!name?.trim()) return fail(session, 'step needs a "name" string', event);
        const status = (text(msg.status) ?? 'ok').trim().toLowerCase().slice(0, 16);
        const n = name.trim().slice(0, cfg.per_message_max_len);
        remember(session, { kind: 'step', text: n, status });
        ack();
        relay(session, { type: 'coding', event: 'step', name: n, status, phase: stateOf(session).phase, from });
        scheduleInsight(session, true);
        return;
      }
    }
  };

  ctx.messages.register('coding', { schema: codingSchema, handle });
  // `mode start coding` starts a fresh coding session (the fork resets its stream flag and phase);
  // `mode end coding` is a stop: one summary if there is anything to summarise.
  modes.onStart('coding', (session) => reset(session, true));
  modes.onEnd('coding', (session) => {
    summarize(session);
  });

  return { name: 'coding' };
}
