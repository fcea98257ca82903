import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareVersions, parseFirmwareName, parseRange } from './firmware.js';

describe('firmware file names and versions', () => {
  it('parses <board>_<version>.bin, boards with dashes and underscores included', () => {
    assert.deepEqual(parseFirmwareName('bread-compact-wifi_1.6.2.bin'), {
      board: 'bread-compact-wifi',
      version: '1.6.2',
    });
    assert.deepEqual(parseFirmwareName('esp32_s3_box_2.0.bin'), { board: 'esp32_s3_box', version: '2.0' });
  });

  it('ignores malformed names', () => {
    for (const name of [
      'board.bin',
      'board_.bin',
      '_1.0.0.bin',
      'board_latest.bin',
      'board_1..2.bin',
      'board_1.2.bin.part',
      'board_1.2.BIN',
      'board_1.2.0-rc1.bin',
      'bo ard_1.2.bin',
      '../x_1.0.bin',
    ]) {
      assert.equal(parseFirmwareName(name), undefined, name);
    }
  });

  it('compares numerically part by part, as the firmware does', () => {
    assert.equal(compareVersions('1.10.0', '1.9.9'), 1);
    assert.equal(compareVersions('1.2', '1.2.0'), 0);
    assert.equal(compareVersions('1.2.0', '1.2.1'), -1);
    assert.equal(compareVersions('2.0.0-rc1', '2.0.0'), 0);
    assert.equal(compareVersions('garbage', '0.0.1'), -1);
  });
});

describe('byte ranges', () => {
  it('reads a-b, a- and -n, clamped to the file', () => {
    assert.deepEqual(parseRange('bytes=0-9', 100), [0, 9]);
    assert.deepEqual(parseRange('bytes=90-', 100), [90, 99]);
    assert.deepEqual(parseRange('bytes=-10', 100), [90, 99]);
    assert.deepEqual(parseRange('bytes=50-500', 100), [50, 99]);
    assert.deepEqual(parseRange('bytes=-500', 100), [0, 99]);
  });

  it('refuses a range that starts past the end; ignores what is not one byte range', () => {
    assert.equal(parseRange('bytes=100-', 100), 'unsatisfiable');
    assert.equal(parseRange('bytes=-0', 100), 'unsatisfiable');
    assert.equal(parseRange('bytes=150-200', 100), 'unsatisfiable', 'a first byte past the end, with a last byte too');
    assert.equal(parseRange('bytes=9-5', 100), undefined, 'a last byte before the first is no range');
    assert.equal(parseRange(undefined, 100), undefined);
    assert.equal(parseRange('bytes=0-1,5-6', 100), undefined);
    assert.equal(parseRange('items=0-1', 100), undefined);
    assert.equal(parseRange('bytes=9-3', 100), undefined);
  });
});
