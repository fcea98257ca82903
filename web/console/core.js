// Shared by every page: the API client, the DOM builder, formatting, and the live event stream.

export const state = {
  /** {role, csrf, mode, via} once logged in (or read-only on loopback). */
  session: null,
  devices: [],
  groups: [],
  health: [],
};

export class ApiError extends Error {
  constructor(status, message, data) {
    super(message);
    this.status = status;
    this.data = data;
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** One API call; `{success, data}` unwrapped. A 429 is retried after the server's Retry-After. */
export async function api(method, path, body) {
  for (let attempt = 0; ; attempt++) {
    const headers = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (state.session?.csrf && method !== 'GET') headers['x-csrf-token'] = state.session.csrf;
    const res = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status === 429 && attempt < 3) {
      await sleep(1000 * Number(res.headers.get('retry-after') || 1));
      continue;
    }
    const json = await res.json().catch(() => ({ success: false, error: `HTTP ${res.status}` }));
    if (!res.ok || json.success === false)
      throw new ApiError(res.status, json.error || `HTTP ${res.status}`, json.data);
    return json.data;
  }
}

/** `h('button', {type: 'button', onclick}, 'Text')`: elements from data, never from HTML strings. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function fmtTime(ms) {
  return ms ? new Date(ms).toLocaleString() : '—';
}

export function fmtAgo(ms) {
  if (!ms) return '—';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

export function toast(text, kind = 'info') {
  const el = document.getElementById('toast');
  el.textContent = text;
  el.className = `show ${kind}`;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (el.className = ''), 4000);
}

export const canWrite = () => state.session?.role === 'admin';

/** A labelled form field: `<label>Text <input></label>`. */
export function field(label, input) {
  return h('label', { class: 'field' }, h('span', {}, label), input);
}

export function table(headers, rows, caption) {
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      {},
      caption ? h('caption', {}, caption) : null,
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          headers.map((t) => h('th', { scope: 'col' }, t)),
        ),
      ),
      h('tbody', {}, rows),
    ),
  );
}

/** Triggers a download of text made here (exports). */
export function download(filename, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h('a', { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// ------------------------------------------------------------------ live events

const listeners = new Map();

/** Calls `fn(data)` for each pushed event of that name; returns an unsubscribe function. */
export function on(event, fn) {
  if (!listeners.has(event)) listeners.set(event, new Set());
  listeners.get(event).add(fn);
  return () => listeners.get(event).delete(fn);
}

let source = null;

export function connectEvents() {
  source?.close();
  source = new EventSource('/api/events');
  for (const name of ['devices', 'tasks', 'health', 'meeting']) {
    source.addEventListener(name, (e) => {
      const data = JSON.parse(e.data);
      if (name === 'devices') state.devices = data;
      if (name === 'health') state.health.push(data);
      for (const fn of listeners.get(name) ?? []) fn(data);
    });
  }
  source.addEventListener('open', () => document.body.classList.remove('offline'));
  source.addEventListener('error', () => document.body.classList.add('offline'));
}

export function disconnectEvents() {
  source?.close();
  source = null;
}
