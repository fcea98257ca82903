import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cleanTranscript, commandKey, displayText, emotionOf, speakableText, stripMarkdown } from './text.js';

describe('text clean-up', () => {
  it('finds the first known emoji as the emotion, happy by default', () => {
    assert.deepEqual(emotionOf('Oh no 😭 then 😂'), { emoji: '😭', emotion: 'crying' });
    assert.deepEqual(emotionOf('plain'), { emoji: '🙂', emotion: 'happy' });
  });

  it('strips markdown for speech', () => {
    assert.equal(
      stripMarkdown('# Title\n- **bold** and *it* and `code` [link](http://x)'),
      'Title\nbold and it and code link',
    );
  });

  it('speakable text has no emoji or markdown; display text keeps words, drops emoji and newlines', () => {
    assert.equal(speakableText('**Hi** 😊 there!\n'), 'Hi there!');
    assert.equal(displayText('Hi 😊\nthere'), 'Hi  there');
  });

  it('cleans transcripts and builds command keys', () => {
    assert.equal(cleanTranscript('。退出！'), '退出');
    assert.equal(cleanTranscript('  what time is it? 🙂'), 'what time is it');
    assert.equal(commandKey('Good-bye!'), 'goodbye');
    assert.equal(commandKey('你好，小智'), '你好小智');
  });
});
