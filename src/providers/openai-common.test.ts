import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { parseMultipart } from '../transport/multipart.js';
import { HttpStatusError, jsonBody, multipartBody, openAiEndpoint, sseData, toProviderError } from './openai-common.js';
import { ProviderError } from './types.js';

async function* chunks(...parts: string[]): AsyncGenerator<Buffer> {
  for (const p of parts) yield Buffer.from(p);
}

async function all(source: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const s of source) out.push(s);
  return out;
}

describe('sseData', () => {
  it('yields each event, with lines split anywhere between chunks, until [DONE]', async () => {
    const body = 'data: {"a":1}\n\n: a comment\n\ndata: {"b":"é"}\r\n\r\ndata: [DONE]\n\ndata: {"after":1}\n\n';
    const bytes = Buffer.from(body);
    for (const size of [1, 2, 3, 7, bytes.length]) {
      const parts: Buffer[] = [];
      for (let i = 0; i < bytes.length; i += size) parts.push(bytes.subarray(i, i + size));
      // Split inside the two-byte "é" too: the text decoder must carry the partial character.
      assert.deepEqual(
        await all(
          sseData(
            (async function* () {
              yield* parts;
            })(),
          ),
        ),
        ['{"a":1}', '{"b":"é"}'],
        `chunks of ${size} bytes`,
      );
    }
  });

  it('joins the data lines of one event and keeps an event the server did not end with a blank line', async () => {
    assert.deepEqual(await all(sseData(chunks('event: x\ndata: one\ndata:two\n\n', 'data: last'))), [
      'one\ntwo',
      'last',
    ]);
  });
});

describe('openAiEndpoint', () => {
  let server: Server;
  let base: string;
  const seen: Array<{ url?: string; auth?: string; type?: string; body: Buffer }> = [];

  before(async () => {
    server = createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        seen.push({
          url: req.url,
          auth: req.headers.authorization,
          type: req.headers['content-type'],
          body: Buffer.concat(parts),
        });
        if (req.url === '/v1/fail') {
          res.writeHead(429, { 'content-type': 'application/json' });
          return void res.end('{"error":{"message":"slow down"}}');
        }
        if (req.url === '/v1/garbage') return void res.end('<html>');
        if (req.url === '/v1/slow') {
          // Half the body, then nothing: the caller's abort must end its read.
          res.writeHead(200);
          return void res.write(Buffer.alloc(18_000));
        }
        res.setHeader('content-type', 'application/json');
        res.end('{"ok":true}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  const endpoint = (key?: string) =>
    openAiEndpoint({ base_url: `${base}/chat/completions`, ...(key ? { api_key: key } : {}) }, 'LLM.t');

  it('posts JSON with the key to the path under the base URL (an endpoint path in the config is cut off)', async () => {
    const e = endpoint('sk-1');
    assert.equal(e.baseUrl, base);
    assert.deepEqual(await e.json('/chat/completions', jsonBody({ q: 1 }), new AbortController().signal), {
      ok: true,
    });
    const last = seen.at(-1)!;
    assert.equal(last.url, '/v1/chat/completions');
    assert.equal(last.auth, 'Bearer sk-1');
    assert.equal(last.type, 'application/json');
    assert.deepEqual(JSON.parse(last.body.toString()), { q: 1 });
  });

  it('uploads a multipart form that a multipart parser reads back', async () => {
    const wav = Buffer.from([0, 1, 2, 13, 10, 255]);
    const body = multipartBody(
      { model: 'whisper-1', language: 'zh' },
      {
        field: 'file',
        name: 'audio.wav',
        type: 'audio/wav',
        data: wav,
      },
    );
    await endpoint().json('/audio/transcriptions', body, new AbortController().signal);
    const last = seen.at(-1)!;
    assert.equal(last.auth, 'Bearer none');
    const parts = parseMultipart(last.body, last.type ?? '') ?? [];
    assert.deepEqual(
      parts.map((p) => [p.name, p.filename, p.data.toString('hex')]),
      [
        ['model', undefined, Buffer.from('whisper-1').toString('hex')],
        ['language', undefined, Buffer.from('zh').toString('hex')],
        ['file', 'audio.wav', wav.toString('hex')],
      ],
    );
  });

  it('maps an error status with its message, and a body that is not JSON, to the provider error kinds', async () => {
    const opts = { signal: new AbortController().signal };
    const signal = new AbortController().signal;
    const failed = await endpoint()
      .json('/fail', jsonBody({}), signal)
      .catch((e: unknown) => e);
    assert.ok(failed instanceof HttpStatusError);
    const http = toProviderError('t', failed, opts, signal);
    assert.ok(http instanceof ProviderError);
    assert.equal(http.kind, 'http');
    assert.equal(http.message, 't: HTTP 429: slow down');
    const garbage = await endpoint()
      .json('/garbage', jsonBody({}), signal)
      .catch((e: unknown) => e);
    assert.equal((toProviderError('t', garbage, opts, signal) as ProviderError).kind, 'protocol');
  });

  it('ends a body read with an error when the signal aborts mid-body', async () => {
    const ac = new AbortController();
    const res = await endpoint().post('/slow', jsonBody({}), ac.signal);
    let bytes = 0;
    await assert.rejects(async () => {
      for await (const c of res) {
        bytes += (c as Buffer).length;
        if (bytes >= 18_000) ac.abort(new Error('deadline'));
      }
    });
    assert.equal(bytes, 18_000);
  });

  it('refuses a base URL that is not http(s)', () => {
    assert.throws(
      () => openAiEndpoint({ base_url: 'ftp://x/v1' }, 'LLM.t'),
      (e: unknown) => e instanceof ProviderError && e.kind === 'config',
    );
  });
});
