import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * `mkdir -p` that fails instead of spinning: Node 20's `mkdirSync(dir, { recursive: true })` loops for ever on a
 * path such as /proc/x (ENOENT for a parent that exists), so `--data-dir /proc/x` hung with no output. The missing
 * levels are made one by one; the first that cannot be made throws its error (code and path).
 */
export function makeDirs(dir: string): void {
  const missing: string[] = [];
  for (let p = resolve(dir); !existsSync(p); p = dirname(p)) {
    missing.unshift(p);
    if (dirname(p) === p) break;
  }
  for (const d of missing) mkdirSync(d);
}
