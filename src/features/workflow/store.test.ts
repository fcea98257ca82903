import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BACKENDS, type OpenedStores } from '../../../test/support/store-backends.js';
import { SnapshotGate } from './gate.js';
import type { TaskStore } from './store.js';
import { checkIds, checkTaskInputs, normalizeGroupKey } from './validate.js';

/** The TaskStore contract, run against each backend (SQLite, PostgreSQL). */
for (const backend of BACKENDS)
  describe(`task store contract: ${backend.name}`, { skip: backend.skip }, () => {
    let opened: OpenedStores;
    let store: TaskStore;
    before(async () => {
      opened = await backend.open();
      store = opened.stores.tasks;
    });
    after(() => opened.close());

    it('creates missing ids with defaults and orders open tasks first, then by priority, then by creation', async () => {
      const r = await store.upsert(
        [
          { id: 'a', groupKey: 'g1', title: 'low', priority: 3 },
          { id: 'b', groupKey: 'g1', title: 'urgent', priority: 0 },
          { id: 'c', groupKey: 'g1', title: 'closed', priority: 0, status: 'done' },
          { id: 'd', groupKey: 'g1', title: 'default' },
          { id: 'a', groupKey: 'g2', title: 'same id, other group' },
        ],
        1000,
      );
      assert.deepEqual(r.created, ['a', 'b', 'c', 'd']);
      assert.deepEqual(r.changedGroups.sort(), ['g1', 'g2']);
      const { items, total } = await store.list('g1');
      assert.equal(total, 4);
      assert.deepEqual(
        items.map((t) => t.id),
        ['b', 'd', 'a', 'c'],
      );
      assert.equal(items.find((t) => t.id === 'd')?.priority, 2);
      assert.equal(items.find((t) => t.id === 'd')?.status, 'open');
      assert.equal((await store.get('g2', 'a'))?.title, 'same id, other group');
    });

    it('upserts field by field, merges unknown fields, and reports no change for an identical patch', async () => {
      await store.upsert(
        [{ id: 'x', groupKey: 'g3', title: 'write docs', extra: { description: 'all of them', assignees: ['p'] } }],
        1000,
      );
      const r = await store.upsert([{ id: 'x', groupKey: 'g3', priority: 1, extra: { due: '2025-01-01' } }], 2000);
      assert.deepEqual(r, { ids: ['x'], created: [], changedGroups: ['g3'] });
      const t = await store.get('g3', 'x');
      assert.equal(t?.title, 'write docs');
      assert.equal(t?.priority, 1);
      assert.deepEqual(t?.extra, { description: 'all of them', assignees: ['p'], due: '2025-01-01' });
      assert.equal(t?.createdAt, 1000);
      assert.equal(t?.updatedAt, 2000);
      const same = await store.upsert([{ id: 'x', groupKey: 'g3', priority: 1, title: 'write docs' }], 3000);
      assert.deepEqual(same.changedGroups, []);
      assert.equal((await store.get('g3', 'x'))?.updatedAt, 2000);
    });

    it('complete, delete and assign are per group and tell what really changed', async () => {
      await store.upsert(
        [
          { id: 't1', groupKey: 'g4' },
          { id: 't2', groupKey: 'g4' },
        ],
        1,
      );
      assert.deepEqual(await store.complete('g4', ['t1', 'nope'], 2), {
        completed: ['t1'],
        alreadyDone: [],
        notFound: ['nope'],
      });
      assert.deepEqual(await store.complete('g4', ['t1'], 3), { completed: [], alreadyDone: ['t1'], notFound: [] });
      assert.deepEqual(await store.complete('other', ['t2'], 3), { completed: [], alreadyDone: [], notFound: ['t2'] });
      assert.equal(await store.assign('g4', 't2', 'ann|aa:bb', 4), 'changed');
      assert.equal(await store.assign('g4', 't2', 'ann|aa:bb', 5), 'unchanged');
      assert.equal(await store.assign('g4', 'missing', 'ann', 5), 'not_found');
      assert.deepEqual(await store.delete('g4', ['t1', 't1', 'zz']), { deleted: ['t1'], notFound: ['zz'] });
      assert.deepEqual(
        (await store.list('g4')).items.map((t) => [t.id, t.owner]),
        [['t2', 'ann|aa:bb']],
      );
    });

    it('pages with a true total', async () => {
      await store.upsert(
        Array.from({ length: 7 }, (_, i) => ({ id: `p${i}`, groupKey: 'g5' })),
        1,
      );
      const page = await store.list('g5', { limit: 3, offset: 6 });
      assert.deepEqual(
        page.items.map((t) => t.id),
        ['p6'],
      );
      assert.equal(page.total, 7);
      assert.deepEqual((await store.list('g5', { limit: 3, offset: 50 })).items, []);
    });

    it('a second store on the same data sees the same tasks (migrations applied once)', async () => {
      const again = opened.again().tasks;
      assert.equal((await again.list('g1')).total, 4);
    });

    it('two stores writing one group at once (two nodes): every change kept, one winner per decision', async () => {
      const other = opened.again().tasks;
      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 ? other : store).upsert([{ id: `c${i}`, groupKey: 'gc', title: `t${i}` }], 100 + i),
        ),
      );
      assert.equal((await store.list('gc')).total, 20);
      const done = await Promise.all([
        store.complete('gc', ['c1', 'c2'], 200),
        other.complete('gc', ['c1', 'c2'], 201),
      ]);
      assert.equal(done.flatMap((d) => d.completed).length, 2, 'each task completed once');
      assert.equal(done.flatMap((d) => d.alreadyDone).length, 2);
      const assigned = await Promise.all([store.assign('gc', 'c3', 'ann', 300), other.assign('gc', 'c3', 'ann', 301)]);
      assert.deepEqual(assigned.sort(), ['changed', 'unchanged']);
      const deleted = await Promise.all([store.delete('gc', ['c4']), other.delete('gc', ['c4'])]);
      assert.equal(deleted.flatMap((d) => d.deleted).length, 1);
    });
  });

