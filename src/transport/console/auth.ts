import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type {} from '@fastify/cookie';
import type { FastifyInstance } from 'fastify';
import type { ConfigStore } from '../../config/store.js';
import { secretEquals } from '../../protocol/auth-token.js';
import { headerString, isLoopback } from '../http-util.js';

/**
 * Who may use the console: a log-in with `server.admin_secret` (admin) or `server.meeting_api_token` (read),
 * kept as a server-side session named by an HttpOnly, SameSite=Strict cookie; with neither secret set, loopback
 * callers read without logging in and everyone else is refused. Writes also need the session's CSRF token in
 * `X-CSRF-Token` (a custom header a cross-site form cannot send) and, when the browser names one, a same-host Origin.
 */
export type ConsoleRole = 'admin' | 'read';

export interface ConsoleAccess {
  role: ConsoleRole;
  /** The token a write must echo in X-CSRF-Token; none for loopback access (which cannot write). */
  csrf?: string;
  via: 'login' | 'loopback';
}

interface ConsoleSession {
  role: ConsoleRole;
  csrf: string;
  /** Hash of the secret used to log in: a changed secret ends the sessions made with the old one. */
  secretHash: string;
  expiresAt: number;
}

export const SESSION_COOKIE = 'linus_console';
const MAX_SESSIONS = 10_000;

const hash = (s: string) => createHash('sha256').update(s).digest('hex');

/** True when the browser's Origin (if it sent one) is this server as the request addressed it. */
export function sameOrigin(req: IncomingMessage): boolean {
  const origin = headerString(req, 'origin');
  if (!origin) return true;
  try {
    return new URL(origin).host === headerString(req, 'host');
  } catch {
    // An Origin that is not a URL is not ours: refused, and the caller answers with the reason.
    return false;
  }
}

function loopbackHost(req: IncomingMessage): boolean {
  return /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/.test(headerString(req, 'host') ?? '');
}

export class ConsoleAuth {
  readonly #sessions = new Map<string, ConsoleSession>();

  constructor(
    private readonly config: ConfigStore,
    /** Parses and writes the cookie (@fastify/cookie, registered by HttpRoutes without its per-request hook). */
    private readonly cookies: Pick<FastifyInstance, 'parseCookie' | 'serializeCookie'>,
  ) {}

  #sessionId(req: IncomingMessage): string | undefined {
    const header = headerString(req, 'cookie');
    return header ? this.cookies.parseCookie(header)[SESSION_COOKIE] || undefined : undefined;
  }

  /** `login` when a secret is set; `loopback` when neither is (read-only on loopback, refused elsewhere). */
  get mode(): 'login' | 'loopback' {
    const s = this.config.current.server;
    return s.admin_secret || s.meeting_api_token ? 'login' : 'loopback';
  }

  #secretFor(role: ConsoleRole): string {
    const s = this.config.current.server;
    return role === 'admin' ? s.admin_secret : s.meeting_api_token;
  }

  /** A new session for a right secret; undefined for a wrong one. */
  login(secret: string): { id: string; role: ConsoleRole; csrf: string } | undefined {
    const role: ConsoleRole | undefined = secretEquals(secret, this.#secretFor('admin'))
      ? 'admin'
      : secretEquals(secret, this.#secretFor('read'))
        ? 'read'
        : undefined;
    if (!role) return undefined;
    const now = Date.now();
    if (this.#sessions.size >= MAX_SESSIONS) {
      for (const [k, v] of this.#sessions) if (v.expiresAt <= now) this.#sessions.delete(k);
      // Still full: the oldest log-in goes (Map order is insertion order).
      if (this.#sessions.size >= MAX_SESSIONS) this.#sessions.delete(this.#sessions.keys().next().value!);
    }
    const id = randomBytes(32).toString('base64url');
    const csrf = randomBytes(24).toString('base64url');
    this.#sessions.set(id, { role, csrf, secretHash: hash(secret), expiresAt: now + this.ttlMs });
    return { id, role, csrf };
  }

  logout(req: IncomingMessage): void {
    const id = this.#sessionId(req);
    if (id) this.#sessions.delete(id);
  }

  get ttlMs(): number {
    return this.config.current.server.console.session_ttl_ms;
  }

  /** The caller's rights, or undefined when it has none (not logged in, expired, or a changed secret). */
  access(req: IncomingMessage): ConsoleAccess | undefined {
    const id = this.#sessionId(req);
    const session = id ? this.#sessions.get(id) : undefined;
    if (id && session) {
      const now = Date.now();
      const secret = this.#secretFor(session.role);
      if (session.expiresAt <= now || !secret || hash(secret) !== session.secretHash) {
        this.#sessions.delete(id);
      } else {
        session.expiresAt = now + this.ttlMs;
        return { role: session.role, csrf: session.csrf, via: 'login' };
      }
    }
    // Loopback rights are for this machine's own pages: not for another site open in its browser (Origin), nor a
    // name rebound to 127.0.0.1 (Host).
    if (this.mode === 'loopback' && isLoopback(req.socket.remoteAddress) && sameOrigin(req) && loopbackHost(req))
      return { role: 'read', via: 'loopback' };
    return undefined;
  }

  /** Whether a console caller may write: an admin session, its CSRF token echoed, and no foreign Origin. */
  mayWrite(req: IncomingMessage, access: ConsoleAccess): boolean {
    return (
      access.role === 'admin' &&
      access.csrf !== undefined &&
      secretEquals(headerString(req, 'x-csrf-token'), access.csrf) &&
      sameOrigin(req)
    );
  }

  /** The session cookie for a log-in; without an id, the one that ends it. */
  cookie(id?: string): string {
    return this.cookies.serializeCookie(SESSION_COOKIE, id ?? '', {
      path: '/',
      httpOnly: true,
      sameSite: 'strict',
      maxAge: id ? Math.floor(this.ttlMs / 1000) : 0,
    });
  }
}
