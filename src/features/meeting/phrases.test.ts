import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isEndMeetingPhrase, isStartMeetingPhrase } from './phrases.js';

describe('meeting voice phrases', () => {
  it('short utterances with a phrase switch modes', () => {
    assert.ok(isStartMeetingPhrase('进入会议模式'));
    assert.ok(isStartMeetingPhrase('Start meeting.'));
    assert.ok(isEndMeetingPhrase('好，结束会议吧'));
    assert.ok(isEndMeetingPhrase('end the meeting'));
    assert.ok(isEndMeetingPhrase('出个纪要'));
  });

  it('a sentence that merely mentions a meeting does not', () => {
    assert.ok(!isEndMeetingPhrase('我们下周三下午再讨论一下结束会议之前要准备的材料'));
    assert.ok(!isStartMeetingPhrase('what time does the meeting start tomorrow'));
    assert.ok(!isStartMeetingPhrase(''));
  });
});
