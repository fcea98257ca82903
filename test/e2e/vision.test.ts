import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { TestDevice, type Json } from '../support/device.js';
import { FakeOpenAi } from '../support/fake-openai.js';
import { metricValue, startTestServer, type TestServer } from '../support/server.js';

/**
 * `/mcp/vision/explain` as the firmware's camera tool uses it (device-protocol.md §5.3): the URL and token come
 * from MCP initialize; the upload is multipart (`question`, then `file`), chunked, with Device-Id, Client-Id and
 * the bearer token. The vision model is an OpenAI-compatible fake on 127.0.0.1.
 */
const BOUNDARY = '----ESP32_CAMERA_BOUNDARY';
/** The first bytes of real files of each type, padded: the endpoint checks the bytes, not the file name. */
const jpeg = (size = 2000) => Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(size - 4, 7)]);
const png = () => Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(500, 1)]);
const gif = () => Buffer.concat([Buffer.from('GIF89a'), Buffer.alloc(500, 1)]);

function form(parts: { name: string; filename?: string; type?: string; data: Buffer | string }[]): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disposition = `form-data; name="${p.name}"${p.filename ? `; filename="${p.filename}"` : ''}`;
    const head = `--${BOUNDARY}\r\nContent-Disposition: ${disposition}\r\n${p.type ? `Content-Type: ${p.type}\r\n` : ''}\r\n`;
    chunks.push(Buffer.from(head), Buffer.isBuffer(p.data) ? p.data : Buffer.from(p.data), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return Buffer.concat(chunks);
}

const photo = (question: string, image: Buffer) =>
  form([
    { name: 'question', data: question },
    { name: 'file', filename: 'camera.jpg', type: 'image/jpeg', data: image },
  ]);

/** POSTs like the firmware: chunked (no Content-Length), in pieces. */
function post(url: string, headers: Record<string, string>, body: Buffer): Promise<{ status: number; json: Json }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, ...headers },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Json }));
      },
    );
    req.on('error', reject);
    for (let i = 0; i < body.length; i += 1024) req.write(body.subarray(i, i + 1024));
    req.end();
  });
}

/** A device that said hello with MCP: the vision URL and token it was given. */
async function visionCapability(server: TestServer, deviceId: string) {
  const dev = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId, clientId: `${deviceId}-c` });
  await dev.hello();
  const init = await dev.next((m) => m.type === 'mcp' && (m.payload as Json).method === 'initialize');
  const vision = ((init.payload as Json).params as Json).capabilities as { vision: { url: string; token: string } };
  await dev.close();
  const headers = {
    'Device-Id': deviceId,
    'Client-Id': `${deviceId}-c`,
    Authorization: `Bearer ${vision.vision.token}`,
  };
  return { url: vision.vision.url, headers };
}

/** A server whose vision model is the fake, with these `server.vision` limits and VLLM block keys. */
function visionServer(
  fake: FakeOpenAi,
  vision: Record<string, unknown>,
  block: Record<string, unknown>,
  failedSecrets?: Record<string, unknown>,
): Promise<TestServer> {
  return startTestServer({
    server: { vision, ...(failedSecrets ? { failed_secrets: failedSecrets } : {}) },
    selected_module: { VLLM: 'FakeVision' },
    VLLM: {
      FakeVision: { type: 'openai', base_url: fake.baseUrl, model_name: 'vision-model', api_key: 'k', ...block },
    },
  });
}

