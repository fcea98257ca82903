import assert from 'node:assert/strict';
import { networkInterfaces } from 'node:os';
import { describe, it, type TestContext } from 'node:test';
import { startTestServer, type TestServer } from '../support/server.js';

/** An address of this machine that is not loopback: a request to it arrives from a non-loopback address. */
const lanAddress = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

async function get(server: TestServer, host: string, headers: Record<string, string> = {}) {
  const res = await fetch(`http://${host}:${server.port}/supie/meetings/recent`, { headers });
  return { status: res.status, body: (await res.json()) as { success: boolean; error?: string } };
}

async function serverOnAllAddresses(t: TestContext, server: Record<string, unknown> = {}): Promise<TestServer> {
  const s = await startTestServer({ server: { ip: '0.0.0.0', api_rate_limit: 0, ...server } });
  t.after(() => s.stop());
  return s;
}

describe(
  'the meeting API on a network address',
  { skip: lanAddress ? false : 'no non-loopback IPv4 address here' },
  () => {
    it('without a token it answers this machine only, and says which key opens it', async (t) => {
      const server = await serverOnAllAddresses(t);
      assert.equal((await get(server, '127.0.0.1')).status, 200);
      const refused = await get(server, lanAddress!);
      assert.equal(refused.status, 403);
      assert.match(refused.body.error ?? '', /server\.meeting_api_token/);
      assert.match(refused.body.error ?? '', /server\.allow_open_api_on_network: true/);
    });

    it('with a token, other machines are served when they give it', async (t) => {
      const server = await serverOnAllAddresses(t, { meeting_api_token: 'lan-token' });
      assert.equal((await get(server, lanAddress!)).status, 401);
      assert.equal((await get(server, lanAddress!, { authorization: 'Bearer lan-token' })).status, 200);
    });

    it('server.allow_open_api_on_network: true serves them without one', async (t) => {
      const server = await serverOnAllAddresses(t, { allow_open_api_on_network: true });
      assert.equal((await get(server, lanAddress!)).status, 200);
    });
  },
);
