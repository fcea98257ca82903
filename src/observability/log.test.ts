import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { closeLogger, createLogger, truncateForLog } from './log.js';

describe('logging (D-5)', () => {
  it('keeps head and tail of long messages', () => {
    const long = `HEAD${'x'.repeat(5000)}TAIL`;
    const cut = truncateForLog(long, 200);
    assert.ok(cut.length < 260, `length ${cut.length}`);
    assert.ok(cut.startsWith('HEAD'));
    assert.ok(cut.endsWith('TAIL'));
    assert.match(cut, /chars cut/);
    assert.equal(truncateForLog('short', 200), 'short');
  });

  it('writes JSON lines with secrets redacted and long messages truncated', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'linus-log-'));
    try {
      const file = join(dir, 'sub', 'linus.log');
      const log = createLogger({ level: 'info', maxMessageLength: 100, file });
      log.info(
        {
          authorization: 'Bearer supersecret',
          headers: { authorization: 'Bearer alsosecret' },
          content: { secret: 'adminsecret' },
          api_key: 'sk-123',
        },
        'y'.repeat(1000),
      );
      log.debug('not at this level');
      await new Promise<void>((resolve) => log.flush(() => resolve()));
      await new Promise((r) => setTimeout(r, 50));
      const lines = readFileSync(file, 'utf8').trim().split('\n');
      assert.equal(lines.length, 1);
      const entry = JSON.parse(lines[0]!) as Record<string, unknown>;
      const text = lines[0]!;
      for (const secret of ['supersecret', 'alsosecret', 'adminsecret', 'sk-123'])
        assert.ok(!text.includes(secret), secret);
      assert.equal(entry.authorization, '***');
      assert.ok(String(entry.msg).length < 160);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a log file that cannot be written (disk full) stops the log with one note on stderr, and close returns', async () => {
    const notes: string[] = [];
    const stderrWrite = process.stderr.write;
    process.stderr.write = ((chunk: string | Uint8Array) => notes.push(String(chunk)) > 0) as typeof stderrWrite;
    try {
      // /dev/full fails every write with ENOSPC, as a full disk does.
      const log = createLogger({ level: 'info', maxMessageLength: 100, file: '/dev/full' });
      log.info('first');
      log.info('second');
      // Calls back once the lines are out or the sink has failed: here, failed.
      await new Promise<void>((resolve) => log.flush(() => resolve()));
      log.info('after the failure: dropped, not thrown');
      await closeLogger(log, new AbortController().signal);
      assert.deepEqual(notes, ['linus: writing the log to /dev/full failed (ENOSPC); logging stops\n']);
    } finally {
      process.stderr.write = stderrWrite;
    }
  });
});
