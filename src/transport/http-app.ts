import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import fastifyCookie from '@fastify/cookie';
import fastifyCors from '@fastify/cors';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from '../observability/log.js';
import { httpErrorOf, sendJson, sendText } from './http-util.js';

export type RouteHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  params: Record<string, string>,
  url: URL,
) => unknown;

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'OPTIONS';

/** A route open to pages of any origin: what its preflight grants (`@fastify/cors`, per route). */
export interface CorsPolicy {
  methods: string;
  headers: string;
  maxAgeSeconds?: number;
}

export interface RouteOptions {
  /** Without it the route sends no CORS headers and a preflight to it is answered like any unknown OPTIONS. */
  cors?: CorsPolicy;
}

/** A media type fastify can parse: `type/subtype`, parameters after it. */
const MEDIA_TYPE = /^\s*[\w!#$%&'*+.^`|~-]+\/[\w!#$%&'*+.^`|~-]+\s*(;|$)/;

/** Path parameters can carry ids up to 128 characters (validId) and URL-encoded device ids. */
const MAX_PARAM_LENGTH = 1024;

/**
 * The HTTP side on fastify, over our own `http.Server`: fastify gets its request events (through the caller's
 * `limitRequests` wrapper) and nothing else, so the WebSocket `upgrade` listener, keep-alive settings and the
 * drain on shutdown stay ours. Routes answer on the raw request and response (`add`), as every handler did before
 * fastify; a trailing slash is optional (`/xiaozhi/ota/` and `/xiaozhi/ota`), HEAD answers for GET, a known path
 * asked with another method gets 405 with `Allow`, an unknown GET "Server is running" (D1) and others a JSON 404.
 */
export class HttpRoutes {
  readonly app: FastifyInstance;
  /** Methods per path pattern, for the 405's Allow header (fastify itself answers 404 there). */
  readonly #paths = new Map<string, { pattern: RegExp; methods: Set<string> }>();

  constructor(
    server: Server,
    /** Installs fastify's request listener on `server` (the caller wraps it with its request limits). */
    attach: (server: Server, handle: (req: IncomingMessage, res: ServerResponse) => void) => void,
    private readonly log: Logger,
  ) {
    this.app = Fastify({
      serverFactory: (handle) => {
        attach(server, (req, res) => {
          // Devices and gateways send sloppy types ("json", an empty header); the handlers read their bodies
          // themselves and never relied on the type, so one fastify cannot parse is dropped instead of a 415.
          const type = req.headers['content-type'];
          if (type !== undefined && !MEDIA_TYPE.test(type)) delete req.headers['content-type'];
          handle(req, res);
        });
        return server;
      },
      // Parser errors are answered by limitRequests's own clientError listener.
      clientErrorHandler: () => undefined,
      routerOptions: { ignoreTrailingSlash: true, maxParamLength: MAX_PARAM_LENGTH },
      logger: false,
      return503OnClosing: false,
      // A path fastify cannot decode (`/%zz`) or route: answered in the API's shape.
      frameworkErrors: (err, _request, reply) => {
        reply.hijack();
        sendJson(reply.raw, 400, { success: false, error: `bad request URL: ${err.message}` });
      },
    });
    // CORS per route (its `config.cors`); other routes have none, and their preflight falls through to 404/405.
    // Not strict: a bare OPTIONS to a CORS route is answered as before, without demanding the preflight headers.
    void this.app.register(fastifyCors, { origin: false, strictPreflight: false });
    // Only the console reads a cookie: parsed when it asks (app.parseCookie), not on every request.
    void this.app.register(fastifyCookie, { hook: false });
    // Handlers read their own bodies (with their own size limits and answers), so fastify parses none.
    this.app.removeAllContentTypeParsers();
    this.app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
    this.app.setNotFoundHandler((request, reply) => this.#unrouted(request, reply));
    this.app.setErrorHandler((err: Error & { statusCode?: number }, _request, reply) => {
      const known = httpErrorOf(err);
      const status = known?.status ?? (err.statusCode && err.statusCode < 500 ? err.statusCode : 500);
      if (status >= 500) this.log.error({ err }, 'http handler failed');
      void reply
        .code(status)
        .headers(known?.headers ?? {})
        .send({ success: false, error: status >= 500 && !known ? 'internal error' : err.message });
    });
  }

  /** Registers a route; a method already served on this path keeps its first handler (as the old table did). */
  add(methods: Method | Method[], path: string, handler: RouteHandler, options: RouteOptions = {}): this {
    const served = this.#methodsOn(path);
    const wanted = Array.isArray(methods) ? methods : [methods];
    // A CORS route answers its preflight (in @fastify/cors's hook, before any handler).
    const fresh = [...wanted, ...(options.cors ? (['OPTIONS'] as const) : [])].filter((m) => !served.has(m));
    if (!fresh.length) return this;
    fresh.forEach((m) => served.add(m));
    const cors = options.cors && {
      origin: '*',
      methods: options.cors.methods,
      allowedHeaders: options.cors.headers,
      ...(options.cors.maxAgeSeconds ? { maxAge: options.cors.maxAgeSeconds } : {}),
    };
    this.app.route({
      method: fresh,
      url: path,
      ...(cors ? { config: { cors } } : {}),
      handler: (request, reply) => this.#run(request, reply, handler),
    });
    return this;
  }

  async #run(request: FastifyRequest, reply: FastifyReply, handler: RouteHandler): Promise<void> {
    reply.hijack();
    const { raw: req } = request;
    const res = reply.raw;
    // Headers the hooks set on the reply (CORS) go out with whatever the handler writes.
    for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) res.setHeader(name, value);
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      // `//` and the like: routed by fastify, but not a URL.
      sendJson(res, 400, { success: false, error: 'bad request URL' });
      return;
    }
    try {
      await handler(req, res, request.params as Record<string, string>, url);
    } catch (err) {
      this.#fail(req, res, err);
    }
  }

  #fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const known = httpErrorOf(err);
    if (known) sendJson(res, known.status, { success: false, error: known.message }, known.headers);
    else {
      this.log.error({ err, path: req.url }, 'http handler failed');
      sendJson(res, 500, { success: false, error: 'internal error' });
    }
  }

  #methodsOn(path: string): Set<string> {
    const key = path.replace(/\/+$/, '');
    let entry = this.#paths.get(key);
    if (!entry) {
      const body = key
        .split('/')
        .map((seg) => (seg.startsWith(':') ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
        .join('/');
      entry = { pattern: new RegExp(`^${body}/?$`), methods: new Set() };
      this.#paths.set(key, entry);
    }
    return entry.methods;
  }

  #unrouted(request: FastifyRequest, reply: FastifyReply): void {
    reply.hijack();
    const res = reply.raw;
    const method = request.method;
    const pathname = (request.url.split('?')[0] ?? '/') || '/';
    const allow = new Set<string>();
    for (const { pattern, methods } of this.#paths.values())
      if (pattern.test(pathname)) methods.forEach((m) => allow.add(m));
    if (allow.size)
      sendJson(res, 405, { success: false, error: `method ${method} not allowed` }, { allow: [...allow].join(', ') });
    // WebSocket paths are any path; a plain GET on one says the server is up, as the reference does (D1).
    else if (method === 'GET' || method === 'HEAD') sendText(res, 200, 'Server is running\n');
    else sendJson(res, 404, { success: false, error: 'not found' });
  }
}
