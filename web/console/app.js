// The console shell: log-in, the page router (location hash) and the header.
import { api, ApiError, connectEvents, disconnectEvents, field, h, state, toast } from './core.js';
import { configPage } from './page-config.js';
import { deviceDetailPage, devicesPage } from './page-devices.js';
import { healthPage } from './page-health.js';
import { meetingDetailPage, meetingsPage } from './page-meetings.js';
import { messagesPage } from './page-messages.js';
import { talkPage } from './page-talk.js';
import { tasksPage } from './page-tasks.js';

const main = document.getElementById('main');
/** Disposers of the page on screen (event subscriptions, timers), run when another page replaces it. */
let cleanup = [];

const routes = [
  [/^#\/devices\/(.+)$/, (m) => deviceDetailPage(decodeURIComponent(m[1]))],
  [/^#\/devices$/, () => devicesPage()],
  [/^#\/tasks$/, () => tasksPage()],
  [/^#\/meetings\/(.+)$/, (m) => meetingDetailPage(decodeURIComponent(m[1]))],
  [/^#\/meetings$/, () => meetingsPage()],
  [/^#\/messages$/, () => messagesPage()],
  [/^#\/health$/, () => healthPage()],
  [/^#\/config$/, () => configPage()],
  [/^#\/talk$/, () => talkPage()],
];

async function render() {
  if (!state.session) return;
  for (const f of cleanup) f();
  cleanup = [];
  const hash = location.hash || '#/devices';
  const route = routes.find(([re]) => re.test(hash));
  if (!route) {
    location.hash = '#/devices';
    return;
  }
  for (const a of document.querySelectorAll('nav a'))
    a.setAttribute('aria-current', hash.startsWith(a.getAttribute('href')) ? 'page' : 'false');
  main.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  try {
    const page = await route[1](route[0].exec(hash));
    main.replaceChildren(page.node);
    cleanup = page.cleanup ?? [];
    document.title = `${page.title} · Linus console`;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return showLogin();
    main.replaceChildren(h('p', { class: 'error', role: 'alert' }, `Could not load this page: ${err.message}`));
  }
}

function showShell() {
  document.getElementById('top').hidden = false;
  const s = state.session;
  document.getElementById('who').textContent =
    s.role === 'admin' ? 'Admin' : s.via === 'loopback' ? 'Read-only (loopback)' : 'Read-only';
  document.getElementById('logout').hidden = s.via !== 'login';
  connectEvents();
  render();
}

function showLogin(message) {
  state.session = null;
  disconnectEvents();
  for (const f of cleanup) f();
  cleanup = [];
  document.getElementById('top').hidden = true;
  const secret = h('input', { type: 'password', name: 'secret', autocomplete: 'current-password', required: true });
  const error = h('p', { class: 'error', role: 'alert' }, message ?? '');
  const form = h(
    'form',
    {
      class: 'login card',
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          state.session = { ...(await api('POST', '/console/api/login', { secret: secret.value })), via: 'login' };
          showShell();
        } catch (err) {
          error.textContent = err.status === 401 ? 'Wrong secret.' : `Log-in failed: ${err.message}`;
          secret.select();
        }
      },
    },
    h('h1', {}, 'Linus console'),
    h(
      'p',
      {},
      'Log in with server.admin_secret (full rights) or server.meeting_api_token (read-only), as set in the config.',
    ),
    field('Secret', secret),
    h('button', { type: 'submit' }, 'Log in'),
    error,
  );
  main.replaceChildren(form);
  document.title = 'Log in · Linus console';
  secret.focus();
}

document.getElementById('logout').addEventListener('click', async () => {
  await api('POST', '/console/api/logout').catch(() => undefined);
  showLogin('Logged out.');
});
window.addEventListener('hashchange', render);
window.addEventListener('unhandledrejection', (e) => toast(`Error: ${e.reason?.message ?? e.reason}`, 'error'));

try {
  const session = await api('GET', '/console/api/session');
  if (session.loggedIn) {
    state.session = session;
    showShell();
  } else showLogin();
} catch (err) {
  main.replaceChildren(h('p', { class: 'error', role: 'alert' }, `The server did not answer: ${err.message}`));
}
