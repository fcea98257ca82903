import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Dialogue } from './dialogue.js';

describe('Dialogue', () => {
  it('caps the history and never starts it with an orphan tool message', () => {
    const d = new Dialogue(4);
    d.add({ role: 'user', content: 'q1' });
    d.add({ role: 'assistant', content: null, tool_calls: [{ id: 't', name: 'x', arguments: '{}' }] });
    d.add({ role: 'tool', tool_call_id: 't', content: 'r' });
    d.add({ role: 'assistant', content: 'a1' });
    d.add({ role: 'user', content: 'q2' });
    assert.equal(d.history[0]?.role, 'user');
    assert.ok(d.history.length <= 4);
    assert.deepEqual(
      d.history.map((m) => m.role),
      ['user'],
    );
    d.add({ role: 'assistant', content: 'a2' });
    assert.equal(d.transcript(), 'user: q2\nassistant: a2');
  });

  it('puts the remembered summary in the system prompt', () => {
    const d = new Dialogue(10, 'likes tea');
    const m = d.messages('You are Linus.');
    assert.equal(m[0]?.role, 'system');
    assert.match(m[0]!.content as string, /likes tea/);
  });
});
