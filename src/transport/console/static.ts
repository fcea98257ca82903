import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The console's page, script and styles as Vite built them from web/console (`npm run build`,
 * scripts/console-build.mjs). Same depth from src/ and dist/, so running from the sources serves them too.
 */
export const WEB_DIR = fileURLToPath(new URL('../../../dist/console/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.wav': 'audio/wav',
};

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
const NOT_BUILT = Buffer.from(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Linus console</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><h1>Linus console</h1>
<p>The console is not built. Run <code>npm run build</code> (or start with <code>npm start</code>, which builds
what changed), then restart the server.</p></main></body></html>`);

/**
 * The files of WEB_DIR, read once at start (a handful of small files): only names found there are served, so no
 * request path reaches the file system.
 */
export class StaticFiles {
  readonly #files = new Map<string, { body: Buffer; type: string; cache: string }>();
  readonly built: boolean;

  constructor(dir = WEB_DIR) {
    this.built = existsSync(join(dir, 'index.html'));
    if (!this.built) {
      this.#files.set('index.html', { body: NOT_BUILT, type: TYPES['.html'] as string, cache: 'no-cache' });
      return;
    }
    for (const name of readdirSync(dir)) {
      const type = TYPES[extname(name)];
      // Vite names each script and style by a hash of its content: a new build is new names, so the browser
      // may keep these; the page that names them is asked for again each time.
      const cache = HASHED.test(name) ? 'public, max-age=31536000, immutable' : 'no-cache';
      if (type) this.#files.set(name, { body: readFileSync(join(dir, name)), type, cache });
    }
  }

  /** Sends the file; false when there is no such file. The page answers 503 while the bundle is missing. */
  send(res: ServerResponse, name: string, status = 200): boolean {
    const f = this.#files.get(name);
    if (!f) return false;
    if (!this.built) status = 503;
    res.writeHead(status, {
      'content-type': f.type,
      'content-length': f.body.length,
      ...CONSOLE_HEADERS,
      'cache-control': f.cache,
    });
    res.end(f.body);
    return true;
  }
}
