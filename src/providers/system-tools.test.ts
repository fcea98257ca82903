import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { findExecutable, missingPackageHint, missingToolError, requireExecutable } from './system-tools.js';
import { ProviderError } from './types.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linus-tools-'));
  await writeFile(join(dir, 'tool'), '#!/bin/sh\n');
  await chmod(join(dir, 'tool'), 0o755);
  await writeFile(join(dir, 'plain'), 'not executable');
});
after(() => rm(dir, { recursive: true, force: true }));

test('findExecutable searches PATH in order and returns an absolute path', async () => {
  assert.equal(await findExecutable('tool', ['/nonexistent', dir].join(':')), join(dir, 'tool'));
  assert.match((await findExecutable('sh')) ?? '', /^\/.*\/sh$/);
});

test('findExecutable takes a name with a slash as a path, and rejects non-executables and directories', async () => {
  assert.equal(await findExecutable(join(dir, 'tool'), ''), join(dir, 'tool'));
  assert.equal(await findExecutable(join(dir, 'plain')), undefined);
  assert.equal(await findExecutable('plain', dir), undefined);
  assert.equal(await findExecutable(dir), undefined);
  assert.equal(await findExecutable('no-such-tool-anywhere'), undefined);
  assert.equal(await findExecutable(''), undefined);
});

test('findExecutable ignores empty PATH entries (they would mean the current directory)', async () => {
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    assert.equal(await findExecutable('tool', ':/nonexistent:'), undefined);
  } finally {
    process.chdir(cwd);
  }
});

test('missingPackageHint names the Debian packages', () => {
  assert.equal(missingPackageHint('pocketsphinx_continuous'), 'pocketsphinx pocketsphinx-en-us');
  assert.equal(missingPackageHint('/usr/bin/flite'), 'flite');
  assert.equal(missingPackageHint('espeak-ng'), 'espeak-ng');
  assert.equal(missingPackageHint('sox'), 'sox');
});

test('requireExecutable throws a config error with the install command', async () => {
  await assert.rejects(requireExecutable('FliteTTS', '/nonexistent/flite'), (err: unknown) => {
    assert.ok(err instanceof ProviderError);
    assert.equal(err.kind, 'config');
    assert.match(err.message, /^FliteTTS: \/nonexistent\/flite not found; install it with: apt-get install flite$/);
    return true;
  });
  assert.equal(
    missingToolError('x', 'pocketsphinx_continuous').message,
    'x: pocketsphinx_continuous not found; install it with: apt-get install pocketsphinx pocketsphinx-en-us',
  );
});
