// `npm start`: install the Debian packages the default config uses (idempotent), build if the sources
// changed, then serve. Extra arguments go to `linus serve` (npm start -- --port 9000).
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildConsoleIfStale, newestMtime } from './console-build.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

if (!process.env.LINUS_SKIP_SYSTEM_PACKAGES) {
  spawnSync('bash', [join(root, 'scripts/ensure-system-packages.sh')], { stdio: 'inherit' });
}

const built = join(root, 'dist/cli/main.js');
const sourcesChanged =
  !existsSync(built) ||
  newestMtime(join(root, 'src')) > statSync(built).mtimeMs ||
  statSync(join(root, 'package.json')).mtimeMs > statSync(built).mtimeMs;
if (sourcesChanged) {
  process.stderr.write('linus: building (sources changed)...\n');
  const r = spawnSync(
    process.execPath,
    [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')],
    { stdio: 'inherit' },
  );
  if (r.status !== 0) process.exit(r.status ?? 1);
}
// The web console's bundle, when its sources changed (the server reads it once at start).
try {
  if (await buildConsoleIfStale({ quiet: true })) process.stderr.write('linus: console built (web/console changed)\n');
} catch (err) {
  // The server still starts: its console page then says the bundle is missing and how to build it.
  process.stderr.write(`linus: console build failed: ${err.message}\n`);
}

process.argv = [process.argv[0], 'linus', 'serve', ...process.argv.slice(2)];
await import(new URL('../dist/cli/index.js', import.meta.url).href);
