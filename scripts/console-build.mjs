// The web console's bundle: Vite builds web/console (Preact, TypeScript) into dist/console, which the server
// serves. `node scripts/console-build.mjs` builds and prints each file's size, raw and gzipped, against the
// app-shell budget; `--if-stale` builds only when a source is newer than the last build.
// `npm run build`, `npm start` and the console tests all come through here.
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const CONSOLE_SRC = join(root, 'web/console');
export const CONSOLE_OUT = join(root, 'dist/console');
/** Issue 11: the app shell (everything the page loads) at most this many gzipped bytes. */
export const BUDGET_GZIP = 200 * 1024;

/** The newest modification time of a file or of anything under a folder. */
export function newestMtime(path) {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = 0;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

/** True when there is no build, or a console source (or the locked dependencies) changed after it. */
export function consoleStale() {
  const built = join(CONSOLE_OUT, 'index.html');
  if (!existsSync(built)) return true;
  const sources = Math.max(
    newestMtime(CONSOLE_SRC),
    newestMtime(fileURLToPath(import.meta.url)),
    newestMtime(join(root, 'package-lock.json')),
  );
  return sources > statSync(built).mtimeMs;
}

/** Each built file with its raw and gzipped size (gzip -9, what a server compressing it would send at best). */
export function bundleSizes(dir = CONSOLE_OUT) {
  return readdirSync(dir, { recursive: true })
    .map(String)
    .filter((name) => statSync(join(dir, name)).isFile())
    .sort()
    .map((name) => {
      const body = readFileSync(join(dir, name));
      return { name, raw: body.length, gzip: gzipSync(body, { level: 9 }).length };
    });
}

const kb = (n) => `${(n / 1024).toFixed(1)} kB`;

export function sizeReport(sizes = bundleSizes()) {
  const width = Math.max(...sizes.map((s) => s.name.length), 5);
  const row = (name, raw, gzip) => `  ${name.padEnd(width)}  ${raw.padStart(10)}  ${gzip.padStart(10)}`;
  const total = sizes.reduce((t, s) => ({ raw: t.raw + s.raw, gzip: t.gzip + s.gzip }), { raw: 0, gzip: 0 });
  return [
    `console bundle (${relative(root, CONSOLE_OUT)}):`,
    row('file', 'raw', 'gzipped'),
    ...sizes.map((s) => row(s.name, kb(s.raw), kb(s.gzip))),
    row('total', kb(total.raw), kb(total.gzip)),
    `  app shell ${kb(total.gzip)} gzipped of a ${kb(BUDGET_GZIP)} budget (${total.gzip <= BUDGET_GZIP ? 'within' : 'OVER'})`,
  ].join('\n');
}

/**
 * Builds dist/console; throws when Vite fails or the shell is over budget. The build goes to a folder beside it and
 * replaces the old one only once it succeeded: a failed build leaves the last good console served.
 */
export async function buildConsole({ quiet = false } = {}) {
  // Loaded here: the server itself never needs Vite, only this build does.
  const { build } = await import('vite');
  const next = `${CONSOLE_OUT}.next`;
  rmSync(next, { recursive: true, force: true });
  try {
    await buildInto(build, next);
    const sizes = bundleSizes(next);
    const gzip = sizes.reduce((t, s) => t + s.gzip, 0);
    if (!quiet) process.stdout.write(`${sizeReport(sizes)}\n`);
    if (gzip > BUDGET_GZIP)
      throw new Error(`the console bundle is ${kb(gzip)} gzipped, over the ${kb(BUDGET_GZIP)} budget`);
    const old = `${CONSOLE_OUT}.old`;
    rmSync(old, { recursive: true, force: true });
    if (existsSync(CONSOLE_OUT)) renameSync(CONSOLE_OUT, old);
    renameSync(next, CONSOLE_OUT);
    rmSync(old, { recursive: true, force: true });
    return sizes;
  } finally {
    rmSync(next, { recursive: true, force: true });
  }
}

async function buildInto(build, outDir) {
  await build({
    configFile: false,
    root: CONSOLE_SRC,
    base: '/console/',
    logLevel: 'warn',
    // Preact's JSX runtime; no Babel, no plugin: Vite's own transform does it.
    oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
    build: {
      outDir,
      emptyOutDir: true,
      // Flat: the server serves the files of one folder by name.
      assetsDir: '',
      // The preload polyfill is an inline script, which the console's CSP (script-src 'self') refuses.
      modulePreload: { polyfill: false },
      // Assets stay files: a font inlined as a data: URL would be refused (the CSP's font-src is 'self').
      assetsInlineLimit: 0,
      target: 'es2022',
      sourcemap: false,
      reportCompressedSize: false,
    },
  });
}

/** Builds when stale; true when it built. */
export async function buildConsoleIfStale(opts) {
  if (!consoleStale()) return false;
  await buildConsole(opts);
  return true;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const ifStale = process.argv.includes('--if-stale');
  try {
    if (ifStale) {
      if (!(await buildConsoleIfStale())) process.stdout.write('console bundle up to date\n');
    } else await buildConsole();
  } catch (err) {
    process.stderr.write(`console build failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
