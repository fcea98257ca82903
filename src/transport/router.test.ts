import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Router } from './router.js';

describe('Router', () => {
  const h1 = () => 1;
  const h2 = () => 2;
  const r = new Router().add('POST', '/xiaozhi/ota/', h1).add(['GET'], '/supie/meetings/:id', h2);

  it('matches with or without the trailing slash', () => {
    assert.equal(r.match('POST', '/xiaozhi/ota').kind, 'found');
    assert.equal(r.match('POST', '/xiaozhi/ota/').kind, 'found');
    assert.equal(r.match('POST', '/xiaozhi/ota//').kind, 'none');
  });

  it('extracts decoded params', () => {
    const m = r.match('GET', '/supie/meetings/a%20b');
    assert.ok(m.kind === 'found');
    assert.deepEqual(m.params, { id: 'a b' });
    assert.equal(r.match('GET', '/supie/meetings/a/b').kind, 'none');
  });

  it('answers HEAD for GET routes and reports allowed methods', () => {
    assert.equal(r.match('HEAD', '/supie/meetings/x').kind, 'found');
    assert.deepEqual(r.match('DELETE', '/xiaozhi/ota'), { kind: 'method_not_allowed', allow: ['POST'] });
  });
});
