import { existsSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/**
 * The console's page, script and styles as Vite built them from web/console (`npm run build`,
 * scripts/console-build.mjs). Same depth from src/ and dist/, so running from the sources serves them too.
 */
export const WEB_DIR = fileURLToPath(new URL('../../../dist/console/', import.meta.url));

/** Scripts and styles from this origin only; no inline script, so an injected tag cannot run. */
export const CONSOLE_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; media-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

/** A built file named by its content (`index-BlXSA5fZ.js`). */
const HASHED = /-[\w-]{8}\.(js|css)$/;

/** Served for the page when the bundle is missing: the server runs (the API works), the page says what to do. */
const NOT_BUILT = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Linus console</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><h1>Linus console</h1>
<p>The console is not built. Run <code>npm run build</code> (or start with <code>npm start</code>, which builds
what changed), then restart the server.</p></main></body></html>`;

export function consoleBuilt(dir = WEB_DIR): boolean {
  return existsSync(join(dir, 'index.html'));
}

export interface ConsoleFilesOptions {
  dir?: string;
  /** A refusal page (403) for a caller that may not see the console, else undefined. */
  refusal?: (req: IncomingMessage) => string | undefined;
}

/**
 * Serves the console under /console/ with @fastify/static: `/console` redirects to `/console/`, which is the page;
 * the built files with the console's CSP, hashed names kept by the browser, the rest asked again each time. An
 * unknown file (or a path leaving the directory) is a JSON 404. Without a build, the page is a 503 that says
 * what to run.
 */
export function registerConsoleFiles(app: FastifyInstance, options: ConsoleFilesOptions = {}): void {
  const dir = options.dir ?? WEB_DIR;
  const built = consoleBuilt(dir);
  const html = { 'content-type': 'text/html; charset=utf-8', ...CONSOLE_HEADERS };
  void app.register(
    async (scope) => {
      const refusal = options.refusal;
      if (refusal)
        scope.addHook('onRequest', async (request, reply) => {
          const page = refusal(request.raw);
          if (page !== undefined) await reply.code(403).headers(html).send(page);
        });
      const notFound = { success: false, error: 'not found' };
      scope.setNotFoundHandler((_request, reply) => reply.code(404).send(notFound));
      // send refuses a path out of the directory with 403: to the caller that is a file that is not there.
      scope.setErrorHandler((err: Error & { statusCode?: number }, _request, reply) =>
        reply.code(err.statusCode === 403 ? 404 : (err.statusCode ?? 500)).send(notFound),
      );
      scope.get('/', async (request, reply) => {
        if (!request.url.startsWith('/console/')) return reply.redirect('/console/', 301);
        if (!built) return reply.code(503).headers(html).send(NOT_BUILT);
        return reply.sendFile('index.html');
      });
      if (!built) return;
      await scope.register(fastifyStatic, {
        root: dir,
        index: false,
        redirect: false,
        dotfiles: 'deny',
        cacheControl: false,
        setHeaders: (reply, path) => {
          // Vite names each script and style by a hash of its content: a new build is new names, so the browser
          // may keep these; the page that names them is asked for again each time.
          reply.headers({
            ...CONSOLE_HEADERS,
            'cache-control': HASHED.test(path) ? 'public, max-age=31536000, immutable' : 'no-cache',
            // The type RFC 9239 names (send's table still says application/javascript).
            ...(path.endsWith('.js') ? { 'content-type': 'text/javascript; charset=utf-8' } : {}),
          });
        },
      });
    },
    { prefix: '/console' },
  );
}