describe('vision explain', () => {
  let fake: FakeOpenAi;
  let server: TestServer;
  before(async () => {
    fake = await FakeOpenAi.start();
    server = await visionServer(
      fake,
      { max_image_bytes: 4000, allowed_types: ['image/jpeg', 'image/png'] },
      {
        timeout_ms: 1500,
      },
    );
  });
  after(async () => {
    await server.stop();
    await fake.stop();
  });

  it('answers the question about the photo with the vision model, in the reference shape', async () => {
    fake.chat = { chunks: ['A red mug ', 'on a desk.'] };
    const cap = await visionCapability(server, 'aa:bb:cc:00:00:01');
    assert.equal(cap.url, server.url('/mcp/vision/explain'));
    const image = jpeg();
    const r = await post(cap.url, cap.headers, photo('What is on the desk?', image));
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { success: true, action: 'RESPONSE', response: 'A red mug on a desk.' });
    const sent = fake.last('/v1/chat/completions').body as { model: string; messages: Json[] };
    assert.equal(sent.model, 'vision-model');
    assert.deepEqual(sent.messages[0]!.content, [
      { type: 'text', text: 'What is on the desk?' },
      { type: 'image_url', image_url: { url: `data:image/jpeg;base64,${image.toString('base64')}` } },
    ]);
  });

  it('refuses a missing or wrong token, or a token of another device, with 401', async () => {
    const cap = await visionCapability(server, 'aa:bb:cc:00:00:02');
    const body = photo('What is this?', jpeg());
    const asked = fake.requests.length;
    for (const headers of [
      { ...cap.headers, Authorization: '' },
      { ...cap.headers, Authorization: 'Bearer not-a-token.123' },
      { ...cap.headers, 'Device-Id': 'aa:bb:cc:00:00:03' },
      { ...cap.headers, 'Client-Id': 'another-client' },
    ]) {
      const r = await post(cap.url, headers, body);
      assert.equal(r.status, 401, JSON.stringify(headers));
      assert.equal(r.json.success, false);
    }
    assert.equal(fake.requests.length, asked, 'the vision model was never asked');
  });

  it('bad input gets a clear message and never reaches the model', async () => {
    const cap = await visionCapability(server, 'aa:bb:cc:00:00:04');
    const asked = fake.requests.length;
    const cases: [string, Buffer, RegExp][] = [
      ['not multipart', Buffer.from('{"question":"x"}'), /multipart/],
      ['no question', form([{ name: 'file', filename: 'camera.jpg', data: jpeg() }]), /question/],
      ['no image', form([{ name: 'question', data: 'What is it?' }]), /file part/],
      ['too large', photo('What is it?', jpeg(4001)), /4000-byte limit/],
      // Past the cap and the form's overhead: reading stops there, the rest is never buffered.
      ['far too large', photo('What is it?', jpeg(300_000)), /4000-byte limit/],
      ['not an image', photo('What is it?', Buffer.from('hello, I am text')), /unsupported image type/],
      [
        'a type not allowed',
        photo('What is it?', gif()),
        /unsupported image type: send one of image\/jpeg, image\/png/,
      ],
    ];
    for (const [name, body, message] of cases) {
      const headers = name === 'not multipart' ? { ...cap.headers, 'content-type': 'application/json' } : cap.headers;
      const r = await post(cap.url, headers, body);
      assert.equal(r.status, 200, name);
      assert.equal(r.json.success, false, name);
      assert.match(String(r.json.message), message, name);
    }
    assert.equal(fake.requests.length, asked, 'the vision model was never asked');
    // An allowed type other than JPEG goes through with its own type.
    fake.chat = { chunks: ['A picture.'] };
    const r = await post(cap.url, cap.headers, photo('What is it?', png()));
    assert.equal(r.json.success, true);
    const sent = fake.last('/v1/chat/completions').body as { messages: { content: Json[] }[] };
    assert.match(String((sent.messages[0]!.content[1]!.image_url as Json).url), /^data:image\/png;base64,/);
  });

  it('a model that never answers: the call is cancelled at its deadline, counted, and the device is told', async () => {
    fake.chat = { hang: true };
    const errors = () => metricValue(server, 'linus_provider_errors_total', { kind: 'vllm' });
    const before = await errors();
    const cap = await visionCapability(server, 'aa:bb:cc:00:00:05');
    const asked = fake.requests.length;
    const r = await post(cap.url, cap.headers, photo('What is it?', jpeg()));
    assert.deepEqual(r.json, { success: false, message: 'the vision model did not answer in time' });
    assert.equal(await errors(), before + 1);
    assert.equal(await (await fake.request(asked)).closed, true, 'the model request was closed');
  });

  it('GET is a health check naming the model', async () => {
    const res = await fetch(server.url('/mcp/vision/explain'));
    assert.equal(res.status, 200);
    assert.match(await res.text(), /running.*FakeVision/);
  });
});

describe('vision explain without a vision model', () => {
  it('says that selected_module.VLLM is not set', async () => {
    const server = await startTestServer();
    try {
      const cap = await visionCapability(server, 'aa:bb:cc:00:00:09');
      const r = await post(cap.url, cap.headers, photo('What is it?', jpeg()));
      assert.equal(r.json.success, false);
      assert.match(String(r.json.message), /selected_module\.VLLM/);
    } finally {
      await server.stop();
    }
  });
});

describe('vision explain limits', () => {
  let fake: FakeOpenAi;
  let server: TestServer;
  before(async () => {
    fake = await FakeOpenAi.start();
    server = await visionServer(fake, { requests_per_minute: 2 }, {}, { limit: 3, backoff_ms: 60_000 });
  });
  after(async () => {
    await server.stop();
    await fake.stop();
  });

  it('a device asks at most requests_per_minute questions; another device is not held back by it', async () => {
    fake.chat = { chunks: ['A mug.'] };
    const cap = await visionCapability(server, 'aa:bb:cc:00:01:01');
    const asked = fake.requests.length;
    for (let i = 0; i < 2; i++)
      assert.equal((await post(cap.url, cap.headers, photo('What?', jpeg()))).json.success, true);
    const third = await post(cap.url, cap.headers, photo('What?', jpeg()));
    assert.equal(third.status, 200, 'said the way the firmware hands to its model');
    assert.equal(third.json.success, false);
    assert.match(String(third.json.message), /at most 2 a minute; retry in \d+ s/);
    assert.equal(fake.requests.length, asked + 2, 'the third question never reached the model');
    const other = await visionCapability(server, 'aa:bb:cc:00:01:02');
    assert.equal((await post(other.url, other.headers, photo('What?', jpeg()))).json.success, true);
  });

  it('forged tokens count against the address: past failed_secrets.limit it gets 429, even with a good token', async () => {
    const cap = await visionCapability(server, 'aa:bb:cc:00:01:03');
    const forged = { ...cap.headers, Authorization: 'Bearer 0123abcd.1700000000' };
    for (let i = 0; i < 3; i++) assert.equal((await post(cap.url, forged, photo('What?', jpeg()))).status, 401);
    const r = await post(cap.url, cap.headers, photo('What?', jpeg()));
    assert.equal(r.status, 429);
    assert.equal(r.json.success, false);
    assert.match(String(r.json.message), /too many wrong secrets/);
  });
});
