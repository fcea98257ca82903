import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validateConfig } from '../config/load.js';
import { exposureNotice } from './exposure.js';

const config = (server: Record<string, unknown> = {}) => validateConfig({ server }).config;

test('the defaults on every address: one line naming what is open and the key that closes it', () => {
  const line = exposureNotice(config(), '0.0.0.0', 8000);
  assert.match(line ?? '', /^open to the network on 0\.0\.0\.0:8000: /);
  assert.match(line!, /devices connect without a token \(server\.auth\.enabled: true closes it\)/);
  assert.match(line!, /the meeting API answers this machine only until server\.meeting_api_token is set/);
  assert.doesNotMatch(line!, /\n/);
});

test('an API opened to the network on purpose is named with its key; nothing open, no line', () => {
  const open = exposureNotice(config({ allow_open_api_on_network: true }), '::', 8000);
  assert.match(open ?? '', /the meeting API answers anyone without a token \(server\.meeting_api_token closes it\)/);
  const closed = config({ auth: { enabled: true }, meeting_api_token: 't' });
  assert.equal(exposureNotice(closed, '0.0.0.0', 8000), undefined);
  assert.equal(exposureNotice(closed, '192.0.2.7', 8000), undefined);
});

test('a server on loopback only prints nothing', () => {
  for (const host of ['127.0.0.1', '::1', 'localhost', '127.0.1.1'])
    assert.equal(exposureNotice(config(), host, 8000), undefined, host);
});
