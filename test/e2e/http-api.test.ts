import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../support/server.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const ADMIN = 'admin-secret-for-the-api-test';

/** The HTTP side on fastify: the OpenAPI document's schemas, body checks, CORS only where it belongs. */
describe('HTTP API on fastify', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ server: { admin_secret: ADMIN, api_rate_limit: 0 } });
  });
  after(() => server.stop());

  /** One request as written, with no client tidying its path or headers. */
  const raw = (
    method: string,
    path: string,
    opts: { headers?: Record<string, string>; body?: string } = {},
  ): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      const { hostname, port } = new URL(server.url('/'));
      const req = request({ host: hostname, port, method, path, headers: opts.headers ?? {} }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end(opts.body);
    });

  const post = (path: string, body: unknown) =>
    fetch(server.url(path), {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('documents request and answer bodies from the zod schemas', async () => {
    const res = await fetch(server.url('/api/openapi.json'));
    assert.equal(res.status, 200);
    const doc = (await res.json()) as Json;
    assert.equal(doc.openapi, '3.1.0');
    const create = doc.paths['/supie/workflow/tasks'].post;
    const body = create.requestBody.content['application/json'].schema;
    assert.equal(body.type, 'object');
    assert.equal(body.properties.title.type, 'string');
    assert.equal(body.properties.title.maxLength, 500);
    assert.deepEqual([body.properties.priority.minimum, body.properties.priority.maximum], [0, 3]);
    const answer = create.responses['200'].content['application/json'].schema;
    assert.deepEqual(answer.properties.data.required, ['id', 'created', 'groupKey']);
    assert.equal(create.responses['4XX'].content['application/json'].schema.$ref, '#/components/schemas/Error');
    // A route without a body has none documented; its path parameter is.
    const put = doc.paths['/supie/workflow/tasks/{id}'];
    assert.equal(put.delete.requestBody, undefined);
    assert.deepEqual(
      put.put.parameters.map((p: Json) => p.name),
      ['id'],
    );
  });

  it('refuses a body that does not fit with 400 naming the key path, before the handler runs', async () => {
    const res = await post('/supie/workflow/tasks', { groupKey: 'g1', title: 7, priority: 9 });
    assert.equal(res.status, 400);
    const { success, error } = (await res.json()) as Json;
    assert.equal(success, false);
    assert.match(error, /body\.title: /);
    assert.match(error, /body\.priority: /);
    const list = (await (await fetch(server.url('/supie/workflow?groupKey=g1'))).json()) as Json;
    assert.deepEqual(list.data.items, [], 'nothing was written');
    const notObject = await post('/supie/workflow/tasks', [1, 2]);
    assert.equal(notObject.status, 400);
    assert.match(((await notObject.json()) as Json).error, /^body: /);
    const ok = await post('/supie/workflow/tasks', { groupKey: 'g1', title: 'Write the report', priority: 1 });
    assert.equal(ok.status, 200);
    assert.equal(((await ok.json()) as Json).data.created, true);
  });

  it('answers CORS preflights of API and device routes only', async () => {
    const preflight = (path: string) =>
      fetch(server.url(path), {
        method: 'OPTIONS',
        headers: { origin: 'http://elsewhere.example', 'access-control-request-method': 'POST' },
      });
    const api = await preflight('/supie/workflow/tasks');
    assert.equal(api.status, 204);
    assert.equal(api.headers.get('access-control-allow-origin'), '*');
    assert.equal(api.headers.get('access-control-max-age'), '600');
    const ota = await preflight('/xiaozhi/ota');
    assert.equal(ota.status, 204);
    assert.match(ota.headers.get('access-control-allow-headers') ?? '', /device-id/);
    // The console's log-in and the admin calls are same-origin only: no CORS grant, 405 naming what is allowed.
    for (const path of ['/console/api/login', '/admin/activate']) {
      const res = await preflight(path);
      assert.equal(res.status, 405, path);
      assert.equal(res.headers.get('access-control-allow-origin'), null, path);
      assert.equal(res.headers.get('allow'), 'POST', path);
    }
  });

  it('keeps the optional trailing slash, HEAD for GET, the JSON 404 and a JSON 400 for an undecodable path', async () => {
    for (const path of ['/health', '/health/']) assert.equal((await fetch(server.url(path))).status, 200, path);
    const head = await fetch(server.url('/health'), { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
    const missing = await fetch(server.url('/supie/nothing-here'), { method: 'POST' });
    assert.deepEqual([missing.status, await missing.json()], [404, { success: false, error: 'not found' }]);
    const undecodable = await fetch(server.url('/supie/meetings/%zz'));
    assert.equal(undecodable.status, 400);
    assert.match(((await undecodable.json()) as Json).error, /^bad request URL/);
    // `//` is routed (to /) but is no URL: a 400, not a 500 (fetch would tidy the path, so a raw request).
    const slashes = await raw('GET', '//');
    assert.deepEqual([slashes.status, JSON.parse(slashes.body)], [400, { success: false, error: 'bad request URL' }]);
  });

  it('serves a device whose Content-Type is not a media type (a sloppy client), as before fastify', async () => {
    const answer = await raw('POST', '/xiaozhi/ota/', {
      headers: { 'content-type': 'json', 'device-id': 'aa:bb:cc:dd:ee:01', 'client-id': 'c-1' },
      body: JSON.stringify({ application: { version: '1.0.0' } }),
    });
    assert.equal(answer.status, 200, answer.body);
    assert.match(String((JSON.parse(answer.body) as Json).websocket?.url), /^ws:\/\//);
  });
});
