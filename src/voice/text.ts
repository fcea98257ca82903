/** Text clean-up between the LLM and the device: what TTS should say, what the screen shows, the emotion. */

const EMOJI = /\p{Extended_Pictographic}(\u{FE0F}|\u{200D}\p{Extended_Pictographic})*/gu;

/** Emoji → the emotion names the firmware knows (reference `get_emotion`). */
const EMOTIONS: ReadonlyArray<[string, string]> = [
  ['😂', 'funny'],
  ['😭', 'crying'],
  ['😠', 'angry'],
  ['😔', 'sad'],
  ['😍', 'loving'],
  ['😲', 'surprised'],
  ['😱', 'shocked'],
  ['🤔', 'thinking'],
  ['😌', 'relaxed'],
  ['😴', 'sleepy'],
  ['😜', 'silly'],
  ['🙄', 'confused'],
  ['😶', 'neutral'],
  ['🙂', 'happy'],
  ['😆', 'laughing'],
  ['😳', 'embarrassed'],
  ['😉', 'winking'],
  ['😎', 'cool'],
  ['🤤', 'delicious'],
  ['😘', 'kissy'],
  ['😏', 'confident'],
  ['😀', 'happy'],
  ['😊', 'happy'],
  ['😄', 'laughing'],
  ['😢', 'sad'],
  ['😡', 'angry'],
];

export interface Emotion {
  emoji: string;
  emotion: string;
}

/** The first known emoji in the text decides the emotion; 🙂/happy otherwise. */
export function emotionOf(text: string): Emotion {
  let best: { at: number; e: Emotion } | undefined;
  for (const [emoji, emotion] of EMOTIONS) {
    const at = text.indexOf(emoji);
    if (at >= 0 && (!best || at < best.at)) best = { at, e: { emoji, emotion } };
  }
  return best?.e ?? { emoji: '🙂', emotion: 'happy' };
}

export function stripEmoji(text: string): string {
  return text.replace(EMOJI, '');
}

/** Markdown that a voice should not read out: emphasis, headings, code fences, list bullets, link targets. */
export function stripMarkdown(text: string): string {
  return text
    .replace(/```[a-z]*\n?/gi, '')
    .replace(/`([^`]*)`/g, '$1')
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/^\s{0,3}#{1,6}\s+/gm, '')
    .replace(/^\s*[-*+]\s+/gm, '')
    .replace(/^\s*>\s?/gm, '')
    .replace(/(\*\*|__)(.*?)\1/g, '$2')
    .replace(/(^|[^*\w])[*_]([^*_\n]+)[*_](?=[^*\w]|$)/g, '$1$2')
    .replace(/\|/g, ' ');
}

/** What TTS speaks for a segment: no markdown, no emoji, single-spaced. */
export function speakableText(segment: string): string {
  return stripEmoji(stripMarkdown(segment)).replace(/\s+/g, ' ').trim();
}

/** What the device shows in `sentence_start`: the reference removes emoji and newlines. */
export function displayText(segment: string): string {
  return stripEmoji(segment).replace(/\n/g, ' ').trim();
}

/** ASR text for `stt` and for command matching: leading/trailing punctuation and emoji removed. */
export function cleanTranscript(text: string): string {
  return stripEmoji(text).replace(/^[\s\p{P}\p{S}]+|[\s\p{P}\p{S}]+$/gu, '');
}

/** Loose form for matching commands and wake words: no punctuation or spaces, lower case. */
export function commandKey(text: string): string {
  return text.replace(/[\s\p{P}\p{S}]/gu, '').toLowerCase();
}
