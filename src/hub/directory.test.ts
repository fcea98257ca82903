import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { validateConfig } from '../config/load.js';
import { ConfigStore } from '../config/store.js';
import { silentLogger } from '../observability/log.js';
import { tempDir } from '../../test/support/server.js';
import { DeviceDirectory } from './directory.js';

const dir = tempDir('linus-directory-');
after(() => rmSync(dir, { recursive: true, force: true }));

function directory(file: string, content: unknown): DeviceDirectory {
  const path = join(dir, file);
  writeFileSync(path, stringify(content));
  return new DeviceDirectory(path, new ConfigStore(validateConfig({}).config), silentLogger());
}

describe('devices.yaml settings (firmware, presence)', () => {
  it("a device's own setting wins over its group's, which wins over the top of the file", () => {
    const d = directory('a.yaml', {
      firmware: '1.0.0',
      presence: false,
      groups: { beta: { firmware: 'latest', presence: true } },
      devices: {
        'aa:00:00:00:00:01': { group: 'beta', firmware: 'none' },
        'aa:00:00:00:00:02': { group: 'beta' },
      },
    });
    try {
      assert.equal(d.setting('aa:00:00:00:00:01', 'firmware'), 'none');
      assert.equal(d.setting('aa:00:00:00:00:01', 'presence'), true);
      assert.equal(d.setting('aa:00:00:00:00:02', 'firmware'), 'latest');
      assert.equal(d.setting('aa:00:00:00:00:03', 'firmware'), '1.0.0');
      assert.equal(d.setting('aa:00:00:00:00:03', 'presence'), false);
    } finally {
      d.close();
    }
  });

  it('a version YAML reads as a number is taken as the version; a bad firmware value keeps the previous entries', () => {
    const path = join(dir, 'b.yaml');
    const d = directory('b.yaml', { devices: { 'aa:00:00:00:00:01': { firmware: 1.7 } } });
    try {
      assert.equal(d.setting('aa:00:00:00:00:01', 'firmware'), '1.7');
      writeFileSync(path, stringify({ devices: { 'aa:00:00:00:00:01': { firmware: 'newest' } } }));
      assert.equal(d.reload(), false);
      assert.equal(d.setting('aa:00:00:00:00:01', 'firmware'), '1.7');
    } finally {
      d.close();
    }
  });
});
