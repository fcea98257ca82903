import { normalizeId } from '../../protocol/ids.js';

/** Wire contract of peer messages (C4, D19): request parsing, the delivery envelope, codes. Pure functions. */

export const PeerCode = {
  InvalidRequest: 'INVALID_REQUEST',
  SchemaInvalid: 'SCHEMA_INVALID',
  Unauthorized: 'UNAUTHORIZED',
  RateLimited: 'RATE_LIMITED',
  TargetOffline: 'TARGET_OFFLINE',
  QueueFull: 'QUEUE_FULL',
  LlmOutputNotJson: 'LLM_OUTPUT_NOT_JSON',
  InternalError: 'INTERNAL_ERROR',
} as const;
export type PeerCode = (typeof PeerCode)[keyof typeof PeerCode];

export const BROADCAST = 'broadcast';
export const DEFAULT_CATEGORY = 'message';

/** The structured form of a message (a task, mostly); the firmware reads `normalized.title/priority` at top level. */
export interface NormalizedTask {
  title?: string;
  description?: string;
  /** 0 (most urgent) .. 3, as in the workflow feature. */
  priority?: number;
  status?: 'open' | 'done';
  assignees?: string[];
  id?: string;
  [extra: string]: unknown;
}

/** The message a sender's request becomes, before it is addressed to each target. */
export type PeerMessage = {
  id: string;
  from: string;
  category: string;
  payload: Record<string, unknown>;
  normalized?: NormalizedTask;
  /** Epoch ms when the server accepted the message. */
  ts: number;
};

/** What a target receives (D19). `to` is the receiving device. */
export type PeerEnvelope = {
  type: 'peer';
  event: 'message';
  id: string;
  from: string;
  to: string;
  category: string;
  payload: Record<string, unknown>;
  normalized?: NormalizedTask;
  ts: number;
};

export interface PeerRequest {
  /** Explicit targets, normalised, de-duplicated, in the order given; `broadcast` is not among them. */
  targets: string[];
  broadcast: boolean;
  category: string;
  payload: Record<string, unknown>;
  /** The sender's own structured form (`payload.normalized`, or a top-level `normalized`), corrected. */
  normalized?: NormalizedTask;
  /** The client's own `id`, echoed in the receipt as `requestId` so it can match the two. */
  requestId?: string | number;
}

export type ParseResult =
  { ok: true; request: PeerRequest } | { ok: false; code: PeerCode; message: string; requestId?: string | number };

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/** `category`: trimmed and lower-cased (`" Task "` is `task`); letters, digits, `_ - . :`, at most 32 chars. */
export function normalizeCategory(raw: unknown): string | undefined {
  if (raw === undefined || raw === null) return DEFAULT_CATEGORY;
  if (typeof raw !== 'string') return undefined;
  const c = raw.trim().toLowerCase();
  if (c === '') return DEFAULT_CATEGORY;
  return /^[\p{L}\p{N}_.:-]{1,32}$/u.test(c) ? c : undefined;
}

export function parsePeerRequest(msg: Record<string, unknown>): ParseResult {
  const requestId = typeof msg.id === 'string' || typeof msg.id === 'number' ? msg.id : undefined;
  const fail = (code: PeerCode, message: string): ParseResult => ({
    ok: false,
    code,
    message,
    ...(requestId !== undefined ? { requestId } : {}),
  });
  if (!Array.isArray(msg.to)) return fail(PeerCode.InvalidRequest, 'to must be a list of device ids, or ["broadcast"]');
  if (msg.to.length === 0)
    return fail(PeerCode.InvalidRequest, 'to is empty: name at least one device id, or "broadcast"');
  if (!isObject(msg.payload)) return fail(PeerCode.InvalidRequest, 'payload must be an object, e.g. {"text":"..."}');
  const targets: string[] = [];
  let broadcast = false;
  for (const [i, raw] of msg.to.entries()) {
    const id = normalizeId(raw);
    if (!id) return fail(PeerCode.SchemaInvalid, `to[${i}] must be a non-empty device id string`);
    if (id === BROADCAST) broadcast = true;
    else if (!targets.includes(id)) targets.push(id);
  }
  const category = normalizeCategory(msg.category);
  if (category === undefined)
    return fail(PeerCode.SchemaInvalid, 'category must be a short word (letters, digits, _ - . :), e.g. "task"');
  const payload = msg.payload;
  if (payload.text !== undefined && typeof payload.text !== 'string')
    return fail(PeerCode.SchemaInvalid, 'payload.text must be a string');
  const rawNormalized = payload.normalized ?? msg.normalized;
  if (rawNormalized !== undefined && !isObject(rawNormalized))
    return fail(
      PeerCode.SchemaInvalid,
      'payload.normalized must be an object {title,description,priority,status,assignees}',
    );
  let normalized: NormalizedTask | undefined;
  if (rawNormalized) {
    normalized = correctNormalized(rawNormalized, { keepUnknown: true });
    if (normalized && !normalized.title && typeof payload.text === 'string' && payload.text.trim())
      normalized.title = cut(payload.text.trim(), 80);
  }
  return {
    ok: true,
    request: {
      targets,
      broadcast,
      category,
      payload,
      ...(normalized ? { normalized } : {}),
      ...(requestId !== undefined ? { requestId } : {}),
    },
  };
}

