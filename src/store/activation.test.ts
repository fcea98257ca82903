import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BACKENDS, type OpenedStores } from '../../test/support/store-backends.js';

/** The ActivationStore contract (activation.ts), run against each backend (SQLite, PostgreSQL). */
for (const backend of BACKENDS)
  describe(`activation store contract: ${backend.name}`, { skip: backend.skip }, () => {
    let opened: OpenedStores;
    before(async () => {
      opened = await backend.open();
    });
    after(() => opened.close());

    it('issue creates one pending record per device with a 6-digit code; issuing again returns it', async () => {
      const { activations } = opened;
      assert.equal(await activations.get('dev-a'), undefined);
      const rec = await activations.issue('dev-a', 'client-a', 100);
      assert.match(rec.code, /^\d{6}$/);
      assert.match(rec.challenge, /^[0-9a-f]{32}$/);
      assert.deepEqual(rec, { ...rec, deviceId: 'dev-a', clientId: 'client-a', createdAt: 100, activatedAt: null });
      assert.deepEqual(await activations.issue('dev-a', 'client-other', 200), rec);
      assert.deepEqual(await opened.againCore().activations.get('dev-a'), rec);
      assert.equal(await activations.isActivated('dev-a'), false);
    });

    it('the code activates its device once, through any connection; a wrong or malformed code none', async () => {
      const { activations } = opened;
      const rec = await activations.issue('dev-b', 'client-b', 100);
      const other = opened.againCore().activations;
      assert.equal(await other.activateByCode('12ab56'), undefined);
      const wrong = rec.code === '000000' ? '000001' : '000000';
      assert.equal(await other.activateByCode(wrong), undefined);
      const done = await other.activateByCode(` ${rec.code} `, 500);
      assert.deepEqual(done, { ...rec, activatedAt: 500 });
      assert.equal(await activations.isActivated('dev-b'), true);
      assert.equal((await activations.get('dev-b'))?.activatedAt, 500);
      assert.equal(await activations.activateByCode(rec.code, 600), undefined);
      // An activated device keeps its record: issuing again does not make it pending.
      assert.equal((await activations.issue('dev-b', 'client-b', 700)).activatedAt, 500);
    });

    it('pending codes are unique, and two connections issuing for one device agree on its record', async () => {
      const { activations } = opened;
      const other = opened.againCore().activations;
      const recs = await Promise.all(
        Array.from({ length: 30 }, (_, i) => (i % 2 ? other : activations).issue(`dev-u${i >> 1}`, `c${i}`, 1000)),
      );
      for (let i = 0; i < recs.length; i += 2) assert.deepEqual(recs[i], recs[i + 1]);
      const pending = (await activations.list()).filter((r) => r.activatedAt === null);
      assert.equal(new Set(pending.map((r) => r.code)).size, pending.length);
    });

    it('a code already pending for another device is not given again: the next one is tried; none free is an error', async () => {
      // Codes from a list: dev-k1 takes 424242; dev-k2 draws it again (pending for dev-k1), then 515151.
      const drawn: string[] = [];
      const fromList = (codes: string[]) => () => {
        const code = codes.shift() ?? '999999';
        drawn.push(code);
        return code;
      };
      const store = opened.activationsWith(fromList(['424242', '424242', '515151']));
      assert.equal((await store.issue('dev-k1', 'c1', 100)).code, '424242');
      const second = await store.issue('dev-k2', 'c2', 100);
      assert.equal(second.code, '515151');
      assert.deepEqual(drawn, ['424242', '424242', '515151'], 'the collision drew another code');
      assert.equal((await opened.activations.get('dev-k2'))?.code, '515151');
      // Every draw taken: a clear error, and nothing written for the device.
      const stuck = opened.activationsWith(() => '424242');
      await assert.rejects(stuck.issue('dev-k3', 'c3', 100), /could not allocate a free activation code/);
      assert.equal(await opened.activations.get('dev-k3'), undefined);
      // An activated device's code is free again.
      assert.ok(await opened.activations.activateByCode('424242', 200));
      assert.equal((await stuck.issue('dev-k3', 'c3', 300)).code, '424242');
    });

    it('list gives the records newest first', async () => {
      const { activations } = opened;
      await activations.issue('dev-late', 'c', 9_000_000);
      const list = await activations.list();
      assert.equal(list[0]?.deviceId, 'dev-late');
      assert.ok(list.some((r) => r.deviceId === 'dev-a'));
    });
  });
