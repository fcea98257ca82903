import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stripThink, ThinkFilter } from './think-filter.js';

function run(chunks: string[]): { out: string[]; all: string } {
  const f = new ThinkFilter();
  const out = chunks.map((c) => f.push(c));
  out.push(f.end());
  return { out, all: out.join('') };
}

test('text without think blocks passes through chunk by chunk', () => {
  const { out, all } = run(['Hello', ' world', '.']);
  assert.deepEqual(out, ['Hello', ' world', '.', '']);
  assert.equal(all, 'Hello world.');
});

test('a whole think block in one chunk is removed', () => {
  assert.equal(run(['<think>secret plan</think>Hi there']).all, 'Hi there');
  assert.equal(stripThink('A<think>x</think>B<think>y</think>C'), 'ABC');
});

test('tags split across chunks are still recognised', () => {
  const { out, all } = run(['Sure', '<th', 'ink>hid', 'den</thi', 'nk>', 'Answer', '.']);
  assert.equal(all, 'SureAnswer.');
  // Nothing of the hidden text leaks in any single chunk.
  assert.ok(out.every((c) => !c.includes('hid') && !c.includes('<') && !c.includes('den')));
});

test('a tag split one character at a time works', () => {
  const text = 'a<think>zzz</think>b';
  assert.equal(run([...text]).all, 'ab');
});

test('a partial tag that never completes is plain text', () => {
  assert.equal(run(['1 <', 'b> 2 <th', 'e end']).all, '1 <b> 2 <the end');
  assert.equal(run(['ends with <thi']).all, 'ends with <thi');
});

test('held text is released as soon as it cannot be a tag', () => {
  const f = new ThinkFilter();
  assert.equal(f.push('x <thi'), 'x ');
  assert.equal(f.push('s is'), '<this is');
});

test('an unclosed think block is dropped at the end', () => {
  assert.equal(run(['Hi <think>still thinking', ' and more']).all, 'Hi ');
});

test('a lone closing tag outside a block is kept as text', () => {
  assert.equal(stripThink('a</think>b'), 'a</think>b');
});
