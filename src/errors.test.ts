import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { errorCode, errorMessage, providerErrorKind } from './errors.js';
import { ProviderError } from './providers/types.js';

/** A real system error from the file system, not one built by hand. */
function enoent(): unknown {
  try {
    readFileSync('/nonexistent/linus-errors-test');
  } catch (err) {
    return err;
  }
  throw new Error('reading a missing file did not fail');
}

describe('errorMessage', () => {
  it('is the message of an Error and the text of anything else thrown', () => {
    assert.equal(errorMessage(new TypeError('bad input')), 'bad input');
    assert.equal(errorMessage(new ProviderError('tts', 'timeout', 'no audio')), 'tts: no audio');
    assert.equal(errorMessage('a thrown string'), 'a thrown string');
    assert.equal(errorMessage(42), '42');
    assert.equal(errorMessage(undefined), 'undefined');
    assert.equal(errorMessage({ message: 'shaped like an Error' }), '[object Object]');
  });
});

describe('errorCode', () => {
  it('is the code of a system error', () => {
    assert.equal(errorCode(enoent()), 'ENOENT');
  });

  it('is undefined for an error without a string code and for values that are not errors', () => {
    assert.equal(errorCode(new Error('plain')), undefined);
    assert.equal(errorCode(Object.assign(new Error('numeric'), { code: 7 })), undefined);
    assert.equal(errorCode({ code: 'ENOENT' }), undefined);
    assert.equal(errorCode(null), undefined);
    assert.equal(errorCode('ENOENT'), undefined);
  });
});

describe('providerErrorKind', () => {
  it('is the kind of a ProviderError', () => {
    for (const kind of ['timeout', 'http', 'network', 'process', 'protocol', 'config'] as const) {
      assert.equal(providerErrorKind(new ProviderError('asr', kind, 'failed')), kind);
    }
  });

  it('is "error" for anything else, even when it carries a kind', () => {
    assert.equal(providerErrorKind(new Error('plain')), 'error');
    assert.equal(providerErrorKind(Object.assign(new Error('shaped'), { kind: 'timeout' })), 'error');
    assert.equal(providerErrorKind({ kind: 'http' }), 'error');
    assert.equal(providerErrorKind(undefined), 'error');
  });
});
