import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SentenceSplitter } from './sentences.js';

function run(chunks: string[]): string[] {
  const s = new SentenceSplitter();
  return [...chunks.flatMap((c) => s.push(c)), ...s.flush()];
}

describe('SentenceSplitter', () => {
  it('splits the first segment early at a comma, later ones only at sentence ends', () => {
    assert.deepEqual(run(['好的，我来看看', '。今天天气，晴朗。明天', '下雨']), [
      '好的，',
      '我来看看。',
      '今天天气，晴朗。',
      '明天下雨',
    ]);
  });

  it('handles English punctuation only before white space', () => {
    assert.deepEqual(run(['Well, it is 3.5 degrees', ' today. Take a coat', '! Bye']), [
      'Well,',
      'it is 3.5 degrees today.',
      'Take a coat!',
      'Bye',
    ]);
  });

  it('waits for the next chunk before deciding on a trailing ASCII mark', () => {
    const s = new SentenceSplitter();
    assert.deepEqual(s.push('It costs 3.'), []);
    assert.deepEqual(s.push('50 dollars. Yes'), ['It costs 3.50 dollars.']);
    assert.deepEqual(s.flush(), ['Yes']);
  });

  it('does not make a tiny first segment out of a short interjection', () => {
    assert.deepEqual(run(['Oh, ', 'that is great. ']), ['Oh, that is great.']);
  });

  it('drops segments with nothing to say and splits on newlines', () => {
    assert.deepEqual(run(['...\n', 'First line\nSecond line.']), ['First line', 'Second line.']);
    assert.deepEqual(run(['  ', '!!']), []);
  });
});
