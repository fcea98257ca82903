import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { ConfigStore } from '../config/store.js';
import { bearerToken } from '../protocol/ids.js';
import type { ConsoleAuth } from './console/auth.js';
import { VERSION } from '../version.js';
import { HttpError, headerString, httpErrorOf, isLoopback, readJson, sendJson } from './http-util.js';
import type { CorsPolicy, HttpRoutes } from './http-app.js';
import { KeyedRateWindows } from '../rate.js';
import { budgetKey, checkSecret, type SecretThrottle } from './secret-throttle.js';

/**
 * The fork's HTTP API conventions (D21), in one place: `{success:true,data}` / `{success:false,error}`,
 * a token in `Authorization: Bearer`, `X-API-Token` or `?token=` (when `server.meeting_api_token` is set),
 * CORS with preflight, a per-IP rate limit answering 429, clamped pagination and validated ids.
 * The rate limit counts only requests that passed the token check: wrong tokens are charged to the address's
 * failed-secret budget instead (SecretThrottle), so they cannot use up a valid client's requests.
 */
const CORS: CorsPolicy = {
  methods: 'GET, POST, PUT, DELETE, OPTIONS',
  headers: 'authorization, content-type, x-api-token',
  maxAgeSeconds: 600,
};

export type ApiHandler<B = undefined> = (
  req: IncomingMessage,
  params: Record<string, string>,
  url: URL,
  /** The JSON body, checked against the route's `body` schema (undefined for a route without one). */
  body: B,
) => unknown;

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

export interface ApiRouteOptions {
  /**
   * A write that needs full rights: `server.admin_secret` as a Bearer token or `X-Admin-Token`, or an admin
   * console session with its CSRF token. Other routes take the API token, the admin secret or any console session.
   */
  admin?: boolean;
  /**
   * A read that is never open to anyone: without an API token set it still needs the admin secret or a console
   * session (which loopback callers get without log-in while no secret is set).
   */
  private?: boolean;
  /** The `data` of a 200 answer, for the OpenAPI document. */
  response?: z.ZodType;
}

/** A JSON Schema of a zod schema as OpenAPI 3.1 takes it (JSON Schema 2020-12, without `$schema`). */
function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' });
  return rest;
}

/** A body that does not fit its schema: 400 naming each key path (the first few) and what is wrong there. */
function bodyError(error: z.ZodError): HttpError {
  const issues = error.issues
    .slice(0, 5)
    .map((issue) => `${['body', ...issue.path.map(String)].join('.')}: ${issue.message}`);
  return new HttpError(400, issues.join('; '));
}

interface Documented {
  method: string;
  path: string;
  options: ApiRouteOptions;
  body?: z.ZodType;
}

const ERROR_CONTENT = { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } };

export class ApiRoutes {
  readonly #hits = new KeyedRateWindows();
  #console: ConsoleAuth | undefined;

  /** Every route, in registration order, for GET /api/openapi.json. */
  readonly #documented: Documented[] = [];

  constructor(
    private readonly router: HttpRoutes,
    private readonly config: ConfigStore,
    /** Also used for secrets checked outside `add` (the console log-in). */
    readonly throttle: SecretThrottle,
  ) {
    router.add('GET', '/api/openapi.json', (_req, res) => sendJson(res, 200, this.openApi()), { cors: CORS });
  }

  /** Lists a route served outside `add` (a stream, the console log-in) in the OpenAPI document. */
  document(method: string, path: string, options: ApiRouteOptions = {}): void {
    this.#documented.push({ method, path, options });
  }

