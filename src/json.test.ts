import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { extractJsonObject, isJsonObject, parseJsonObject } from './json.js';

describe('parseJsonObject', () => {
  it('returns a JSON object and undefined for anything else', () => {
    assert.deepEqual(parseJsonObject('{"a":1,"b":{"c":[2]}}'), { a: 1, b: { c: [2] } });
    for (const text of ['', 'not json', '{"a":', '[1,2]', '"text"', '42', 'null', 'true']) {
      assert.equal(parseJsonObject(text), undefined, text);
    }
  });
});

describe('isJsonObject', () => {
  it('accepts objects only', () => {
    assert.equal(isJsonObject({}), true);
    for (const v of [null, undefined, [], 'x', 1, false]) assert.equal(isJsonObject(v), false, String(v));
  });
});

describe('extractJsonObject', () => {
  it('takes the whole answer, else its outermost braces', () => {
    assert.deepEqual(extractJsonObject('  {"title":"x"}\n'), { title: 'x' });
    assert.deepEqual(extractJsonObject('Sure: ```json\n{"title":"x","n":{"m":1}}\n``` done'), {
      title: 'x',
      n: { m: 1 },
    });
    // An array is no object, but the object inside it is read.
    assert.deepEqual(extractJsonObject('[{"in":"array"}]'), { in: 'array' });
  });

  it('is undefined when no object can be read', () => {
    assert.equal(extractJsonObject('no json'), undefined);
    assert.equal(extractJsonObject('} backwards {'), undefined);
    assert.equal(extractJsonObject('{"broken": }'), undefined);
  });
});