const cut = (s: string, max: number): string => (s.length > max ? `${s.slice(0, max - 1)}…` : s);

const PRIORITY_WORDS: Record<string, number> = {
  urgent: 0,
  critical: 0,
  highest: 0,
  high: 1,
  medium: 2,
  normal: 2,
  low: 3,
  lowest: 3,
};
const STATUS_WORDS: Record<string, 'open' | 'done'> = {
  open: 'open',
  todo: 'open',
  pending: 'open',
  new: 'open',
  doing: 'open',
  in_progress: 'open',
  done: 'done',
  completed: 'done',
  complete: 'done',
  finished: 'done',
  closed: 'done',
};

export function correctPriority(raw: unknown): number | undefined {
  let n: number | undefined;
  if (typeof raw === 'number' && Number.isFinite(raw)) n = Math.round(raw);
  else if (typeof raw === 'string') {
    const s = raw.trim().toLowerCase();
    const m = /^p?(\d+)$/.exec(s);
    if (m) n = Number(m[1]);
    else n = PRIORITY_WORDS[s];
  }
  return n === undefined ? undefined : Math.min(3, Math.max(0, n));
}

/**
 * Corrects a structured form against the schema: known fields get their type and limits (title ≤ 80 chars,
 * description ≤ 500, priority 0..3, status open|done, ≤ 10 assignees); wrong ones are dropped, never fatal.
 * Unknown fields are kept only for the sender's own form (`keepUnknown`), never from an LLM.
 */
export function correctNormalized(
  raw: Record<string, unknown>,
  opts: { keepUnknown: boolean },
): NormalizedTask | undefined {
  const out: NormalizedTask = {};
  if (opts.keepUnknown) {
    for (const [k, v] of Object.entries(raw))
      if (!['title', 'description', 'priority', 'status', 'assignees', 'id'].includes(k)) out[k] = v;
  }
  const title = typeof raw.title === 'string' ? raw.title.trim() : '';
  if (title) out.title = cut(title, 80);
  if (typeof raw.description === 'string' && raw.description.trim()) out.description = cut(raw.description.trim(), 500);
  const priority = correctPriority(raw.priority);
  if (priority !== undefined) out.priority = priority;
  if (typeof raw.status === 'string') {
    const st =
      STATUS_WORDS[
        raw.status
          .trim()
          .toLowerCase()
          .replace(/[\s-]+/g, '_')
      ];
    if (st) out.status = st;
  }
  if (Array.isArray(raw.assignees)) {
    const list = raw.assignees
      .filter((a): a is string => typeof a === 'string' && a.trim().length > 0)
      .map((a) => cut(a.trim(), 64));
    if (list.length) out.assignees = [...new Set(list)].slice(0, 10);
  }
  if ((typeof raw.id === 'string' && raw.id.trim()) || typeof raw.id === 'number')
    out.id = cut(String(raw.id).trim(), 64);
  return Object.keys(out).length ? out : undefined;
}

/** The delivery envelope for one target, exactly the D19 fields (`normalized` only when there is one). */
export function envelopeFor(base: PeerMessage, to: string): PeerEnvelope {
  return {
    type: 'peer',
    event: 'message',
    id: base.id,
    from: base.from,
    to,
    category: base.category,
    payload: base.payload,
    ...(base.normalized ? { normalized: base.normalized } : {}),
    ts: base.ts,
  };
}

/** `{"type":"peer","status":"error",code,message}`, the fork's error shape. */
export function peerError(
  code: PeerCode,
  message: string,
  extra: Record<string, unknown> = {},
): { type: 'peer' } & Record<string, unknown> {
  return { type: 'peer', status: 'error', code, message, ...extra };
}
