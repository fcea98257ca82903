import { normalizeId } from '../../protocol/ids.js';
import { HttpError } from '../../transport/http-util.js';
import { pagination, validId, type ApiRoutes } from '../../transport/api.js';
import type { WebhookDelivery } from './outbox.js';
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
    // An open meeting's snippets wait as pending before they are merged; the list counts them as the fork did.
    segmentsCount: Math.max(m.segmentsCount, m.linesCount),
  };
}

export function registerMeetingRoutes(
  api: ApiRoutes,
  store: MeetingStore,
  webhookOf: (meetingId: string) => Promise<WebhookDelivery | null> = async () => null,
): void {
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
    const q = url.searchParams.get('q')?.trim().slice(0, 200);
    const rows = await store.recent({
      limit,
      offset,
      status,
      ...(q ? { q } : {}),
      ...(deviceId ? { deviceId } : {}),
      ...(fromTs !== undefined ? { fromTs } : {}),
      ...(toTs !== undefined ? { toTs } : {}),
    });
    return rows.map(listItem);
  });

  api.add('GET', '/supie/meetings/:id', async (_req, params, url) => {
    const m = await find(params.id);
    const preview = clampInt(url, 'preview', 5, 1, 20);
    const [stored, first, checkpoints, webhook] = await Promise.all([
      store.summary(m.id),
      store.transcript(m.id, 0, preview),
      store.checkpoints(m.id),
      webhookOf(m.id),
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
      webhook,
    };
  });

  api.add('GET', '/supie/meetings/:id/transcript', async (_req, params, url) => {
    const m = await find(params.id);
    const limit = clampInt(url, 'limit', 100, 1, 500);
    const offset = Math.max(0, intParam(url, 'offset') ?? 0);
    const page = await store.transcript(m.id, offset, limit);
    return { items: page.items.map(item), total: page.total, offset, limit };
  });

  const exportOf = async (raw: string | undefined) => {
    const m = await find(raw);
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
  };

  api.add('GET', '/supie/meetings/:id/export', (_req, params) => exportOf(params.id));
  api.add('GET', '/supie/meetings/:id/export.md', async (_req, params) => {
    const doc = await exportOf(params.id);
    return { filename: `meeting-${doc.meeting.sessionId}.md`, markdown: meetingMarkdown(doc) };
  });
}

const LIST_TITLES: Record<(typeof SUMMARY_LIST_FIELDS)[number], string> = {
  bullets: 'Key points',
  decisions: 'Decisions',
  actions: 'Actions',
  risks: 'Risks',
  nextSteps: 'Next steps',
};

/** The export as a Markdown document: title, facts, the summary's lists, then the transcript. */
export function meetingMarkdown(doc: {
  meeting: ReturnType<typeof listItem>;
  summary: MeetingSummary | null;
  segments: { ts: number; text: string; speakerId?: string }[];
}): string {
  const { meeting, summary } = doc;
  const oneLine = (t: string) => t.replace(/\s+/g, ' ').trim();
  const lines = [
    `# ${oneLine(summary?.title || meeting.title || `Meeting ${meeting.sessionId}`)}`,
    '',
    `- Meeting: ${meeting.sessionId}`,
    `- Device: ${meeting.deviceId}`,
    `- Started: ${new Date(meeting.startedAt).toISOString()}`,
    ...(meeting.endedAt ? [`- Ended: ${new Date(meeting.endedAt).toISOString()}`] : []),
    ...(summary ? [`- Duration: ${summary.duration}`] : []),
    `- Status: ${meeting.status}`,
  ];
  if (summary) {
    for (const f of SUMMARY_LIST_FIELDS) {
      lines.push('', `## ${LIST_TITLES[f]}`, '');
      lines.push(...(summary[f].length ? summary[f].map((x) => `- ${oneLine(x)}`) : ['_none_']));
    }
  }
  lines.push('', '## Transcript', '');
  for (const s of doc.segments)
    lines.push(
      `- ${new Date(s.ts).toISOString().slice(11, 19)}${s.speakerId ? ` ${s.speakerId}:` : ''} ${oneLine(s.text)}`,
    );
  return `${lines.join('\n')}\n`;
}
