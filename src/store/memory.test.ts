import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BACKENDS, type OpenedStores } from '../../test/support/store-backends.js';

/** The MemoryStore contract (memory.ts), run against each backend (SQLite, PostgreSQL). */
for (const backend of BACKENDS)
  describe(`memory store contract: ${backend.name}`, { skip: backend.skip }, () => {
    let opened: OpenedStores;
    before(async () => {
      opened = await backend.open();
    });
    after(() => opened.close());

    it('one summary per device, replaced on save, empty when none', async () => {
      const { memory } = opened;
      assert.equal(await memory.load('dev-m'), '');
      await memory.save('dev-m', 'likes tea', 1);
      await memory.save('dev-n', 'other', 1);
      assert.equal(await memory.load('dev-m'), 'likes tea');
      await memory.save('dev-m', 'likes coffee now', 2);
      assert.equal(await memory.load('dev-m'), 'likes coffee now');
      assert.equal(await memory.load('dev-n'), 'other');
    });
  });
