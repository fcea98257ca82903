/**
 * Snippet text preprocessing (pure): language detection, whitespace and punctuation normalisation, the configured
 * term map, and a UTF-8-safe cut. Every snippet, typed or recognized, goes through `prepareSnippetText`.
 */

/** Largest snippet text kept, in UTF-8 bytes. */
export const MAX_SNIPPET_BYTES = 2048;

export type TextLang = 'zh' | 'en';

const HAN = /\p{Script=Han}/u;
const HAN_G = /\p{Script=Han}/gu;
const LATIN_G = /[A-Za-z]/g;
// Control characters other than tab/newline, zero-width characters and the BOM.
// eslint-disable-next-line no-control-regex
const INVISIBLE = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F\u200B-\u200D\u2060\uFEFF]/g;

/** `zh` when Han characters are at least a third of the letters, else `en`. */
export function detectLang(text: string): TextLang {
  const han = text.match(HAN_G)?.length ?? 0;
  const latin = text.match(LATIN_G)?.length ?? 0;
  if (han === 0) return 'en';
  return han * 3 >= han + latin ? 'zh' : 'en';
}

const HALF_TO_FULL: Record<string, string> = { ',': '，', '?': '？', '!': '！', ';': '；', ':': '：' };

/** Full-width ASCII letters and digits (common in CJK input methods) → ASCII. */
function asciiFromFullWidth(text: string): string {
  return text.replace(/[\uFF10-\uFF19\uFF21-\uFF3A\uFF41-\uFF5A]/g, (c) =>
    String.fromCharCode(c.charCodeAt(0) - 0xfee0),
  );
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Applies `term_map` in one pass (a replacement is never replaced again), longest key first; Latin keys match
 * whole words, case-insensitively.
 */
export function applyTermMap(text: string, termMap: Readonly<Record<string, string>>): string {
  const keys = Object.keys(termMap)
    .map((k) => k.trim())
    .filter((k) => k.length > 0)
    .sort((a, b) => b.length - a.length);
  if (keys.length === 0) return text;
  const lookup = new Map<string, string>();
  for (const [k, v] of Object.entries(termMap)) lookup.set(k.trim().toLowerCase(), v);
  const alternatives = keys.map((k) =>
    /^[\p{Script=Latin}\d\s'-]+$/u.test(k) ? `(?<![\\p{L}\\d])${escapeRegExp(k)}(?![\\p{L}\\d])` : escapeRegExp(k),
  );
  return text.replace(new RegExp(alternatives.join('|'), 'giu'), (m) => lookup.get(m.toLowerCase()) ?? m);
}

/**
 * Normalises one snippet: invisible characters removed, full-width ASCII folded, whitespace collapsed (and removed
 * between Han characters, where ASR engines put spaces), ASCII punctuation next to Han turned full-width, runs of
 * the same punctuation mark collapsed, then the term map applied.
 */
export function preprocessMeetingText(
  raw: string,
  termMap: Readonly<Record<string, string>> = {},
): { text: string; lang: TextLang } {
  let text = raw.normalize('NFC').replace(INVISIBLE, '');
  text = asciiFromFullWidth(text);
  text = text.replace(/\s+/g, ' ').trim();
  const lang = detectLang(text);
  if (HAN.test(text)) {
    // Twice, because a match consumes the Han character on the right of one space.
    for (let i = 0; i < 2; i++) text = text.replace(/(\p{Script=Han}) (?=\p{Script=Han})/gu, '$1');
    text = text.replace(
      /(\p{Script=Han})\s*([,?!;:])[,?!;:]*\s*/gu,
      (_m, han: string, p: string) => `${han}${HALF_TO_FULL[p] ?? p}`,
    );
    text = text.replace(/(\p{Script=Han})\s*\.(?!\d)\s*/gu, '$1。');
  }
  text = text.replace(/([，。！？；：,!?;])\1+/g, '$1');
  text = applyTermMap(text, termMap).replace(/\s+/g, ' ').trim();
  return { text, lang };
}

/** Cuts `text` to at most `maxBytes` UTF-8 bytes without splitting a character. */
export function cutUtf8(text: string, maxBytes = MAX_SNIPPET_BYTES): string {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  const bytes = Buffer.from(text, 'utf8');
  let end = maxBytes;
  // Step back over continuation bytes (10xxxxxx) to the start of the character that straddles the limit.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}

/** What ingestion stores for a snippet text; empty when nothing is left. */
export function prepareSnippetText(raw: string, termMap: Readonly<Record<string, string>> = {}): string {
  return cutUtf8(preprocessMeetingText(raw, termMap).text);
}

/** Key under which two snippets count as the same text (dedup): case, spaces and punctuation ignored. */
export function dedupKey(text: string): string {
  return text.replace(/[\s\p{P}\p{S}]/gu, '').toLowerCase();
}
