#!/usr/bin/env node
// Entry point of the `linus` command: runs the compiled CLI (npm start and npm run build produce dist/).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli/index.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('linus: dist/ is missing; run `npm run build` (or `npm start`, which builds) first\n');
  process.exit(1);
}
await import(entry.href);
