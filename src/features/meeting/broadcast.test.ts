import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pickAudience } from '../../hub/cluster/fanout.js';
import { broadcastAudience } from './broadcast.js';

const groupOf = (id: string) => id.slice(0, 8);
const online = ['aa:bb:cc:01', 'aa:bb:cc:02', 'dd:ee:ff:01', 'dd:ee:ff:02'];
/** Whom the policy picks among the online devices (as each node picks among its own). */
const broadcastTargets = (
  p: Parameters<typeof broadcastAudience>[0],
  origin: string,
  ids: string[],
  groupOf: (id: string) => string,
) => {
  const audience = broadcastAudience(p, origin, groupOf);
  return audience ? pickAudience(audience, ids, groupOf) : [];
};
const policy = (p: Partial<Parameters<typeof broadcastAudience>[0]>) => ({
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
