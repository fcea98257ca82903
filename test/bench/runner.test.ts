import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const linus = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', 'bench', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
/** The runner itself, what `linus bench` starts (one process less). */
const runner = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });

describe('linus bench', () => {
  it('--help (through the CLI) lists every profile', () => {
    const r = linus('--help');
    assert.equal(r.status, 0, r.stderr);
    for (const name of ['talk', 'idle', 'control', 'peer', 'soak', 'faults', 'storm', 'fuzz', 'crash'])
      assert.match(r.stdout, new RegExp(`^  ${name} `, 'm'));
  });

  it("<profile> --help lists the profile's flags with their defaults", () => {
    const r = runner('talk', '--help');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /--levels V .*\(10,100,300,500; smoke 2\)/);
    assert.match(r.stdout, /--report FILE.html/);
  });

  it('a usage error is exit 2 with the reason', () => {
    const unknown = linus('nosuch');
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /unknown profile "nosuch"/);
    const badFlag = runner('peer', '--no-such-flag');
    assert.equal(badFlag.status, 2);
    assert.match(badFlag.stderr, /--no-such-flag/);
    const badValue = runner('peer', '--messages', 'many', '--source');
    assert.equal(badValue.status, 2);
    assert.match(badValue.stderr, /--messages must be a number/);
  });
});
