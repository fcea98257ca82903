import { normalizeId } from '../../protocol/ids.js';
import { HttpError } from '../../transport/http-util.js';
import { pagination, validId, type ApiRoutes } from '../../transport/api.js';
import type { MeetingRecord, MeetingStatus, MeetingStore, Segment } from './store.js';
import { SUMMARY_LIST_FIELDS, type MeetingSummary } from './summary.js';

/**
 * The fork's meeting HTTP API (D21) on the shared ApiRoutes (wrapper, token, CORS, rate limit):
 *   GET /supie/meetings/recent               limit (1..100, default 10), offset, deviceId (prefix), fromTs, toTs, status
 *   GET /supie/meetings/:id                  detail with summary, metrics, preview (1..20, default 5)
 *   GET /supie/meetings/:id/transcript       offset ≥ 0, limit 1..500 (default 100): {items,total,offset,limit}
 *   GET /supie/meetings/:id/export           the whole meeting as one JSON document
 * The transcript includes acknowledged snippets not merged yet, so nothing acknowledged is ever missing from it.
 */

const STATUSES = new Set<MeetingStatus | 'all'>(['open', 'finalizing', 'done', 'all']);

function intParam(url: URL, name: string): number | undefined {
  const raw = url.searchParams.get(name);
  if (raw === null || raw.trim() === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new HttpError(400, `${name} must be a number`);
  return Math.trunc(n);
}

function clampInt(url: URL, name: string, def: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, intParam(url, name) ?? def));
}

const item = (s: Segment) => ({
  ts: s.ts,
  text: s.text,
  ...(s.speakerId ? { speakerId: s.speakerId } : {}),
  ...(s.tag ? { tag: s.tag } : {}),
});

function sevenFields(s: MeetingSummary) {
  return { title: s.title, duration: s.duration, ...Object.fromEntries(SUMMARY_LIST_FIELDS.map((f) => [f, s[f]])) };
}

function listItem(m: MeetingRecord) {
  return {
    sessionId: m.id,
    deviceId: m.deviceId,
    title: m.title,
    status: m.status,
    startedAt: m.startedAt,
    endedAt: m.endedAt,
    durationMs: m.durationMs ?? (m.endedAt ? m.endedAt - m.startedAt : null),
    bulletsLength: m.bulletsLength ?? 0,
    segmentsCount: m.segmentsCount,
  };
}

export function registerMeetingRoutes(api: ApiRoutes, store: MeetingStore): void {
  const find = async (raw: string | undefined): Promise<MeetingRecord> => {
    const id = validId(raw, 'meeting id');
    const m = await store.get(id);
    if (!m) throw new HttpError(404, 'not found');
    return m;
  };

  api.add('GET', '/supie/meetings/recent', async (_req, _params, url) => {
    const { limit, offset } = pagination(url, { limit: 10, max: 100 });
    const status = (url.searchParams.get('status') ?? 'done') as MeetingStatus | 'all';
    if (!STATUSES.has(status)) throw new HttpError(400, 'status must be open, finalizing, done or all');
    const rawDevice = url.searchParams.get('deviceId') ?? url.searchParams.get('device_id');
    const deviceId = rawDevice ? normalizeId(rawDevice)?.slice(0, 128) : undefined;
    const fromTs = intParam(url, 'fromTs');
    const toTs = intParam(url, 'toTs');
    const rows = await store.recent({
      limit,
      offset,
      status,
      ...(deviceId ? { deviceId } : {}),
      ...(fromTs !== undefined ? { fromTs } : {}),
      ...(toTs !== undefined ? { toTs } : {}),
    });
    return rows.map(listItem);
  });

  api.add('GET', '/supie/meetings/:id', async (_req, params, url) => {
    const m = await find(params.id);
    const preview = clampInt(url, 'preview', 5, 1, 20);
    const [stored, first, checkpoints] = await Promise.all([
      store.summary(m.id),
      store.transcript(m.id, 0, preview),
      store.checkpoints(m.id),
    ]);
    return {
      ...listItem(m),
      summary: stored ? sevenFields(stored.summary) : null,
      sourceSegments: stored?.summary.sourceSegments ?? null,
      metrics: stored?.meta ?? null,
      segmentsCount: first.total,
      transcriptPreview: first.items.map(item),
      checkpointCount: checkpoints.length,
      hasShards: false,
    };
  });

  api.add('GET', '/supie/meetings/:id/transcript', async (_req, params, url) => {
    const m = await find(params.id);
    const limit = clampInt(url, 'limit', 100, 1, 500);
    const offset = Math.max(0, intParam(url, 'offset') ?? 0);
    const page = await store.transcript(m.id, offset, limit);
    return { items: page.items.map(item), total: page.total, offset, limit };
  });

  api.add('GET', '/supie/meetings/:id/export', async (_req, params) => {
    const m = await find(params.id);
    const [stored, checkpoints, count] = await Promise.all([
      store.summary(m.id),
      store.checkpoints(m.id),
      store.transcript(m.id, 0, 1),
    ]);
    const all = await store.transcript(m.id, 0, Math.max(1, count.total));
    return {
      format: 'linus.meeting.v1',
      exportedAt: Date.now(),
      meeting: listItem(m),
      summary: stored ? stored.summary : null,
      metrics: stored?.meta ?? null,
      checkpoints: checkpoints.map((c) => ({
        index: c.idx,
        createdAt: c.createdAt,
        uptoSeq: c.uptoSeq,
        summary: c.summary,
      })),
      segments: all.items.map((s) => ({ seq: s.seq, ...item(s) })),
    };
  });
}
