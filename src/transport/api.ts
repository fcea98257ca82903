import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ConfigStore } from '../config/store.js';
import { secretEquals } from '../protocol/auth-token.js';
import { bearerToken } from '../protocol/ids.js';
import { HttpError, headerString, isLoopback, sendJson } from './http-util.js';
import type { Router } from './router.js';
import { budgetKey, type SecretThrottle } from './secret-throttle.js';

/**
 * The fork's HTTP API conventions (D21), in one place: `{success:true,data}` / `{success:false,error}`,
 * a token in `Authorization: Bearer`, `X-API-Token` or `?token=` (when `server.meeting_api_token` is set),
 * CORS with preflight, a per-IP rate limit answering 429, clamped pagination and validated ids.
 * The rate limit counts only requests that passed the token check: wrong tokens are charged to the address's
 * failed-secret budget instead (SecretThrottle), so they cannot use up a valid client's requests.
 */
const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, POST, PUT, DELETE, OPTIONS',
  'access-control-allow-headers': 'authorization, content-type, x-api-token',
  'access-control-max-age': '600',
};

export type ApiHandler = (req: IncomingMessage, params: Record<string, string>, url: URL) => unknown | Promise<unknown>;

/** Ids in paths: letters, digits, `_ - . :` only, no `..`, at most 128 chars. */
export function validId(raw: string | undefined, what = 'id'): string {
  const id = (raw ?? '').trim();
  if (!/^[A-Za-z0-9_.:-]{1,128}$/.test(id) || id.includes('..')) throw new HttpError(400, `invalid ${what}`);
  return id;
}

/** Reads `limit`/`offset` (or `page`) and clamps them: limit 1..max, offset ≥ 0. */
export function pagination(url: URL, defaults: { limit: number; max: number }): { limit: number; offset: number } {
  const int = (v: string | null, d: number) => {
    const n = v === null || v.trim() === '' ? NaN : Number(v);
    return Number.isFinite(n) ? Math.trunc(n) : d;
  };
  const limit = Math.min(defaults.max, Math.max(1, int(url.searchParams.get('limit'), defaults.limit)));
  const page = int(url.searchParams.get('page'), 0);
  const offset = Math.max(0, int(url.searchParams.get('offset'), page > 0 ? (page - 1) * limit : 0));
  return { limit, offset };
}

export class ApiRoutes {
  #hits = new Map<string, { windowStart: number; count: number }>();

  constructor(
    private readonly router: Router,
    private readonly config: ConfigStore,
    private readonly throttle: SecretThrottle,
  ) {}

  add(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, handler: ApiHandler): this {
    this.router.add('OPTIONS', path, (_req, res) => {
      res.writeHead(204, CORS);
      res.end();
    });
    this.router.add(method, path, async (req, res, params, url) => {
      try {
        this.#auth(req, url);
        this.#limit(req);
        const data = await handler(req, params, url);
        sendJson(res, 200, { success: true, data }, CORS);
      } catch (err) {
        this.#fail(res, err);
      }
    });
    return this;
  }

  #fail(res: ServerResponse, err: unknown): void {
    if (err instanceof HttpError) {
      sendJson(res, err.status, { success: false, error: err.message }, { ...CORS, ...err.headers });
      return;
    }
    sendJson(res, 500, { success: false, error: 'internal error' }, CORS);
  }

  #auth(req: IncomingMessage, url: URL): void {
    const { meeting_api_token: expected, allow_open_api_on_network: openToAll } = this.config.current.server;
    if (!expected) {
      // Without a token the API is this machine's: meetings and tasks must not be readable from the network.
      if (openToAll || isLoopback(req.socket.remoteAddress)) return;
      throw new HttpError(
        403,
        'without server.meeting_api_token this API answers only this machine: set a token (or server.allow_open_api_on_network: true)',
      );
    }
    const address = budgetKey(req.socket.remoteAddress);
    this.throttle.guard(address, 'api');
    const given =
      bearerToken(headerString(req, 'authorization')) ??
      headerString(req, 'x-api-token') ??
      url.searchParams.get('token') ??
      undefined;
    if (!given) throw new HttpError(401, 'missing API token');
    if (!secretEquals(given, expected)) {
      this.throttle.failed(address, 'api');
      throw new HttpError(401, 'wrong API token');
    }
  }

  /** Fixed one-second windows per client address; the map is swept as it grows. */
  #limit(req: IncomingMessage): void {
    const perSecond = this.config.current.server.api_rate_limit;
    if (perSecond <= 0) return;
    const ip = budgetKey(req.socket.remoteAddress);
    const now = Date.now();
    let hit = this.#hits.get(ip);
    if (!hit || now - hit.windowStart >= 1000) {
      if (this.#hits.size > 10_000)
        for (const [k, v] of this.#hits) if (now - v.windowStart >= 1000) this.#hits.delete(k);
      hit = { windowStart: now, count: 0 };
      this.#hits.set(ip, hit);
    }
    if (++hit.count > perSecond)
      throw new HttpError(429, `rate limit: at most ${perSecond} requests per second`, { 'retry-after': '1' });
  }
}
