import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addressMatcher, parseCidr } from './cidr.js';

describe('address lists (server.mqtt.broker_auth_allow)', () => {
  it('reads addresses and CIDR blocks and refuses anything else', () => {
    assert.deepEqual(parseCidr('10.0.0.0/8'), { address: '10.0.0.0', prefix: 8, family: 'ipv4' });
    assert.deepEqual(parseCidr('::1'), { address: '::1', prefix: 128, family: 'ipv6' });
    for (const bad of ['', 'localhost', '10.0.0.0/33', '10.0.0.0/x', '1.2.3.4/8/8', '::1/129'])
      assert.equal(parseCidr(bad), undefined, bad);
  });

  it('matches IPv4, IPv6 and IPv4 mapped into IPv6', () => {
    const match = addressMatcher(['127.0.0.0/8', '::1/128', '192.168.1.20']);
    for (const yes of ['127.0.0.1', '127.9.9.9', '::1', '::ffff:127.0.0.1', '192.168.1.20']) assert.ok(match(yes), yes);
    for (const no of ['10.0.0.1', '192.168.1.21', '::2', '::ffff:10.0.0.1', undefined, 'junk'])
      assert.equal(match(no), false, String(no));
  });
});
