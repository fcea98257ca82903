// Meetings: search and paging, a meeting's summary and transcript, exports, actions to tasks.
import { api, canWrite, download, field, fmtTime, h, on, table, toast } from './core.js';

const PAGE = 20;
const LISTS = [
  ['bullets', 'Key points'],
  ['decisions', 'Decisions'],
  ['actions', 'Actions'],
  ['risks', 'Risks'],
  ['nextSteps', 'Next steps'],
];
const query = { q: '', status: 'all', offset: 0 };

export async function meetingsPage() {
  const q = h('input', { type: 'search', name: 'q', value: query.q, placeholder: 'title, device or words said' });
  const status = h(
    'select',
    { name: 'status' },
    ['all', 'done', 'open', 'finalizing'].map((s) => h('option', { value: s, selected: s === query.status }, s)),
  );
  const results = h('div', { 'aria-live': 'polite' });
  const prev = h('button', { type: 'button' }, '← Newer');
  const next = h('button', { type: 'button' }, 'Older →');
  const pageInfo = h('span', { class: 'muted' });

  const load = async () => {
    const params = new URLSearchParams({ limit: String(PAGE + 1), offset: String(query.offset), status: query.status });
    if (query.q) params.set('q', query.q);
    const rows = await api('GET', `/supie/meetings/recent?${params}`);
    const shown = rows.slice(0, PAGE);
    prev.disabled = query.offset === 0;
    next.disabled = rows.length <= PAGE;
    pageInfo.textContent = shown.length ? `${query.offset + 1}–${query.offset + shown.length}` : 'No meeting matches.';
    results.replaceChildren(
      table(
        ['Meeting', 'Device', 'Status', 'Started', 'Duration', 'Segments'],
        shown.map((m) =>
          h(
            'tr',
            {},
            h('td', {}, h('a', { href: `#/meetings/${encodeURIComponent(m.sessionId)}` }, m.title || m.sessionId)),
            h('td', {}, m.deviceId),
            h('td', {}, m.status),
            h('td', {}, fmtTime(m.startedAt)),
            h('td', { class: 'num' }, m.durationMs ? `${Math.round(m.durationMs / 1000)} s` : '—'),
            h('td', { class: 'num' }, m.segmentsCount ?? '—'),
          ),
        ),
        'Meetings',
      ),
    );
  };
  const reload = () => load().catch((err) => toast(err.message, 'error'));
  prev.addEventListener('click', () => {
    query.offset = Math.max(0, query.offset - PAGE);
    reload();
  });
  next.addEventListener('click', () => {
    query.offset += PAGE;
    reload();
  });
  const form = h(
    'form',
    {
      class: 'inline',
      role: 'search',
      onsubmit: (e) => {
        e.preventDefault();
        Object.assign(query, { q: q.value.trim(), status: status.value, offset: 0 });
        reload();
      },
    },
    field('Search', q),
    field('Status', status),
    h('button', { type: 'submit' }, 'Search'),
  );
  await load();
  return {
    title: 'Meetings',
    // A new or finished meeting changes the list; a transcript line of a meeting already listed does not.
    cleanup: [
      on('meeting', (e) => {
        const listed = results.querySelector(`a[href="#/meetings/${encodeURIComponent(e.meetingId)}"]`);
        if (e.change === 'summary' || !listed) reload();
      }),
    ],
    node: h('section', {}, h('h1', {}, 'Meetings'), form, results, h('div', { class: 'pager' }, prev, pageInfo, next)),
  };
}

export async function meetingDetailPage(id) {
  const path = `/supie/meetings/${encodeURIComponent(id)}`;
  const node = h('section');
  const transcript = h('ol', { class: 'transcript', 'aria-live': 'polite' });
  /** Appends what is new since the last load (the transcript only grows). */
  const loadTranscript = async () => {
    const items = [];
    for (let offset = transcript.childElementCount; ; offset += 500) {
      const page = await api('GET', `${path}/transcript?offset=${offset}&limit=500`);
      items.push(...page.items);
      if (offset + page.items.length >= page.total || page.items.length === 0) break;
    }
    transcript.append(
      ...items.map((s) =>
        h(
          'li',
          {},
          h('time', {}, new Date(s.ts).toLocaleTimeString()),
          ' ',
          s.speakerId ? h('strong', {}, `${s.speakerId}: `) : null,
          s.text,
        ),
      ),
    );
  };
  const m = await api('GET', path);
  const summary = m.summary
    ? h(
        'div',
        { class: 'summary' },
        h('p', {}, h('strong', {}, 'Title: '), m.summary.title),
        h('p', {}, h('strong', {}, 'Duration: '), m.summary.duration),
        ...LISTS.map(([k, label]) =>
          h(
            'div',
            {},
            h('h3', {}, label),
            m.summary[k].length
              ? h(
                  'ul',
                  {},
                  m.summary[k].map((x) => h('li', {}, x)),
                )
              : h('p', { class: 'muted' }, 'None.'),
          ),
        ),
      )
    : h('p', { class: 'muted' }, m.status === 'done' ? 'No summary.' : 'The summary comes when the meeting ends.');
  const exportJson = async () => {
    const doc = await api('GET', `${path}/export`);
    download(`meeting-${id}.json`, JSON.stringify(doc, null, 2), 'application/json');
  };
  const exportMd = async () => {
    const doc = await api('GET', `${path}/export.md`);
    download(doc.filename, doc.markdown, 'text/markdown');
  };
  const importActions = async () => {
    const r = await api('POST', '/supie/workflow/import-from-meeting', { meetingId: id });
    toast(`${r.imported} action${r.imported === 1 ? '' : 's'} imported to group ${r.groupKey}.`);
  };
  const guard = (fn) => () => fn().catch((err) => toast(err.message, 'error'));
  node.replaceChildren(
    h('p', {}, h('a', { href: '#/meetings' }, '← Meetings')),
    h('h1', {}, m.title || `Meeting ${id}`),
    h(
      'dl',
      { class: 'facts' },
      ...[
        ['Device', m.deviceId],
        ['Status', m.status],
        ['Started', fmtTime(m.startedAt)],
        ['Ended', fmtTime(m.endedAt)],
        ['Segments', m.segmentsCount],
        [
          'Webhook',
          m.webhook
            ? `${m.webhook.status} after ${m.webhook.attempts} attempt${m.webhook.attempts === 1 ? '' : 's'}${
                m.webhook.lastError ? ` (${m.webhook.lastError})` : ''
              }`
            : 'none set',
        ],
      ].flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v ?? '—'))]),
    ),
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'button', onclick: guard(exportJson) }, 'Export JSON'),
      h('button', { type: 'button', onclick: guard(exportMd) }, 'Export Markdown'),
      canWrite() && m.summary
        ? h('button', { type: 'button', onclick: guard(importActions) }, 'Import actions to tasks')
        : null,
    ),
    h('h2', {}, 'Summary'),
    summary,
    h('h2', {}, 'Transcript'),
    transcript,
  );
  await loadTranscript();
  // Live: new transcript lines as they are stored; the whole page again once the summary is there.
  const live = on('meeting', (e) => {
    if (e.meetingId !== id) return;
    if (e.change === 'summary') window.dispatchEvent(new HashChangeEvent('hashchange'));
    else loadTranscript().catch((err) => toast(err.message, 'error'));
  });
  return { title: m.title || 'Meeting', node, cleanup: [live] };
}
