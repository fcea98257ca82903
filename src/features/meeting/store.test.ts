import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BACKENDS, type OpenedStores } from '../../../test/support/store-backends.js';
import type { WebhookOutbox } from './outbox.js';
import { meetingSummaryFor, type MeetingStore, type SummaryMeta } from './store.js';
import { normalizeSummary } from './summary.js';

const meta: SummaryMeta = {
  source: 'llm',
  llmElapsedMs: 5,
  durationMs: 60_000,
  segmentsCount: 2,
  checkpointCount: 0,
  emptyBullets: false,
  industry: '',
  scenario: '',
};
const summary = (title: string) =>
  normalizeSummary(
    { title, bullets: ['b'], actions: ['do it'], nextSteps: ['next'] },
    { durationMs: 60_000, sourceSegments: 2, checkpoint: false, lang: 'en' },
  );

/** The MeetingStore and WebhookOutbox contract, run against each backend (SQLite, PostgreSQL). */
for (const backend of BACKENDS)
  describe(`meeting store contract: ${backend.name}`, { skip: backend.skip }, () => {
    let opened: OpenedStores;
    let store: MeetingStore;
    let outbox: WebhookOutbox;
    before(async () => {
      opened = await backend.open();
      store = opened.stores.meetings;
      outbox = opened.stores.webhooks;
    });
    after(() => opened.close());

    it('one active meeting per device; snippets keep their order through pending and merge', async () => {
      const { meeting, created } = await store.openMeeting('dev-a', 'sess-1', 'm1', 1000);
      assert.equal(created, true);
      assert.equal((await store.openMeeting('dev-a', 'sess-2', 'm-other', 2000)).meeting.id, 'm1');
      await store.appendSnippets(
        meeting.id,
        [
          { ts: 1100, text: 'one', speakerId: 's1' },
          { ts: 1100, text: 'two' },
        ],
        200,
      );
      const push = await store.pushCycle(meeting.id, 50);
      assert.deepEqual(
        push.items.map((s) => [s.seq, s.text]),
        [
          [1, 'one'],
          [2, 'two'],
        ],
      );
      assert.equal(push.total, 2);
      await store.appendSnippets(meeting.id, [{ ts: 1200, text: 'three', tag: 't' }], 200);
      // The transcript shows merged segments and pending snippets alike.
      const page = await store.transcript(meeting.id, 0, 10);
      assert.deepEqual(
        page.items.map((s) => s.text),
        ['one', 'two', 'three'],
      );
      assert.equal(page.total, 3);
      assert.deepEqual(
        (await store.pushCycle(meeting.id, 50)).items.map((s) => s.text),
        ['three'],
        'only what was not pushed yet',
      );
      assert.deepEqual((await store.pushCycle(meeting.id, 50)).items, []);
      assert.equal((await store.get(meeting.id))?.lastSnippetAt, 1200);
    });

    it('reaching the pending cap merges at once instead of dropping', async () => {
      const { meeting } = await store.openMeeting('dev-cap', 's', 'm-cap', 0);
      for (let i = 0; i < 25; i++)
        await store.appendSnippets(
          meeting.id,
          Array.from({ length: 10 }, (_, j) => ({ ts: i, text: `t${i}-${j}` })),
          200,
        );
      const page = await store.transcript(meeting.id, 0, 500);
      assert.equal(page.total, 250);
      assert.equal(page.items[249]!.text, 't24-9');
      assert.ok((await store.get(meeting.id))!.segmentsCount >= 200);
    });

    it('finalizing refuses new snippets; one summary wins, with its webhook in the same transaction', async () => {
      const { meeting } = await store.openMeeting('dev-f', 's', 'm-f', 0);
      await store.appendSnippets(meeting.id, [{ ts: 10, text: 'x' }], 200);
      const begun = await store.beginFinalize(meeting.id, 500);
      assert.equal(begun?.pendingCount, 1);
      assert.equal(
        (await store.beginFinalize(meeting.id, 900))?.meeting.endedAt,
        500,
        'a resumed finalize keeps the end time',
      );
      assert.deepEqual(await store.appendSnippets(meeting.id, [{ ts: 20, text: 'late' }], 200), {
        ok: false,
        status: 'finalizing',
      });
      await assert.rejects(store.openMeeting('dev-f', 's', 'm-f2', 600), /finalizing/);
      const first = await store.complete(meeting.id, summary('First'), meta, 1000, {
        id: 'w1',
        meetingId: meeting.id,
        url: 'http://x/',
        headers: {},
        body: '{}',
        timeoutMs: 5000,
      });
      const second = await store.complete(meeting.id, summary('Second'), meta, 1001, {
        id: 'w2',
        meetingId: meeting.id,
        url: 'http://x/',
        headers: {},
        body: '{}',
        timeoutMs: 5000,
      });
      assert.equal(first.won, true);
      assert.equal(second.won, false);
      assert.equal(second.stored.summary.title, 'First');
      assert.deepEqual(await outbox.status('w1'), { status: 'pending', attempts: 0 });
      assert.equal(await outbox.status('w2'), undefined, 'the losing summary queued no webhook');
      assert.equal((await store.get(meeting.id))?.status, 'done');
      assert.equal((await store.transcript(meeting.id, 0, 10)).items.length, 1);
      assert.equal((await store.openMeeting('dev-f', 's', 'm-f3', 2000)).created, true, 'a new meeting after done');
    });

    it('outbox: due rows, one retry, then failed', async () => {
      const due = await outbox.due(Date.now(), 10);
      assert.ok(due.some((j) => j.id === 'w1'));
      await outbox.failed('w1', 'HTTP 500', 5000);
      assert.deepEqual(await outbox.status('w1'), { status: 'pending', attempts: 1 });
      assert.equal(await outbox.nextDueAt(), 5000);
      await outbox.failed('w1', 'HTTP 500', undefined);
      assert.deepEqual(await outbox.status('w1'), { status: 'failed', attempts: 2 });
      assert.equal(await outbox.nextDueAt(), undefined);
    });

    it('recent: newest first, device prefix, status filter', async () => {
      const recent = await store.recent({ limit: 10, offset: 0 });
      assert.deepEqual(
        recent.map((m) => m.id),
        ['m-f'],
      );
      const all = await store.recent({ limit: 10, offset: 0, status: 'all' });
      assert.equal(all.length, 4);
      assert.deepEqual(
        (await store.recent({ limit: 10, offset: 0, status: 'all', deviceId: 'dev-x' })).map((m) => m.id),
        [],
      );
      assert.deepEqual(
        (await store.recent({ limit: 10, offset: 0, status: 'all', deviceId: 'DEV-CA' })).map((m) => m.id),
        ['m-cap'],
      );
      assert.deepEqual((await store.recent({ limit: 1, offset: 1, status: 'all', deviceId: 'dev-' })).length, 1);
      // LIKE wildcards in the filter are literal.
      assert.deepEqual(await store.recent({ limit: 10, offset: 0, status: 'all', deviceId: '%' }), []);
    });

    it('meetingSummaryFor: by id or the latest finished meeting', async () => {
      const byId = await meetingSummaryFor(store, 'm-f');
      assert.deepEqual(
        byId && { title: byId.title, actions: byId.actions, nextSteps: byId.nextSteps, deviceId: byId.deviceId },
        {
          title: 'First',
          actions: ['do it'],
          nextSteps: ['next'],
          deviceId: 'dev-f',
        },
      );
      assert.equal((await meetingSummaryFor(store))?.meetingId, 'm-f');
      assert.equal(await meetingSummaryFor(store, 'm1'), undefined, 'not finished');
      assert.equal(await meetingSummaryFor(store, 'nope'), undefined);
      assert.equal(await meetingSummaryFor(store, undefined, { devicePrefix: 'zz' }), undefined);
    });

    it('two stores on the same data (two nodes): one meeting per device, one summary, segments merged once', async () => {
      const other = opened.again().meetings;
      const opens = await Promise.all([
        store.openMeeting('dev-two', 's1', 'm-two-a', 5000),
        other.openMeeting('dev-two', 's2', 'm-two-b', 5001),
      ]);
      assert.equal(opens.filter((o) => o.created).length, 1, 'exactly one created');
      assert.equal(opens[0].meeting.id, opens[1].meeting.id);
      const id = opens[0].meeting.id;
      await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          (i % 2 ? other : store).appendSnippets(id, [{ ts: 5100 + i, text: `Alpha ${i}` }], 3),
        ),
      );
      await Promise.all([store.mergePending(id), other.mergePending(id)]);
      const page = await store.transcript(id, 0, 100);
      assert.equal(page.total, 10);
      assert.deepEqual(
        page.items.map((s) => s.seq),
        Array.from({ length: 10 }, (_, i) => i + 1),
      );
      await store.beginFinalize(id, 6000);
      const done = await Promise.all([
        store.complete(id, summary('Node A'), meta, 6001),
        other.complete(id, summary('Node B'), meta, 6002),
      ]);
      assert.equal(done.filter((d) => d.won).length, 1, 'exactly one winner');
      assert.equal(done[0].stored.summary.title, done[1].stored.summary.title);
      assert.equal((await other.get(id))?.segmentsCount, 10);
    });

    it('recent: text search is case-insensitive over title, device and transcript', async () => {
      const ids = async (q: string) =>
        (await store.recent({ limit: 10, offset: 0, status: 'all', q })).map((m) => m.id).sort();
      assert.ok((await ids('alpha 3')).length === 1, 'found through the transcript');
      assert.deepEqual(await ids('FIRST'), ['m-f']);
      assert.deepEqual(await ids('no such words'), []);
    });
  });
