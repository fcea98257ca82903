import type { Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import { secretEquals } from '../protocol/auth-token.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError, sendJson } from './http-util.js';

/** The secrets a client can guess: admin secret, meeting-API token, device token (or static device token). */
export type SecretKind = 'admin' | 'api' | 'device';

/** The operator's knobs (`server.failed_secrets`), read at each failure so a reload applies at once. */
export interface ThrottleLimits {
  /** Wrong secrets from one address within a minute before it backs off. */
  limit: number;
  /** The first back-off; each further one in a row doubles, up to `max_backoff_ms`. */
  backoff_ms: number;
  max_backoff_ms: number;
}

/** Failures count within this window from the first one. */
const WINDOW_MS = 60_000;
/** An address quiet this long after its last failure or back-off starts again from the first back-off. */
const FORGET_MS = 15 * 60_000;

interface AddressState {
  windowStart: number;
  failures: number;
  byKind: Partial<Record<SecretKind, number>>;
  lastFailure: number;
  /** Back-offs in a row: the next one lasts backoff_ms * 2^strikes. */
  strikes: number;
  lockedUntil: number;
  /** Requests answered 429 during the current back-off, reported in the next burst's log line. */
  refused: number;
}

/** Sweep the table once it holds this many addresses, so a scan from many addresses stays bounded. */
const SWEEP_AT = 10_000;

/**
 * Failed-secret budget per client address, separate from any request-rate budget: wrong secrets never use up
 * what a valid client on the same address may do, and the right secret is never slowed by them — except while
 * its address is backing off. During a back-off no secret from that address is checked at all (429 with
 * Retry-After): answering the right one would tell a guesser which guess was right at full speed.
 * Only a presented wrong secret counts; a missing one reveals nothing to a guesser and is not counted.
 * One log line per burst (when a back-off starts), counters for every failure and every refusal.
 */
export class SecretThrottle {
  readonly #addresses = new Map<string, AddressState>();

  constructor(
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly limits: () => ThrottleLimits,
    private readonly now: () => number = Date.now,
  ) {}

  /** Milliseconds this address must still wait before a secret of it is checked again; 0 = go ahead. */
  retryAfterMs(address: string, kind: SecretKind): number {
    const state = this.#addresses.get(address);
    const wait = state ? state.lockedUntil - this.now() : 0;
    if (wait <= 0) return 0;
    state!.refused++;
    this.metrics.authThrottled.labels(kind).inc();
    return wait;
  }

  /** For HTTP handlers: throws the 429 (with Retry-After in whole seconds) while the address backs off. */
  guard(address: string, kind: SecretKind): void {
    const wait = this.retryAfterMs(address, kind);
    if (wait > 0) throw tooManyFailures(wait);
  }

  /** Counts one presented wrong secret; the `limit`-th in a window starts a back-off. */
  failed(address: string, kind: SecretKind): void {
    this.metrics.authFailures.labels(kind).inc();
    const now = this.now();
    let state = this.#addresses.get(address);
    if (!state) {
      if (this.#addresses.size >= SWEEP_AT) this.#sweep(now);
      state = { windowStart: now, failures: 0, byKind: {}, lastFailure: now, strikes: 0, lockedUntil: 0, refused: 0 };
      this.#addresses.set(address, state);
    }
    if (quietFor(state, now) > FORGET_MS) state.strikes = 0;
    if (now - state.windowStart > WINDOW_MS) {
      state.windowStart = now;
      state.failures = 0;
      state.byKind = {};
    }
    state.failures++;
    state.byKind[kind] = (state.byKind[kind] ?? 0) + 1;
    state.lastFailure = now;
    const limits = this.limits();
    if (state.failures < limits.limit) return;
    const backoff = Math.min(limits.max_backoff_ms, limits.backoff_ms * 2 ** Math.min(state.strikes, 30));
    this.log.warn(
      {
        address,
        failures: state.byKind,
        seconds: (now - state.windowStart) / 1000,
        refusedInLastBackoff: state.refused,
        backoffSeconds: backoff / 1000,
      },
      `${state.failures} wrong secrets from ${address}: its secrets are refused with 429 for ${backoff / 1000} s`,
    );
    this.metrics.authLockouts.inc();
    state.strikes++;
    state.lockedUntil = now + backoff;
    state.windowStart = now;
    state.failures = 0;
    state.byKind = {};
    state.refused = 0;
  }

  /** Addresses currently tracked (for tests and the sweep bound). */
  get size(): number {
    return this.#addresses.size;
  }

  /** Forgets quiet addresses; if a scan from very many addresses keeps the table full, the oldest go first. */
  #sweep(now: number): void {
    for (const [address, s] of this.#addresses) {
      if (quietFor(s, now) > FORGET_MS) this.#addresses.delete(address);
    }
    for (const address of this.#addresses.keys()) {
      if (this.#addresses.size < SWEEP_AT * 0.9) break;
      this.#addresses.delete(address);
    }
  }
}

/** Since the last failure or the end of the last back-off, whichever is later (waiting out a back-off is not quiet). */
function quietFor(state: AddressState, now: number): number {
  return now - Math.max(state.lastFailure, state.lockedUntil);
}

export function tooManyFailures(waitMs: number): HttpError {
  const seconds = Math.max(1, Math.ceil(waitMs / 1000));
  return new HttpError(429, `too many wrong secrets from this address: retry in ${seconds} s`, {
    'retry-after': String(seconds),
  });
}

/**
 * For the device routes that answer the reference's way (`{success:false,message}`: OTA, vision): while the
 * address backs off after wrong device secrets, answers 429 with Retry-After (the unread body dropped) and
 * returns true.
 */
export function refusedWhileBackingOff(
  throttle: SecretThrottle,
  address: string,
  req: IncomingMessage,
  res: ServerResponse,
): boolean {
  const wait = throttle.retryAfterMs(address, 'device');
  if (wait <= 0) return false;
  req.resume();
  const refusal = tooManyFailures(wait);
  sendJson(res, refusal.status, { success: false, message: refusal.message }, refusal.headers);
  return true;
}

/**
 * The budget key of a client: its socket peer address (a forwarded-for header is the client's word, not proof).
 * IPv6 counts per /64, the block one subscriber gets, or one host could rotate through addresses for new budgets.
 */
export function budgetKey(remoteAddress: string | undefined): string {
  const address = remoteAddress ?? 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!address.includes(':')) return address;
  const [head = '', tail] = address.toLowerCase().split('%')[0]!.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups =
    tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

const SECRET_NAMES: Record<SecretKind, string> = { admin: 'admin token', api: 'API token', device: 'device token' };

/**
 * Checks a presented secret against the accepted ones through the failed-secret budget: an address backing off
 * gets 429 whatever it sends; a wrong secret counts against it (a missing one does not). Throws 401 when missing
 * or wrong.
 */
export function checkSecret(
  throttle: SecretThrottle,
  remoteAddress: string | undefined,
  given: string | undefined,
  accepted: readonly string[],
  kind: SecretKind,
): void {
  if (!given) throw new HttpError(401, `missing ${SECRET_NAMES[kind]}`);
  const address = budgetKey(remoteAddress);
  throttle.guard(address, kind);
  if (accepted.some((secret) => secretEquals(given, secret))) return;
  throttle.failed(address, kind);
  throw new HttpError(401, `wrong ${SECRET_NAMES[kind]}`);
}
