// `npm start`: install the Debian packages the default config uses (idempotent), build if the sources
// changed, then serve. Extra arguments go to `linus serve` (npm start -- --port 9000).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

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

process.argv = [process.argv[0], 'linus', 'serve', ...process.argv.slice(2)];
await import(new URL('../dist/cli/index.js', import.meta.url).href);
