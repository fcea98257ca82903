import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConsoleIfStale } from '../../scripts/console-build.mjs';
import { registerConsoleFiles } from '../../src/transport/console/static.js';
import { HttpRoutes } from '../../src/transport/http-app.js';
import { silentLogger } from '../../src/observability/log.js';
import { TestDevice } from '../support/device.js';
import { startTestServer, type TestServer } from '../support/server.js';

/**
 * The web console's HTTP side over real sockets: pages, log-in and its cookie, CSRF on writes, read-only rights,
 * the loopback rule when no secret is set, and the live event stream.
 */
const ADMIN = 'admin-secret-for-tests';
const READ = 'read-token-for-tests';

async function login(server: TestServer, secret: string): Promise<{ cookie: string; csrf: string; res: Response }> {
  const res = await fetch(server.url('/console/api/login'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ secret }),
  });
  const setCookie = res.headers.get('set-cookie') ?? '';
  const body = (await res.json()) as { data?: { csrf: string } };
  return { cookie: setCookie.split(';')[0]!, csrf: body.data?.csrf ?? '', res };
}

/** An open Server-Sent Events stream: events as they come, in order. */
async function openEvents(server: TestServer, cookie: string) {
  const ac = new AbortController();
  const res = await fetch(server.url('/api/events'), { headers: { cookie }, signal: ac.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const events: { event: string; data: unknown }[] = [];
  const reader = res.body!.getReader();
  let buffer = '';
  const pump = (async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) return;
      buffer += new TextDecoder().decode(value);
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event && data) events.push({ event, data: JSON.parse(data) });
      }
    }
  })();
  const waitEvent = async (pred: (e: { event: string; data: unknown }) => boolean, what: string) => {
    const deadline = Date.now() + 5000;
    for (;;) {
      const hit = events.find(pred);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`no ${what} event; got ${JSON.stringify(events.map((e) => e.event))}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  return {
    events,
    waitEvent,
    async close() {
      ac.abort();
      await pump;
    },
  };
}

describe('console: log-in, cookie, CSRF and rights', () => {
  let server: TestServer;
  before(async () => {
    // The server reads the built page at start.
    await buildConsoleIfStale({ quiet: true });
    server = await startTestServer({ server: { admin_secret: ADMIN, meeting_api_token: READ, api_rate_limit: 0 } });
  });
  after(() => server.stop());

  it('redirects / to the console and serves the page with a strict CSP', async () => {
    const root = await fetch(server.url('/'), { redirect: 'manual' });
    assert.equal(root.status, 302);
    assert.equal(root.headers.get('location'), '/console/');
    const page = await fetch(server.url('/console/'));
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    const html = await page.text();
    // The bundle's one script, from this origin; nothing inline (the CSP would refuse it).
    const script = /<script type="module" crossorigin src="\/console\/(index-[\w-]+\.js)">/.exec(html)?.[1];
    assert.ok(script, html);
    assert.doesNotMatch(html, /<script(?![^>]*\ssrc=)[^>]*>/);
    const js = await fetch(server.url(`/console/${script}`));
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /text\/javascript/);
    // Named by its content, so kept by the browser; the page that names it is asked for each time.
    assert.match(js.headers.get('cache-control') ?? '', /immutable/);
    assert.equal(page.headers.get('cache-control'), 'no-cache');
    assert.match(await js.text(), /\/console\/api\/session/);
    assert.equal((await fetch(server.url('/console/..%2Fpackage.json'))).status, 404);
  });

  it('refuses a wrong secret and a non-JSON log-in; a right one sets an HttpOnly SameSite=Strict cookie', async () => {
    const wrong = await login(server, 'nope');
    assert.equal(wrong.res.status, 401);
    assert.equal(wrong.res.headers.get('set-cookie'), null);
    const form = await fetch(server.url('/console/api/login'), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `secret=${ADMIN}`,
    });
    assert.equal(form.status, 415);
    const foreign = await fetch(server.url('/console/api/login'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'http://evil.example' },
      body: JSON.stringify({ secret: ADMIN }),
    });
    assert.equal(foreign.status, 415);

    const ok = await login(server, ADMIN);
    assert.equal(ok.res.status, 200);
    const setCookie = ok.res.headers.get('set-cookie') ?? '';
    assert.match(setCookie, /^linus_console=[\w-]{20,};/);
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /SameSite=Strict/);
    assert.match(setCookie, /Path=\//);
    const session = (await (
      await fetch(server.url('/console/api/session'), { headers: { cookie: ok.cookie } })
    ).json()) as {
      data: { loggedIn: boolean; role: string; csrf: string };
    };
    assert.deepEqual([session.data.loggedIn, session.data.role, session.data.csrf], [true, 'admin', ok.csrf]);
    const anonymous = (await (await fetch(server.url('/console/api/session'))).json()) as {
      data: { loggedIn: boolean };
    };
    assert.equal(anonymous.data.loggedIn, false);
  });

  it('takes a write from an admin session only with its CSRF token and no foreign Origin; the device gets it', async () => {
    const device = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: 'aa:bb:cc:00:00:01' });
    await device.hello();
    const { cookie, csrf } = await login(server, ADMIN);
    const create = (headers: Record<string, string>) =>
      fetch(server.url('/supie/workflow/tasks'), {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ groupKey: 'aa:bb:cc', title: 'Console task' }),
      });
    assert.equal((await create({})).status, 403);
    assert.equal((await create({ 'x-csrf-token': 'wrong' })).status, 403);
    assert.equal((await create({ 'x-csrf-token': csrf, origin: 'http://evil.example' })).status, 403);
    const ok = await create({ 'x-csrf-token': csrf });
    assert.equal(ok.status, 200);
    const snapshot = await device.next((m) => m.type === 'workflow' && m.event === 'update', 3000);
    assert.deepEqual(
      (snapshot.tasks as { title: string }[]).map((t) => t.title),
      ['Console task'],
    );
    await device.close();
  });

  it('a read-only log-in reads but cannot write; logout ends the session', async () => {
    const { cookie, csrf } = await login(server, READ);
    const devices = await fetch(server.url('/api/devices'), { headers: { cookie } });
    assert.equal(devices.status, 200);
    const write = await fetch(server.url('/supie/workflow/tasks'), {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/json', 'x-csrf-token': csrf },
      body: JSON.stringify({ groupKey: 'g1', title: 'x' }),
    });
    assert.equal(write.status, 403);
    assert.match(((await write.json()) as { error: string }).error, /read-only/);
    const out = await fetch(server.url('/console/api/logout'), { method: 'POST', headers: { cookie } });
    assert.match(out.headers.get('set-cookie') ?? '', /Max-Age=0/);
    assert.equal((await fetch(server.url('/api/devices'), { headers: { cookie } })).status, 401);
  });

  it('describes the API in GET /api/openapi.json', async () => {
    const doc = (await (await fetch(server.url('/api/openapi.json'))).json()) as {
      openapi: string;
      paths: Record<
        string,
        Record<
          string,
          { security: Record<string, unknown>[]; parameters?: { name: string }[]; responses: Record<string, unknown> }
        >
      >;
    };
    assert.equal(doc.openapi, '3.1.0');
    const put = doc.paths['/supie/workflow/tasks/{id}']?.put;
    assert.deepEqual(
      put?.parameters?.map((p) => p.name),
      ['id'],
    );
    assert.deepEqual(
      put?.security.map((s) => Object.keys(s)[0]),
      ['adminToken', 'consoleSession'],
    );
    for (const path of ['/supie/meetings/recent', '/api/devices', '/api/events', '/supie/peer/send'])
      assert.ok(doc.paths[path], path);
    assert.deepEqual(Object.keys(put?.responses ?? {}).sort(), ['200', '4XX', '503'], 'a store that is away is a 503');
  });

  it('the admin secret as a Bearer token writes without a session (API clients)', async () => {
    const res = await fetch(server.url('/supie/workflow/tasks'), {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ groupKey: 'g2', title: 'From curl' }),
    });
    assert.equal(res.status, 200);
  });

  it('pushes device arrivals and task changes made by a device on the event stream', async () => {
    const { cookie } = await login(server, READ);
    const stream = await openEvents(server, cookie);
    await stream.waitEvent((e) => e.event === 'devices', 'first devices');
    const device = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: 'aa:bb:cc:00:00:02' });
    await device.hello();
    await stream.waitEvent(
      (e) =>
        e.event === 'devices' &&
        (e.data as { deviceId: string; online: boolean }[]).some((d) => d.deviceId === 'aa:bb:cc:00:00:02' && d.online),
      'devices with the new device',
    );
    device.send({ type: 'workflow', event: 'update', tasks: [{ id: 'D-1', title: 'From the device' }] });
    await stream.waitEvent(
      (e) => e.event === 'tasks' && (e.data as { groupKey: string }).groupKey === 'aa:bb:cc',
      'tasks of the device group',
    );
    await device.close();
    await stream.close();
  });
});

describe('console API: meeting search, Markdown export, webhook status; peer send and queue', () => {
  let server: TestServer;
  let receiver: Server;
  let hits = 0;
  const auth = { authorization: `Bearer ${ADMIN}` };
  const get = async (path: string) => {
    const res = await fetch(server.url(path), { headers: auth });
    assert.equal(res.status, 200, path);
    return ((await res.json()) as { data: unknown }).data;
  };
  before(async () => {
    receiver = createServer((req, res) => {
      hits++;
      req.resume();
      res.end('ok');
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    server = await startTestServer({
      server: { admin_secret: ADMIN, api_rate_limit: 0 },
      meeting: { webhook: { url } },
    });
  });
  after(async () => {
    await server.stop();
    receiver.close();
  });

  it('finds a meeting by a word said, exports it as Markdown and shows its webhook delivered', async () => {
    const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: 'aa:bb:cc:00:00:21' });
    await dev.hello();
    dev.send({ type: 'mode', state: 'start', mode: 'meeting' });
    await dev.next((m) => m.type === 'mode' && m.state === 'start');
    dev.send({ type: 'meeting', phase: 'snippet', items: [{ text: 'The budget for the quarry is approved.' }] });
    await dev.next((m) => m.type === 'meeting' && m.phase === 'snippet' && m.status !== undefined);
    dev.send({ type: 'meeting', phase: 'finalize' });
    await dev.next((m) => m.type === 'meeting' && m.phase === 'summary', 10_000);
    await dev.close();

    const found = (await get('/supie/meetings/recent?status=all&q=quarry')) as { sessionId: string }[];
    assert.equal(found.length, 1);
    assert.deepEqual(await get('/supie/meetings/recent?status=all&q=no-such-word'), []);
    const id = found[0]!.sessionId;
    const md = (await get(`/supie/meetings/${id}/export.md`)) as { filename: string; markdown: string };
    assert.equal(md.filename, `meeting-${id}.md`);
    assert.match(md.markdown, /^# /);
    assert.match(md.markdown, /## Key points/);
    assert.match(md.markdown, /The budget for the quarry is approved\./);
    const deadline = Date.now() + 5000;
    let webhook: { status: string } | null = null;
    while (Date.now() < deadline && webhook?.status !== 'delivered') {
      webhook = ((await get(`/supie/meetings/${id}`)) as { webhook: { status: string } | null }).webhook;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(webhook?.status, 'delivered');
    assert.equal(hits, 1);
  });

  it('sends a peer message from the console: delivered online, queued offline, the queue listed', async () => {
    const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId: 'aa:bb:cc:00:00:22' });
    await dev.hello();
    const send = async (body: unknown) => {
      const res = await fetch(server.url('/supie/peer/send'), {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as { data: { delivered: string[]; enqueued: string[] } } };
    };
    const online = await send({ to: ['aa:bb:cc:00:00:22'], text: 'hello' });
    assert.deepEqual(online.body.data.delivered, ['aa:bb:cc:00:00:22']);
    const msg = await dev.next((m) => m.type === 'peer' && m.event === 'message');
    assert.deepEqual([msg.from, (msg.payload as { text: string }).text], ['console', 'hello']);
    await dev.close();
    const offline = await send({ to: ['aa:bb:cc:00:00:22'], text: 'later' });
    assert.deepEqual(offline.body.data.enqueued, ['aa:bb:cc:00:00:22']);
    assert.deepEqual(await get('/supie/peer/queue'), [{ deviceId: 'aa:bb:cc:00:00:22', count: 1 }]);
    const queued = (await get('/supie/peer/queue/aa:bb:cc:00:00:22')) as { payload: { text: string } }[];
    assert.deepEqual(
      queued.map((q) => q.payload.text),
      ['later'],
    );
    assert.equal((await send({ text: 'nobody' })).status, 400);
    assert.equal((await send({ group: 'no-such-group', text: 'x' })).status, 404);
  });
});

describe('console log-in and the failed-secret throttle', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      server: { admin_secret: ADMIN, api_rate_limit: 0, failed_secrets: { limit: 2, backoff_ms: 60_000 } },
    });
  });
  after(() => server.stop());

  it('backs off an address after wrong secrets: even the right one is refused with 429 meanwhile', async () => {
    assert.equal((await login(server, 'guess-1')).res.status, 401);
    assert.equal((await login(server, 'guess-2')).res.status, 401);
    const right = await login(server, ADMIN);
    assert.equal(right.res.status, 429);
    assert.ok(Number(right.res.headers.get('retry-after')) > 0);
    assert.equal(right.res.headers.get('set-cookie'), null);
  });
});

describe('console with no secret set', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ server: { ip: '0.0.0.0', api_rate_limit: 0 } });
  });
  after(() => server.stop());

  it('is read-only on loopback without log-in; writes name the key to set', async () => {
    const session = (await (await fetch(server.url('/console/api/session'))).json()) as {
      data: { loggedIn: boolean; role: string; via: string };
    };
    assert.deepEqual([session.data.loggedIn, session.data.role, session.data.via], [true, 'read', 'loopback']);
    assert.equal((await fetch(server.url('/api/devices'))).status, 200);
    const write = await fetch(server.url('/supie/workflow/tasks'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ groupKey: 'g', title: 'x' }),
    });
    assert.equal(write.status, 403);
    assert.match(((await write.json()) as { error: string }).error, /server\.admin_secret/);
  });

  it('refuses another address with a page naming server.admin_secret', async (t) => {
    const other = Object.values(networkInterfaces())
      .flat()
      .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
    if (!other) {
      t.skip('this machine has no non-loopback IPv4 address');
      return;
    }
    const get = (path: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        // From the non-loopback address to itself: the server sees a non-loopback peer.
        const req = request({ host: other, port: server.port, path, localAddress: other }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        req.end();
      });
    const page = await get('/console/');
    assert.equal(page.status, 403);
    assert.match(page.body, /server\.admin_secret/);
    const api = await get('/api/devices');
    assert.equal(api.status, 403);
  });
});

describe('console bundle missing', () => {
  it('answers the page with 503 and says to run npm run build', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'linus-console-'));
    const http: Server = createServer();
    const routes = new HttpRoutes(http, (server, handle) => server.on('request', handle), silentLogger());
    registerConsoleFiles(routes.app, { dir: empty });
    await routes.app.ready();
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    try {
      const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
      const page = await fetch(`${base}/console/`);
      assert.equal(page.status, 503);
      assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
      assert.match(await page.text(), /npm run build/);
      assert.equal((await fetch(`${base}/console/index-x.js`)).status, 404);
    } finally {
      http.close();
      await routes.app.close();
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

describe('console switched off', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ server: { console: { enabled: false } } });
  });
  after(() => server.stop());

  it('serves neither the page nor the redirect', async () => {
    const root = await fetch(server.url('/'), { redirect: 'manual' });
    assert.equal(root.status, 200);
    assert.equal(await root.text(), 'Server is running\n');
    assert.doesNotMatch(await (await fetch(server.url('/console/'))).text(), /<html/);
  });
});
