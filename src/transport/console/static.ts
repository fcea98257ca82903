import { readdirSync, readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The console's page, scripts and styles: plain files, no build step. Same depth from src/ and dist/. */
export const WEB_DIR = fileURLToPath(new URL('../../../web/console/', import.meta.url));

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

/**
 * The files of WEB_DIR, read once at start (a dozen small files): only names found there are served, so no
 * request path reaches the file system.
 */
export class StaticFiles {
  readonly #files = new Map<string, { body: Buffer; type: string }>();

  constructor(dir = WEB_DIR) {
    for (const name of readdirSync(dir)) {
      const type = TYPES[extname(name)];
      if (type) this.#files.set(name, { body: readFileSync(join(dir, name)), type });
    }
  }

  /** Sends the file; false when there is no such file. */
  send(res: ServerResponse, name: string, status = 200): boolean {
    const f = this.#files.get(name);
    if (!f) return false;
    res.writeHead(status, { 'content-type': f.type, 'content-length': f.body.length, ...CONSOLE_HEADERS });
    res.end(f.body);
    return true;
  }
}
