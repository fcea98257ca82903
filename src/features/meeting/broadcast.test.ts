import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { broadcastTargets } from './broadcast.js';

const groupOf = (id: string) => id.slice(0, 8);
const online = ['aa:bb:cc:01', 'aa:bb:cc:02', 'dd:ee:ff:01', 'dd:ee:ff:02'];
const policy = (p: Partial<Parameters<typeof broadcastTargets>[0]>) => ({
  enabled: true,
  mode: 'group' as const,
  allowed_targets: [],
  include_origin: false,
  ...p,
});

describe('meeting broadcast policy', () => {
  it('is off by default and when disabled', () => {
    assert.deepEqual(broadcastTargets(policy({ enabled: false }), 'aa:bb:cc:01', online, groupOf), []);
    assert.deepEqual(broadcastTargets(policy({ mode: 'off' }), 'aa:bb:cc:01', online, groupOf), []);
  });

  it('group: same group plus the allowlist, never the origin unless include_origin', () => {
    assert.deepEqual(broadcastTargets(policy({}), 'aa:bb:cc:01', online, groupOf), ['aa:bb:cc:02']);
    assert.deepEqual(broadcastTargets(policy({ allowed_targets: ['dd:ee:ff:02'] }), 'aa:bb:cc:01', online, groupOf), [
      'aa:bb:cc:02',
      'dd:ee:ff:02',
    ]);
    assert.deepEqual(broadcastTargets(policy({ include_origin: true }), 'aa:bb:cc:01', online, groupOf), [
      'aa:bb:cc:01',
      'aa:bb:cc:02',
    ]);
  });

  it('session: the allowlist only', () => {
    assert.deepEqual(
      broadcastTargets(
        policy({ mode: 'session', allowed_targets: ['dd:ee:ff:01', 'offline'] }),
        'aa:bb:cc:01',
        online,
        groupOf,
      ),
      ['dd:ee:ff:01'],
    );
  });
});
