import { commandKey } from '../../voice/text.js';

/**
 * Voice mode switches for meetings (C1): a short utterance that contains one of these phrases starts or
 * ends (finalizes) the meeting instead of being chat or a snippet. "Short" keeps a sentence that merely
 * mentions a meeting from switching modes.
 */
export const START_MEETING_PHRASES = [
  '进入会议模式',
  '切换到会议模式',
  '开始会议',
  '会议模式',
  'enter meeting mode',
  'start meeting',
  'start a meeting',
  'meeting mode',
];
export const END_MEETING_PHRASES = [
  '结束会议',
  '停止录制',
  '开始总结',
  '出个纪要',
  '会议结束',
  'end meeting',
  'end the meeting',
  'stop recording',
  'finish meeting',
  'summarize the meeting',
];

/** Extra characters an utterance may have around the phrase. */
const SLACK = 8;

function matches(text: string, phrases: readonly string[]): boolean {
  const key = commandKey(text);
  if (!key) return false;
  return phrases.some((p) => {
    const pk = commandKey(p);
    return key.includes(pk) && key.length <= pk.length + SLACK;
  });
}

export const isStartMeetingPhrase = (text: string): boolean => matches(text, START_MEETING_PHRASES);
export const isEndMeetingPhrase = (text: string): boolean => matches(text, END_MEETING_PHRASES);
