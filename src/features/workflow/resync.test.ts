import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { tempDir } from '../../../test/support/server.js';
import { validateConfig } from '../../config/load.js';
import { ConfigStore } from '../../config/store.js';
import { DeviceDirectory } from '../../hub/directory.js';
import { LocalDeviceRegistry, type DeviceConnection } from '../../hub/registry.js';
import { silentLogger } from '../../observability/log.js';
import { openDatabase } from '../../store/sqlite.js';
import { SNAPSHOT_DEBOUNCE_MS } from './gate.js';
import { WorkflowService } from './service.js';
import { SqliteTaskStore } from './store.js';

type Msg = { type: string } & Record<string, unknown>;

/** A device connection that keeps what it is handed. */
function connection(deviceId: string): DeviceConnection & { inbox: Msg[] } {
  const inbox: Msg[] = [];
  return {
    connectionId: `c-${deviceId}`,
    deviceId,
    inbox,
    replacedBy() {},
    deliver: (m) => inbox.push(m) > 0,
    deliverText: (j) => inbox.push(JSON.parse(j) as Msg) > 0,
  };
}

describe('task resync after a cluster bus gap (D17, D20)', () => {
  const dir = tempDir();
  const db = openDatabase(dir);
  const config = new ConfigStore(validateConfig({}).config);
  const directory = new DeviceDirectory(join(dir, 'devices.yaml'), config, silentLogger());
  let now = 1_000_000;
  const service = new WorkflowService({
    store: new SqliteTaskStore(db),
    registry: new LocalDeviceRegistry(),
    directory,
    log: silentLogger(),
    now: () => now,
  });
  after(() => {
    directory.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('each tracked connection gets its group list again through its gate: once per window, even an empty list', async () => {
    const a = connection('rs:00:00:00:00:01');
    const untracked = connection('rs:00:00:00:00:02');
    service.attach(a);
    // A fresh connection's empty list is not sent (nothing on its screen); the window is given back.
    assert.equal(await service.sendSnapshot(a, 'register'), false);
    // After a gap the screen may show tasks deleted meanwhile: the empty list goes.
    assert.equal(await service.resync([a, untracked]), 1);
    assert.deepEqual(
      a.inbox.map((m) => [m.type, m.groupKey, (m.tasks as unknown[]).length]),
      [['workflow', 'rs:00:00', 0]],
    );
    assert.equal(untracked.inbox.length, 0, 'only connections the feature tracks');
    // A second gap within the window: debounced, one snapshot per connection.
    now += SNAPSHOT_DEBOUNCE_MS - 1;
    assert.equal(await service.resync([a]), 0);
    // Written by another node: the store has it, this node's devices were not told (the broadcast was lost).
    await service.upsertTasks('rs:00:00', [{ id: 't1', title: 'made elsewhere' }], 'rs:00:00:00:00:09');
    now += 1;
    assert.equal(await service.resync([a]), 1);
    assert.deepEqual(
      (a.inbox.at(-1)?.tasks as Array<{ title: string }>).map((t) => t.title),
      ['made elsewhere'],
    );
  });
});
