import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { startTestServer, tempDir, type TestServer } from '../support/server.js';

/**
 * Firmware updates over OTA (device-protocol.md §5.1): images in <data>/bin named <board>_<version>.bin, the
 * newest newer one offered within the device's rollout (devices.yaml), downloaded from Linus with Range support
 * and a SHA-256 checksum.
 */
const BOARD = 'bread-compact-wifi';
const images: Record<string, Buffer> = {
  [`${BOARD}_1.2.0.bin`]: randomBytes(3000),
  [`${BOARD}_1.10.0.bin`]: randomBytes(5000), // 1.10 > 1.9 > 1.2: compared as numbers, not text
  [`${BOARD}_1.9.0.bin`]: randomBytes(4000),
  [`${BOARD}_0.9.bin`]: randomBytes(100),
  'other-board_9.9.9.bin': randomBytes(100),
  // Malformed names: never offered, never served.
  [`${BOARD}_latest.bin`]: randomBytes(10),
  [`${BOARD}_2.0.0.bin.part`]: randomBytes(10),
  [`${BOARD}_3.0.0.BIN`]: randomBytes(10),
  [`${BOARD}.bin`]: randomBytes(10),
  'README.txt': Buffer.from('notes'),
};
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let dataDir: string;
let server: TestServer;
before(async () => {
  dataDir = tempDir('linus-fw-');
  mkdirSync(join(dataDir, 'bin'));
  for (const [name, data] of Object.entries(images)) writeFileSync(join(dataDir, 'bin', name), data);
  writeFileSync(
    join(dataDir, 'devices.yaml'),
    stringify({
      groups: { capped: { firmware: '1.9.0' }, frozen: { firmware: 'none' } },
      devices: {
        'aa:00:00:00:00:02': { group: 'capped' },
        'aa:00:00:00:00:03': { group: 'capped', firmware: 'latest' }, // the one badge that tries the new build
        'aa:00:00:00:00:04': { group: 'frozen' },
      },
    }),
  );
  server = await startTestServer({}, { dataDir });
});
after(async () => {
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function ota(mac: string, version: string, board = BOARD, path = '/xiaozhi/ota/') {
  const res = await fetch(server.url(path), {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'device-id': mac, 'client-id': `${mac}-c` },
    body: JSON.stringify({ mac_address: mac, application: { name: 'xiaozhi', version }, board: { type: board } }),
  });
  assert.equal(res.status, 200);
  return ((await res.json()) as { firmware: { version: string; url: string; sha256?: string; size?: number } })
    .firmware;
}

describe('OTA firmware offers', () => {
  it('a device on an older version is offered the newest image for its board, with its checksum', async () => {
    const fw = await ota('aa:00:00:00:00:01', '1.2.0');
    const file = `${BOARD}_1.10.0.bin`;
    assert.equal(fw.version, '1.10.0');
    assert.equal(fw.url, server.url(`/xiaozhi/ota/download/${file}`));
    assert.equal(fw.sha256, sha256(images[file]!));
    assert.equal(fw.size, images[file]!.length);
    const fork = await ota('aa:00:00:00:00:01', '1.2.0', BOARD, '/supie/ota/');
    assert.equal(fork.url, server.url(`/supie/ota/download/${file}`));
  });

  it('a device on the newest version, or a newer one, is told its own version', async () => {
    assert.deepEqual(await ota('aa:00:00:00:00:01', '1.10.0'), { version: '1.10.0', url: '' });
    assert.deepEqual(await ota('aa:00:00:00:00:01', '1.10'), { version: '1.10', url: '' });
    assert.deepEqual(await ota('aa:00:00:00:00:01', '2.5.0'), { version: '2.5.0', url: '' });
  });

  it('malformed names are ignored; another board gets its own images only', async () => {
    // 2.0.0.bin.part, 3.0.0.BIN and latest.bin would all be "newer": none is offered.
    assert.deepEqual(await ota('aa:00:00:00:00:01', '1.10.0'), { version: '1.10.0', url: '' });
    assert.equal((await ota('aa:00:00:00:00:01', '1.0.0', 'other-board')).version, '9.9.9');
    assert.deepEqual(await ota('aa:00:00:00:00:01', '1.0.0', 'unknown-board'), { version: '1.0.0', url: '' });
    for (const name of [`${BOARD}_latest.bin`, `${BOARD}_2.0.0.bin.part`, 'README.txt', '..%2Fdevices.yaml']) {
      const res = await fetch(server.url(`/xiaozhi/ota/download/${name}`));
      assert.equal(res.status, 404, name);
      await res.body?.cancel();
    }
  });

  it('rollout from devices.yaml: a group capped at a version, one device of it on latest, a frozen group', async () => {
    assert.equal((await ota('aa:00:00:00:00:02', '1.2.0')).version, '1.9.0');
    assert.deepEqual(await ota('aa:00:00:00:00:02', '1.9.0'), { version: '1.9.0', url: '' });
    assert.equal((await ota('aa:00:00:00:00:03', '1.2.0')).version, '1.10.0');
    assert.deepEqual(await ota('aa:00:00:00:00:04', '0.1.0'), { version: '0.1.0', url: '' });
  });
});

describe('firmware download', () => {
  const file = `${BOARD}_1.9.0.bin`;
  const url = () => server.url(`/xiaozhi/ota/download/${file}`);

  it('serves the whole image with its length and checksum headers', async () => {
    const res = await fetch(url());
    assert.equal(res.status, 200);
    const body = Buffer.from(await res.arrayBuffer());
    assert.ok(body.equals(images[file]!));
    assert.equal(res.headers.get('accept-ranges'), 'bytes');
    assert.equal(res.headers.get('content-length'), String(body.length));
    assert.equal(res.headers.get('x-checksum-sha256'), sha256(body));
    assert.equal(res.headers.get('etag'), `"${sha256(body)}"`);
  });

  it('serves byte ranges (resumed downloads), and refuses one past the end with 416', async () => {
    const data = images[file]!;
    for (const [range, start, end] of [
      ['bytes=0-99', 0, 99],
      ['bytes=3900-', 3900, data.length - 1],
      ['bytes=-10', data.length - 10, data.length - 1],
    ] as const) {
      const res = await fetch(url(), { headers: { range } });
      assert.equal(res.status, 206, range);
      assert.equal(res.headers.get('content-range'), `bytes ${start}-${end}/${data.length}`);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(data.subarray(start, end + 1)), range);
    }
    const res = await fetch(url(), { headers: { range: `bytes=${data.length}-` } });
    assert.equal(res.status, 416);
    assert.equal(res.headers.get('content-range'), `bytes */${data.length}`);
    await res.body?.cancel();
  });

  it('HEAD answers the headers only', async () => {
    const res = await fetch(url(), { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-length'), String(images[file]!.length));
    assert.equal((await res.arrayBuffer()).byteLength, 0);
  });

  it('an image dropped in while running is offered at once', async () => {
    const added = randomBytes(64);
    writeFileSync(join(dataDir, 'bin', `${BOARD}_1.11.0.bin`), added);
    const fw = await ota('aa:00:00:00:00:01', '1.2.0');
    assert.equal(fw.version, '1.11.0');
    assert.equal(fw.sha256, sha256(added));
  });
});
