import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BACKENDS, type OpenedStores } from '../../test/support/store-backends.js';

/** The DeviceBindings contract (bindings.ts), run against each backend (SQLite, PostgreSQL). */
for (const backend of BACKENDS)
  describe(`device bindings contract: ${backend.name}`, { skip: backend.skip }, () => {
    let opened: OpenedStores;
    before(async () => {
      opened = await backend.open();
    });
    after(() => opened.close());

    it('the first client id to claim a device id owns it; another is refused, the owner again accepted', async () => {
      const { bindings } = opened;
      assert.equal(await bindings.get('dev-a'), undefined);
      assert.equal((await bindings.claim('dev-a', 'client-1', 10)).clientId, 'client-1');
      assert.equal((await bindings.claim('dev-a', 'client-2', 20)).clientId, 'client-1', 'the owner, not the claimant');
      assert.equal((await bindings.claim('dev-a', 'client-1', 30)).clientId, 'client-1');
      assert.deepEqual(await bindings.get('dev-a'), { deviceId: 'dev-a', clientId: 'client-1', boundAt: 10 });
    });

    it('a claim made through another connection (another node) binds for all', async () => {
      const other = opened.againCore().bindings;
      assert.equal((await other.claim('dev-b', 'client-1', 10)).clientId, 'client-1');
      assert.equal((await opened.bindings.claim('dev-b', 'client-2', 20)).clientId, 'client-1');
      assert.equal((await opened.bindings.get('dev-b'))?.clientId, 'client-1');
    });

    it('of concurrent claims for a free device id from two connections, exactly one wins', async () => {
      const other = opened.againCore().bindings;
      const ids = Array.from({ length: 10 }, (_, i) => `race-${i}`);
      for (const dev of ids) {
        const claimants = ['client-x', 'client-y', 'client-z'];
        const results = await Promise.all([
          opened.bindings.claim(dev, 'client-x', 1),
          other.claim(dev, 'client-y', 1),
          opened.bindings.claim(dev, 'client-z', 1),
        ]);
        const owner = (await other.get(dev))?.clientId;
        assert.ok(owner && claimants.includes(owner), `${dev}: ${owner}`);
        // Every claim answers with the one winner: the claimant that won, the others its owner.
        assert.deepEqual(
          results.map((b) => b.clientId),
          [owner, owner, owner],
          `${dev}: ${JSON.stringify(results)}`,
        );
      }
    });

    it('rebind moves the device id to another client id, or frees it, returning what it replaced', async () => {
      const { bindings } = opened;
      await bindings.claim('dev-c', 'old-client', 10);
      const before = await bindings.rebind('dev-c', 'new-client', 20);
      assert.deepEqual(before, { deviceId: 'dev-c', clientId: 'old-client', boundAt: 10 });
      assert.equal((await bindings.claim('dev-c', 'old-client', 30)).clientId, 'new-client');
      assert.equal((await bindings.claim('dev-c', 'new-client', 30)).clientId, 'new-client');
      assert.equal((await bindings.rebind('dev-c'))?.clientId, 'new-client');
      assert.equal(await bindings.get('dev-c'), undefined);
      assert.equal(await bindings.rebind('dev-c'), undefined);
      assert.equal((await bindings.claim('dev-c', 'third-client', 40)).clientId, 'third-client');
    });

    it('list gives the bindings newest first', async () => {
      const { bindings } = opened;
      await bindings.claim('dev-list-1', 'c1', 1_000_000);
      await bindings.claim('dev-list-2', 'c2', 2_000_000);
      const list = await bindings.list();
      assert.deepEqual(
        list.slice(0, 2).map((b) => b.deviceId),
        ['dev-list-2', 'dev-list-1'],
      );
      assert.ok(list.some((b) => b.deviceId === 'dev-a' && b.clientId === 'client-1'));
    });
  });