describe('workflow input checks (fork wording)', () => {
  const opts = { defaultGroup: 'aa:bb:cc:' };
  it('only id is required; fields are checked when present', () => {
    assert.deepEqual(checkTaskInputs([{ id: ' t1 ' }], opts), {
      ok: true,
      value: [{ id: 't1', groupKey: 'aa:bb:cc:' }],
    });
    const bad: [unknown, RegExp][] = [
      ['nope', /^tasks must be array$/],
      [[{}], /^id must be non-empty string \(tasks\[0\]\)$/],
      [[{ id: 't', priority: 4 }], /^priority must be integer 0\.\.3/],
      [[{ id: 't', priority: 1.5 }], /^priority must be integer 0\.\.3/],
      [[{ id: 't', priority: '1' }], /^priority must be integer 0\.\.3/],
      [[{ id: 't', status: 'closed' }], /^status must be open\|done/],
      [[{ id: 't', title: 5 }], /^title must be string/],
      [[{ id: 't', groupKey: '' }], /^groupKey must be non-empty string/],
      [[{ id: 't', owner: 7 }], /^owner must be non-empty string/],
      [[{ id: 't', big: 'x'.repeat(9000) }], /^task fields must be at most 8192 bytes/],
    ];
    for (const [input, re] of bad) {
      const r = checkTaskInputs(input, opts);
      assert.equal(r.ok, false, JSON.stringify(input).slice(0, 60));
      if (!r.ok) assert.match(r.message, re);
    }
  });

  it('keeps unknown fields, normalizes status, takes task.groupKey over the default', () => {
    const r = checkTaskInputs(
      [{ id: 't', status: ' DONE ', groupKey: 'Hardware', description: 'd', assignees: ['x'], createdAt: 5 }],
      opts,
    );
    assert.deepEqual(r, {
      ok: true,
      value: [{ id: 't', groupKey: 'Hardware', status: 'done', extra: { description: 'd', assignees: ['x'] } }],
    });
  });

  it('ids must be a non-empty string array', () => {
    for (const v of [undefined, [], ['a', 3], [''], 'a'])
      assert.deepEqual(checkIds(v), { ok: false, message: 'ids must be non-empty string array' });
    assert.deepEqual(checkIds([' a ', 'b']), { ok: true, value: ['a', 'b'] });
  });

  it('group keys: hex prefixes are lower-cased, names are kept', () => {
    assert.equal(normalizeGroupKey(' AA:BB:CC: '), 'aa:bb:cc:');
    assert.equal(normalizeGroupKey('硬件部'), '硬件部');
    assert.equal(normalizeGroupKey('Team-A'), 'Team-A');
    assert.equal(normalizeGroupKey(''), undefined);
    assert.equal(normalizeGroupKey('a\nb'), undefined);
    assert.equal(normalizeGroupKey(3), undefined);
  });
});

describe('snapshot gate', () => {
  it('admits the first automatic trigger, drops the rest of a burst, admits again after the window', () => {
    let now = 10_000;
    const gate = new SnapshotGate(1500, () => now);
    assert.equal(gate.admit(), true); // register
    now += 5;
    assert.equal(gate.admit(), false); // hello
    now += 1000;
    assert.equal(gate.admit(), false); // mode start
    now += 494;
    assert.equal(gate.admit(), false);
    now += 1;
    assert.equal(gate.admit(), true);
  });

  it('an admission that sent nothing is given back, unless another snapshot went out since', () => {
    let now = 0;
    const gate = new SnapshotGate(1500, () => now);
    assert.equal(gate.admit(), true);
    gate.release(gate.lastAt!); // empty list: nothing sent
    now = 10;
    assert.equal(gate.admit(), true);
    const at = gate.lastAt!;
    now = 20;
    gate.record(); // a change push went out meanwhile
    gate.release(at);
    now = 30;
    assert.equal(gate.admit(), false);
  });

  it('any snapshot sent restarts the window', () => {
    let now = 0;
    const gate = new SnapshotGate(1500, () => now);
    gate.record(); // a list answer
    now = 1499;
    assert.equal(gate.admit(), false);
    now = 1500;
    assert.equal(gate.admit(), true);
  });
});
