// Meetings: search and paging, a meeting's summary and transcript, exports, actions to tasks.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, canWrite } from '../api.js';
import { useEvent } from '../events.js';
import { download, fmtTime, plural } from '../format.js';
import { Field, Page, Table, toast, toastError, useLoad, useTitle } from '../ui.js';

const PAGE = 20;
const LISTS = [
  ['bullets', 'Key points'],
  ['decisions', 'Decisions'],
  ['actions', 'Actions'],
  ['risks', 'Risks'],
  ['nextSteps', 'Next steps'],
] as const;
const STATUSES = ['all', 'done', 'open', 'finalizing'];

interface MeetingRow {
  sessionId: string;
  title?: string;
  deviceId: string;
  status: string;
  startedAt?: number;
  endedAt?: number;
  durationMs?: number;
  segmentsCount?: number;
}

interface Meeting extends MeetingRow {
  summary?: { title: string; duration: string } & Record<(typeof LISTS)[number][0], string[]>;
  webhook?: { status: string; attempts: number; lastError?: string };
}

interface Segment {
  ts: number;
  speakerId?: string;
  text: string;
}

/** The search survives leaving the page (back from a meeting lands on the same list). */
const kept = { q: '', status: 'all', offset: 0 };

export function MeetingsPage() {
  useTitle('Meetings');
  const [query, setQuery] = useState(kept);
  const [q, setQ] = useState(kept.q);
  const [status, setStatus] = useState(kept.status);
  const loaded = useLoad(() => {
    Object.assign(kept, query);
    const params = new URLSearchParams({ limit: String(PAGE + 1), offset: String(query.offset), status: query.status });
    if (query.q) params.set('q', query.q);
    return api<MeetingRow[]>('GET', `/supie/meetings/recent?${params}`);
  }, [query]);
  // A new or finished meeting changes the list; a transcript line of a meeting already listed does not.
  useEvent('meeting', (e: { meetingId: string; change: string }) => {
    if (e.change === 'summary' || !loaded.data?.some((m) => m.sessionId === e.meetingId)) void loaded.reload();
  });
  const search = (e: Event) => {
    e.preventDefault();
    setQuery({ q: q.trim(), status, offset: 0 });
  };
  return (
    <section>
      <h1>Meetings</h1>
      <form class="inline" role="search" onSubmit={search}>
        <Field label="Search">
          <input
            type="search"
            name="q"
            placeholder="title, device or words said"
            value={q}
            onInput={(e) => setQ(e.currentTarget.value)}
          />
        </Field>
        <Field label="Status">
          <select name="status" value={status} onChange={(e) => setStatus(e.currentTarget.value)}>
            {STATUSES.map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </Field>
        <button type="submit">Search</button>
      </form>
      <div aria-live="polite">
        <Page loaded={loaded}>
          {(rows) => {
            const shown = rows.slice(0, PAGE);
            return (
              <>
                <Table headers={['Meeting', 'Device', 'Status', 'Started', 'Duration', 'Segments']} caption="Meetings">
                  {shown.map((m) => (
                    <tr key={m.sessionId}>
                      <td>
                        <a href={`#/meetings/${encodeURIComponent(m.sessionId)}`}>{m.title || m.sessionId}</a>
                      </td>
                      <td>{m.deviceId}</td>
                      <td>{m.status}</td>
                      <td>{fmtTime(m.startedAt)}</td>
                      <td class="num">{m.durationMs ? `${Math.round(m.durationMs / 1000)} s` : '—'}</td>
                      <td class="num">{m.segmentsCount ?? '—'}</td>
                    </tr>
                  ))}
                </Table>
                <div class="pager">
                  <button
                    type="button"
                    disabled={query.offset === 0}
                    onClick={() => setQuery({ ...query, offset: Math.max(0, query.offset - PAGE) })}
                  >
                    ← Newer
                  </button>
                  <span class="muted">
                    {shown.length ? `${query.offset + 1}–${query.offset + shown.length}` : 'No meeting matches.'}
                  </span>
                  <button
                    type="button"
                    disabled={rows.length <= PAGE}
                    onClick={() => setQuery({ ...query, offset: query.offset + PAGE })}
                  >
                    Older →
                  </button>
                </div>
              </>
            );
          }}
        </Page>
      </div>
    </section>
  );
}

export function MeetingDetailPage({ id }: { id: string }) {
  const path = `/supie/meetings/${encodeURIComponent(id)}`;
  const loaded = useLoad(() => api<Meeting>('GET', path));
  const [transcript, setTranscript] = useState<Segment[]>([]);
  /** Lines already fetched (a ref: two live events in a row must not fetch the same lines twice). */
  const have = useRef(0);
  const busy = useRef<Promise<void> | null>(null);
  /** Appends what is new since the last load (the transcript only grows). */
  const loadTranscript = async () => {
    const items: Segment[] = [];
    for (let offset = have.current; ; offset += 500) {
      const page = await api<{ items: Segment[]; total: number }>(
        'GET',
        `${path}/transcript?offset=${offset}&limit=500`,
      );
      items.push(...page.items);
      if (offset + page.items.length >= page.total || page.items.length === 0) break;
    }
    have.current += items.length;
    if (items.length) setTranscript((old) => [...old, ...items]);
  };
  const moreTranscript = () => {
    busy.current = (busy.current ?? Promise.resolve()).then(loadTranscript).catch(toastError);
  };
  // Once: the page is keyed by its address, so another meeting is another page.
  // eslint-disable-next-line react-hooks/exhaustive-deps
  useEffect(moreTranscript, []);
  useTitle(loaded.data?.title || 'Meeting');
  // Live: new transcript lines as they are stored; the summary and facts again once the summary is there.
  useEvent('meeting', (e: { meetingId: string; change: string }) => {
    if (e.meetingId !== id) return;
    if (e.change === 'summary') void loaded.reload();
    moreTranscript();
  });
  const guard = (fn: () => Promise<void>) => () => fn().catch(toastError);
  const exportJson = async () => {
    const doc = await api('GET', `${path}/export`);
    download(`meeting-${id}.json`, JSON.stringify(doc, null, 2), 'application/json');
  };
  const exportMd = async () => {
    const doc = await api<{ filename: string; markdown: string }>('GET', `${path}/export.md`);
    download(doc.filename, doc.markdown, 'text/markdown');
  };
  const importActions = async () => {
    const r = await api<{ imported: number; groupKey: string }>('POST', '/supie/workflow/import-from-meeting', {
      meetingId: id,
    });
    toast(`${plural(r.imported, 'action')} imported to group ${r.groupKey}.`);
  };
  return (
    <Page loaded={loaded}>
      {(m) => (
        <section>
          <p>
            <a href="#/meetings">← Meetings</a>
          </p>
          <h1>{m.title || `Meeting ${id}`}</h1>
          <dl class="facts">
            {(
              [
                ['Device', m.deviceId],
                ['Status', m.status],
                ['Started', fmtTime(m.startedAt)],
                ['Ended', fmtTime(m.endedAt)],
                ['Segments', m.segmentsCount],
                [
                  'Webhook',
                  m.webhook
                    ? `${m.webhook.status} after ${plural(m.webhook.attempts, 'attempt')}${
                        m.webhook.lastError ? ` (${m.webhook.lastError})` : ''
                      }`
                    : 'none set',
                ],
              ] as const
            ).map(([k, v]) => [<dt>{k}</dt>, <dd>{String(v ?? '—')}</dd>])}
          </dl>
          <div class="actions">
            <button type="button" onClick={guard(exportJson)}>
              Export JSON
            </button>
            <button type="button" onClick={guard(exportMd)}>
              Export Markdown
            </button>
            {canWrite() && m.summary ? (
              <button type="button" onClick={guard(importActions)}>
                Import actions to tasks
              </button>
            ) : null}
          </div>
          <h2>Summary</h2>
          {m.summary ? (
            <div class="summary">
              <p>
                <strong>Title: </strong>
                {m.summary.title}
              </p>
              <p>
                <strong>Duration: </strong>
                {m.summary.duration}
              </p>
              {LISTS.map(([k, label]) => (
                <div>
                  <h3>{label}</h3>
                  {m.summary?.[k].length ? (
                    <ul>
                      {m.summary[k].map((x) => (
                        <li>{x}</li>
                      ))}
                    </ul>
                  ) : (
                    <p class="muted">None.</p>
                  )}
                </div>
              ))}
            </div>
          ) : (
            <p class="muted">{m.status === 'done' ? 'No summary.' : 'The summary comes when the meeting ends.'}</p>
          )}
          <h2>Transcript</h2>
          <ol class="transcript" aria-live="polite">
            {transcript.map((s) => (
              <li>
                <time>{new Date(s.ts).toLocaleTimeString()}</time>{' '}
                {s.speakerId ? <strong>{s.speakerId}: </strong> : null}
                {s.text}
              </li>
            ))}
          </ol>
        </section>
      )}
    </Page>
  );
}