  /** An OpenAPI 3.1 document of the routes: paths, path parameters and who may call each. */
  openApi(): Record<string, unknown> {
    const paths: Record<string, Record<string, unknown>> = {};
    for (const { method, path, options, body } of this.#documented) {
      const params = [...path.matchAll(/:(\w+)/g)].map((m) => m[1]!);
      const security = options.admin
        ? [{ adminToken: [] }, { consoleSession: [] }]
        : [{ adminToken: [] }, { apiToken: [] }, { consoleSession: [] }];
      (paths[path.replace(/:(\w+)/g, '{$1}')] ??= {})[method.toLowerCase()] = {
        ...(params.length
          ? { parameters: params.map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } })) }
          : {}),
        security,
        ...(options.admin
          ? { description: 'Admin rights: the admin secret, or an admin console log-in with its CSRF token.' }
          : {}),
        ...(body
          ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(body, 'input') } } } }
          : {}),
        responses: {
          '200': {
            description: '{"success":true,"data":...}',
            ...(options.response
              ? {
                  content: {
                    'application/json': {
                      schema: {
                        type: 'object',
                        properties: { success: { const: true }, data: jsonSchema(options.response, 'output') },
                        required: ['success', 'data'],
                      },
                    },
                  },
                }
              : {}),
          },
          '4XX': { description: '{"success":false,"error":"..."}', content: ERROR_CONTENT },
          '503': {
            description: 'the store is unreachable (cluster mode, PostgreSQL away); retry after Retry-After',
            content: ERROR_CONTENT,
          },
        },
      };
    }
    return {
      openapi: '3.1.0',
      info: { title: 'Linus HTTP API', version: VERSION },
      paths,
      components: {
        schemas: {
          Error: {
            type: 'object',
            properties: { success: { const: false }, error: { type: 'string' } },
            required: ['success', 'error'],
          },
        },
        securitySchemes: {
          adminToken: { type: 'http', scheme: 'bearer', description: 'server.admin_secret (or X-Admin-Token)' },
          apiToken: {
            type: 'http',
            scheme: 'bearer',
            description: 'server.meeting_api_token (or X-API-Token, ?token=)',
          },
          consoleSession: { type: 'apiKey', in: 'cookie', name: 'linus_console' },
        },
      },
    };
  }

  /** Lets console sessions (cookie) call the API like a token holder of their role. */
  useConsole(auth: ConsoleAuth): void {
    this.#console = auth;
  }

  /**
   * A route on the API conventions. With `options.body` the JSON body is read (64 KB at most) and checked before
   * the handler runs, which gets it parsed; a body that does not fit is a 400 naming the key path.
   */
  add<B = undefined>(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    path: string,
    handler: ApiHandler<B>,
    options: ApiRouteOptions & { body?: z.ZodType<B> } = {},
  ): this {
    const { body: schema, ...rest } = options;
    this.#documented.push({ method, path, options: rest, ...(schema ? { body: schema } : {}) });
    this.router.add(
      method,
      path,
      async (req, res, params, url) => {
        try {
          this.authorize(req, url, options);
          this.limit(req);
          let body = undefined as B;
          if (schema) {
            const parsed = schema.safeParse(await readJson(req));
            if (!parsed.success) throw bodyError(parsed.error);
            body = parsed.data;
          }
          const data = await handler(req, params, url, body);
          sendJson(res, 200, { success: true, data });
        } catch (err) {
          this.#fail(res, err);
        }
      },
      { cors: CORS },
    );
    return this;
  }

  #fail(res: ServerResponse, err: unknown): void {
    const known = httpErrorOf(err);
    if (known) {
      sendJson(res, known.status, { success: false, error: known.message }, known.headers);
      return;
    }
    sendJson(res, 500, { success: false, error: 'internal error' });
  }

  /** Throws 401/403 unless the caller may use a route of this kind (see ApiRouteOptions). */
  authorize(req: IncomingMessage, url: URL, options: ApiRouteOptions): void {
    const session = this.#console?.access(req);
    if (session && (!options.admin || this.#console!.mayWrite(req, session))) return;
    const { admin_secret: adminSecret, meeting_api_token: apiToken } = this.config.current.server;
    const bearer = bearerToken(headerString(req, 'authorization')) ?? headerString(req, 'x-admin-token');
    if (options.admin) {
      if (!adminSecret) throw new HttpError(403, 'writes are disabled: set server.admin_secret');
      if (session?.role === 'admin') throw new HttpError(403, 'missing or wrong CSRF token');
      if (session) throw new HttpError(403, 'read-only log-in: log in with server.admin_secret to change things');
      checkSecret(this.throttle, req.socket.remoteAddress, bearer, [adminSecret], 'admin');
      return;
    }
    if (!apiToken) {
      // Without a token the API is this machine's: meetings and tasks must not be readable from the network.
      const open = this.config.current.server.allow_open_api_on_network || isLoopback(req.socket.remoteAddress);
      if (!open && !options.private)
        throw new HttpError(
          403,
          'without server.meeting_api_token this API answers only this machine: set a token (or server.allow_open_api_on_network: true)',
        );
      if (!options.private) return;
      if (!adminSecret || !bearer)
        throw new HttpError(403, 'open on loopback only: set server.admin_secret or server.meeting_api_token');
      checkSecret(this.throttle, req.socket.remoteAddress, bearer, [adminSecret], 'admin');
      return;
    }
    const given = bearer ?? headerString(req, 'x-api-token') ?? url.searchParams.get('token') ?? undefined;
    // The admin secret reads too: whoever may change things may see them.
    checkSecret(this.throttle, req.socket.remoteAddress, given, [apiToken, adminSecret], 'api');
  }

  /** Fixed one-second windows per client address; the map is swept as it grows. Throws 429 beyond the limit. */
  limit(req: IncomingMessage): void {
    const perSecond = this.config.current.server.api_rate_limit;
    if (perSecond <= 0) return;
    if (!this.#hits.admit(budgetKey(req.socket.remoteAddress), perSecond))
      throw new HttpError(429, `rate limit: at most ${perSecond} requests per second`, { 'retry-after': '1' });
  }
}
