// `npm run test:run`: every *.test.ts under src/ and test/, through node's test runner, with its TAP output passed
// through. Exits non-zero when the runner does, and also when any top-level test file reported `not ok`: Node 20's
// runner was seen ending 0 with `# fail 0` after a file had failed (2026-12-03), so CI must not rely on its count.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

function testFiles(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...testFiles(p));
    else if (entry.name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const files = [...testFiles('src'), ...testFiles('test')].sort();
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=180000', ...process.argv.slice(2), ...files],
  { stdio: ['inherit', 'pipe', 'inherit'] },
);
const failed = [];
let rest = '';
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  const lines = (rest + chunk.toString('utf8')).split('\n');
  rest = lines.pop() ?? '';
  for (const line of lines) if (line.startsWith('not ok ')) failed.push(line);
});
child.on('close', (code, signal) => {
  if (rest.startsWith('not ok ')) failed.push(rest);
  if (failed.length) {
    process.stderr.write(`\n${failed.length} test file(s) failed:\n${failed.map((l) => `  ${l}`).join('\n')}\n`);
  }
  process.exit(code || signal ? code || 1 : failed.length ? 1 : 0);
});
