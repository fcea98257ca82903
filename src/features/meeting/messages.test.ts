import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseMeetingMessage } from './messages.js';

const err = (m: unknown) => {
  const r = parseMeetingMessage(m);
  assert.equal(r.ok, false);
  return (r as { error: string }).error;
};

describe('meeting message schema', () => {
  it('accepts snippets and finalize', () => {
    assert.ok(
      parseMeetingMessage({ type: 'meeting', phase: 'snippet', items: [{ text: 'hi', tag: 't', speakerId: 's' }] }).ok,
    );
    assert.ok(parseMeetingMessage({ type: 'meeting', phase: 'finalize' }).ok);
  });

  it('names what is missing', () => {
    assert.match(
      err({ type: 'meeting', phase: 'snippet' }),
      /items must be array of \{tag\?,text,speakerId\?\}: missing items/,
    );
    assert.match(
      err({ type: 'meeting', phase: 'snippet', items: [{ text: 'ok' }, { tag: 'x' }] }),
      /missing items\[1\]\.text/,
    );
    assert.match(err({ type: 'meeting', phase: 'snippet', items: [] }), /items is empty/);
    assert.match(err({ type: 'meeting', phase: 'snippet', items: 'text' }), /items/);
    assert.match(err({ type: 'meeting' }), /phase/);
    assert.match(err({ type: 'meeting', phase: 'summary' }), /phase/);
  });
});
