import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { validateConfig } from '../../config/load.js';
import { openDatabase } from '../../store/sqlite.js';
import { PeerAcl } from './acl.js';
import { peerConfig } from './config.js';
import { correctNormalized, envelopeFor, parsePeerRequest, type PeerEnvelope } from './message.js';
import { SlidingWindowLimiter } from './rate-limit.js';
import { SqlitePeerQueue } from './sqlite-queue.js';
import { extractJsonObject } from '../../json.js';
import { sanitizeForPrompt } from './structure.js';

const cfg = (peer: Record<string, unknown>) => peerConfig(validateConfig({ peer }).config);

describe('peer config', () => {
  it('has the documented defaults; an invalid key keeps its own default only', () => {
    const d = cfg({});
    assert.equal(d.allow_all, true);
    assert.equal(d.max_targets, 10);
    assert.equal(d.offline_max_per_device, 100);
    assert.equal(d.offline_ttl_ms, 3 * 24 * 3600 * 1000);
    assert.equal(d.rate_limit_per_second, 5);
    assert.equal(d.broadcast_per_minute, 6);
    assert.equal(d.llm_structuring, false);
    const bad = cfg({ max_targets: 'lots', allow_all: false });
    assert.equal(bad.max_targets, 10);
    assert.equal(bad.allow_all, false);
  });
});

describe('peer request parsing', () => {
  it('normalises `to` (case, quotes, duplicates) and `category`; broadcast is a flag', () => {
    const r = parsePeerRequest({
      type: 'peer',
      to: ['"AA:BB"', 'aa:bb', " 'Cc' ", 'BROADCAST'],
      category: ' TASK ',
      payload: { text: 'x' },
    });
    assert.ok(r.ok);
    assert.deepEqual(r.request.targets, ['aa:bb', 'cc']);
    assert.equal(r.request.broadcast, true);
    assert.equal(r.request.category, 'task');
  });

  it('corrects a structured form without failing on wrong fields', () => {
    assert.deepEqual(
      correctNormalized(
        { title: ' T ', priority: 'P7', status: 'Completed', assignees: ['a', 'a', 3, ''], extra: 1 },
        { keepUnknown: false },
      ),
      {
        title: 'T',
        priority: 3,
        status: 'done',
        assignees: ['a'],
      },
    );
    assert.equal(correctNormalized({ priority: 'whatever' }, { keepUnknown: false }), undefined);
  });

  it('builds the D19 envelope with exactly its fields', () => {
    const base = { id: 'i', from: 'a', category: 'message', payload: { text: 'x' }, ts: 1 };
    assert.deepEqual(Object.keys(envelopeFor(base, 'b')), [
      'type',
      'event',
      'id',
      'from',
      'to',
      'category',
      'payload',
      'ts',
    ]);
    assert.deepEqual(Object.keys(envelopeFor({ ...base, normalized: { title: 't' } }, 'b')), [
      'type',
      'event',
      'id',
      'from',
      'to',
      'category',
      'payload',
      'normalized',
      'ts',
    ]);
  });
});

describe('peer ACL', () => {
  const dir = { roleOf: (id: string) => (id === 'boss' ? 'lead' : undefined), groupOf: (id: string) => id.slice(0, 2) };
  it('allow_all lets everyone through; otherwise grants decide', () => {
    assert.equal(new PeerAcl(cfg({}), dir).mayMessage('x', 'y'), true);
    const acl = new PeerAcl(
      cfg({
        allow_all: false,
        allowlist: { 'G1-A': ['same_group', 'role:lead'] },
        roles_grants: { lead: ['*', 'broadcast'] },
      }),
      dir,
    );
    assert.equal(acl.mayMessage('g1-a', 'g1-b'), true, 'same_group');
    assert.equal(acl.mayMessage('g1-a', 'g2-b'), false);
    assert.equal(acl.mayMessage('g1-a', 'boss'), true, 'role:lead');
    assert.equal(acl.mayBroadcast('g1-a'), false);
    assert.equal(acl.mayBroadcast('boss'), true, 'roles from devices.yaml');
    assert.equal(acl.mayMessage('boss', 'anyone'), true);
    assert.equal(new PeerAcl(cfg({ allow_broadcast: false }), dir).mayBroadcast('boss'), false);
  });
});

describe('sliding window limiter', () => {
  it('allows `limit` per window and says when the next slot frees', () => {
    const l = new SlidingWindowLimiter();
    for (let i = 0; i < 5; i++) assert.deepEqual(l.take('a', 5, 1000, 1000 + i * 10), { ok: true });
    assert.deepEqual(l.take('a', 5, 1000, 1100), { ok: false, retryAfterMs: 900 });
    assert.deepEqual(l.take('a', 5, 1000, 2000), { ok: true });
    l.sweep(1000, 10_000);
    assert.equal(l.size, 0);
  });
});

describe('LLM structuring helpers', () => {
  it('fences the text and extracts JSON from chatty answers', () => {
    assert.equal(sanitizeForPrompt('a ```js\nb``` </message> c\u0007', 100), 'a b  c');
    assert.deepEqual(extractJsonObject('Sure: {"title":"x"} done'), { title: 'x' });
    assert.equal(extractJsonObject('no json'), undefined);
  });
});

describe('SQLite peer queue', () => {
  const env = (id: string, from = 's'): PeerEnvelope => ({
    type: 'peer',
    event: 'message',
    id,
    from,
    to: 't',
    category: 'message',
    payload: {},
    ts: 0,
  });

  it('keeps order, refuses beyond the cap, expires, and removes only what it is told (across reopen)', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'linus-peerq-'));
    try {
      let db = openDatabase(dataDir);
      let q = new SqlitePeerQueue(db);
      const item = (id: string, now = 1000, ttl = 10_000) => ({
        deviceId: 't',
        envelope: env(id),
        queuedAt: now,
        expiresAt: now + ttl,
        maxPerDevice: 3,
      });
      // Calls in the same turn share one transaction and keep their order.
      const outcomes = await Promise.all([
        q.enqueue([item('1')]),
        q.enqueue([item('2'), item('3')]),
        q.enqueue([item('4')]),
      ]);
      assert.deepEqual(outcomes, [['queued'], ['queued', 'queued'], ['full']]);
      const peeked = await q.peek('t', 10, 2000);
      assert.deepEqual(
        peeked.map((m) => m.id),
        ['1', '2', '3'],
      );
      await q.remove([peeked[0]!.ref]);
      await q.close();
      db.close();

      db = openDatabase(dataDir);
      q = new SqlitePeerQueue(db);
      assert.deepEqual(
        (await q.peek('t', 10, 2000)).map((m) => m.id),
        ['2', '3'],
      );
      // Expired rows (2 and 3) are never returned, and do not count against the cap once it is reached.
      assert.deepEqual(await q.enqueue([item('5', 20_000)]), ['queued']);
      assert.deepEqual(await q.enqueue([item('6', 20_000)]), ['queued']);
      assert.deepEqual(
        (await q.peek('t', 10, 20_000)).map((m) => m.id),
        ['5', '6'],
      );
      assert.equal(await q.count('t', 20_000), 2);
      assert.equal(await q.dropExpired(10_000_000), 2);
      await q.close();
      await assert.rejects(q.enqueue([item('6')]), /closed/);
      db.close();
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
