// The console shell: log-in, the page router (location hash) and the header.
import { render, type JSX } from 'preact';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import '../style.css';
import { api, ApiError, messageOf, setSession, whenUnauthorized, type ConsoleSession } from './api.js';
import { connectEvents, disconnectEvents } from './events.js';
import { ConfigPage } from './pages/config.js';
import { DeviceDetailPage, DevicesPage } from './pages/devices.js';
import { HealthPage } from './pages/health.js';
import { MeetingDetailPage, MeetingsPage } from './pages/meetings.js';
import { MessagesPage } from './pages/messages.js';
import { TalkPage } from './pages/talk.js';
import { TasksPage } from './pages/tasks.js';
import { Field, ToastArea, toast, useTitle } from './ui.js';

const PAGES = [
  ['#/devices', 'Devices'],
  ['#/tasks', 'Tasks'],
  ['#/meetings', 'Meetings'],
  ['#/messages', 'Messages'],
  ['#/health', 'Health'],
  ['#/config', 'Config'],
  ['#/talk', 'Talk'],
] as const;

const ROUTES: [RegExp, (m: RegExpExecArray) => JSX.Element][] = [
  [/^#\/devices\/(.+)$/, (m) => <DeviceDetailPage id={decodeURIComponent(m[1] ?? '')} />],
  [/^#\/devices$/, () => <DevicesPage />],
  [/^#\/tasks$/, () => <TasksPage />],
  [/^#\/meetings\/(.+)$/, (m) => <MeetingDetailPage id={decodeURIComponent(m[1] ?? '')} />],
  [/^#\/meetings$/, () => <MeetingsPage />],
  [/^#\/messages$/, () => <MessagesPage />],
  [/^#\/health$/, () => <HealthPage />],
  [/^#\/config$/, () => <ConfigPage />],
  [/^#\/talk$/, () => <TalkPage />],
];

const currentHash = () => location.hash || '#/devices';

function useHash(): string {
  const [hash, setHash] = useState(currentHash);
  useEffect(() => {
    const changed = () => setHash(currentHash());
    window.addEventListener('hashchange', changed);
    return () => window.removeEventListener('hashchange', changed);
  }, []);
  return hash;
}

function Login({ message, onIn }: { message: string; onIn: (s: ConsoleSession) => void }) {
  useTitle('Log in');
  const [secret, setSecret] = useState('');
  const [error, setError] = useState(message);
  const input = useRef<HTMLInputElement>(null);
  // Before the form is painted: a key pressed as soon as it shows goes into the field.
  useLayoutEffect(() => input.current?.focus(), []);
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      const s = await api<ConsoleSession>('POST', '/console/api/login', { secret });
      onIn({ ...s, via: 'login' });
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? 'Wrong secret.' : `Log-in failed: ${messageOf(err)}`);
      input.current?.select();
    }
  };
  return (
    <form class="login card" onSubmit={submit}>
      <h1>Linus console</h1>
      <p>
        Log in with server.admin_secret (full rights) or server.meeting_api_token (read-only), as set in the config.
      </p>
      <Field label="Secret">
        <input
          ref={input}
          type="password"
          name="secret"
          autocomplete="current-password"
          required
          value={secret}
          onInput={(e) => setSecret(e.currentTarget.value)}
        />
      </Field>
      <button type="submit">Log in</button>
      <p class="error" role="alert">
        {error}
      </p>
    </form>
  );
}

function Routed({ hash }: { hash: string }) {
  const route = ROUTES.find(([re]) => re.test(hash));
  useEffect(() => {
    if (!route) location.hash = '#/devices';
  }, [route]);
  if (!route) return null;
  // Keyed by the address: another page (or another device's) starts afresh.
  return <div key={hash}>{route[1](route[0].exec(hash) as RegExpExecArray)}</div>;
}

function App() {
  /** undefined while the server is asked; null when the log-in form shows. */
  const [session, setState] = useState<ConsoleSession | null | undefined>(undefined);
  const [loginMessage, setLoginMessage] = useState('');
  const [fatal, setFatal] = useState('');
  const hash = useHash();
  const main = useRef<HTMLElement>(null);
  // A page chosen, or a log-in done, moves the focus to the page (as loading a page would): a screen reader
  // starts there and Tab goes on inside it. Not on the first load, where the browser starts at the top.
  const shownHash = useRef<string | null>(null);
  const focusAfterLogin = useRef(false);
  useLayoutEffect(() => {
    if (!session) {
      shownHash.current = null;
      return;
    }
    if ((shownHash.current !== null && shownHash.current !== hash) || focusAfterLogin.current) main.current?.focus();
    shownHash.current = hash;
    focusAfterLogin.current = false;
  }, [hash, session]);

  const enter = (s: ConsoleSession | null, message = '') => {
    setSession(s);
    setState(s);
    setLoginMessage(message);
    if (s) connectEvents();
    else disconnectEvents();
  };

  useEffect(() => {
    whenUnauthorized(() => enter(null));
    api<ConsoleSession & { loggedIn: boolean }>('GET', '/console/api/session')
      .then((s) => enter(s.loggedIn ? s : null))
      .catch((err) => setFatal(`The server did not answer: ${messageOf(err)}`));
    const rejected = (e: PromiseRejectionEvent) =>
      toast(`Error: ${(e.reason as Error | undefined)?.message ?? String(e.reason)}`, 'error');
    window.addEventListener('unhandledrejection', rejected);
    return () => {
      window.removeEventListener('unhandledrejection', rejected);
      disconnectEvents();
    };
  }, []);

  const logout = async () => {
    // Logged out here either way: a failed call leaves a session that expires on its own.
    await api('POST', '/console/api/logout').catch(() => undefined);
    enter(null, 'Logged out.');
  };
  // The skip link moves focus only: following it as a link would change the hash, which is the page address.
  const skip = (e: Event) => {
    e.preventDefault();
    main.current?.focus();
  };

  let content: JSX.Element;
  if (fatal)
    content = (
      <p class="error" role="alert">
        {fatal}
      </p>
    );
  else if (session === undefined) content = <p class="muted">Loading…</p>;
  else if (session === null)
    content = (
      <Login
        key={loginMessage}
        message={loginMessage}
        onIn={(s) => {
          focusAfterLogin.current = true;
          enter(s);
        }}
      />
    );
  else content = <Routed hash={hash} />;

  return (
    <>
      <a class="skip" href="#main" onClick={skip}>
        Skip to content
      </a>
      {session ? (
        <header id="top">
          <strong class="brand">Linus</strong>
          <nav aria-label="Console pages">
            {PAGES.map(([href, label]) => (
              <a href={href} aria-current={hash.startsWith(href) ? 'page' : undefined}>
                {label}
              </a>
            ))}
          </nav>
          <span class="who">
            {session.role === 'admin' ? 'Admin' : session.via === 'loopback' ? 'Read-only (loopback)' : 'Read-only'}
          </span>
          {session.via === 'login' ? (
            <button type="button" onClick={logout}>
              Log out
            </button>
          ) : null}
        </header>
      ) : null}
      <main id="main" tabindex={-1} ref={main}>
        {content}
      </main>
      <ToastArea />
    </>
  );
}

render(<App />, document.getElementById('app') as HTMLElement);
