import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseMultipart } from './multipart.js';

const CT = 'multipart/form-data; boundary=----ESP32_CAMERA_BOUNDARY';
const body = (...lines: string[]) => Buffer.from(lines.join('\r\n'));

describe('multipart/form-data', () => {
  it('reads text and file parts, with a binary file holding CRLFs and boundary-like bytes', () => {
    const image = Buffer.from([0xff, 0xd8, 0x0d, 0x0a, 0x2d, 0x2d, 0x00, 0xff]);
    const raw = Buffer.concat([
      body(
        '------ESP32_CAMERA_BOUNDARY',
        'Content-Disposition: form-data; name="question"',
        '',
        'What is this?',
        '------ESP32_CAMERA_BOUNDARY',
        'Content-Disposition: form-data; name="file"; filename="camera.jpg"',
        'Content-Type: image/jpeg',
        '',
        '',
      ),
      image,
      body('', '------ESP32_CAMERA_BOUNDARY--', ''),
    ]);
    const parts = parseMultipart(raw, CT);
    assert.equal(parts?.length, 2);
    assert.deepEqual({ ...parts![0], data: parts![0]!.data.toString() }, { name: 'question', data: 'What is this?' });
    assert.equal(parts![1]!.name, 'file');
    assert.equal(parts![1]!.filename, 'camera.jpg');
    assert.equal(parts![1]!.contentType, 'image/jpeg');
    assert.ok(parts![1]!.data.equals(image));
  });

  it('accepts a quoted boundary and a preamble', () => {
    const raw = body('preamble', '--b', 'Content-Disposition: form-data; name="q"', '', 'x', '--b--');
    assert.deepEqual(
      parseMultipart(raw, 'multipart/form-data; boundary="b"')?.map((p) => p.name),
      ['q'],
    );
  });

  it('returns undefined for another content type, no boundary, or a body cut short', () => {
    assert.equal(parseMultipart(body('--b', ''), 'application/json'), undefined);
    assert.equal(parseMultipart(body('--b', ''), 'multipart/form-data'), undefined);
    assert.equal(parseMultipart(body('nothing here'), 'multipart/form-data; boundary=b'), undefined);
    const cut = body('--b', 'Content-Disposition: form-data; name="q"', '', 'no closing delimiter');
    assert.equal(parseMultipart(cut, 'multipart/form-data; boundary=b'), undefined);
  });
});
