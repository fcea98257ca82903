/**
 * Streaming sentence splitter for TTS, with the reference's first-sentence early split: the first segment of a
 * turn also ends at commas and pauses, so the first audio goes out sooner; later segments end at sentence marks.
 */
const CJK_FIRST = new Set(['，', '~', '～', '、', '。', '？', '！', '；', '：']);
const CJK_LATER = new Set(['。', '？', '！', '；', '：']);
/** ASCII marks end a segment only when followed by white space: "3.5" and "e.g." mid-word stay whole. */
const ASCII_FIRST = new Set([',', '.', '?', '!', ';', ':']);
const ASCII_LATER = new Set(['.', '?', '!', ';', ':']);
/** A first segment shorter than this is not worth its own TTS request. */
const MIN_FIRST_CHARS = 4;

export class SentenceSplitter {
  #buffer = '';
  #emitted = 0;

  /** Adds streamed text; returns the segments it completed. */
  push(delta: string): string[] {
    this.#buffer += delta;
    const out: string[] = [];
    for (;;) {
      const end = this.#boundary();
      if (end < 0) break;
      const seg = this.#buffer.slice(0, end).trim();
      this.#buffer = this.#buffer.slice(end);
      if (hasSpeakable(seg)) {
        out.push(seg);
        this.#emitted++;
      }
    }
    return out;
  }

  /** The rest, at the end of the stream. */
  flush(): string[] {
    const seg = this.#buffer.trim();
    this.#buffer = '';
    if (!hasSpeakable(seg)) return [];
    this.#emitted++;
    return [seg];
  }

  /** Index just past the first segment end in the buffer, or -1. */
  #boundary(): number {
    const first = this.#emitted === 0;
    const cjk = first ? CJK_FIRST : CJK_LATER;
    const ascii = first ? ASCII_FIRST : ASCII_LATER;
    const b = this.#buffer;
    for (let i = 0; i < b.length; i++) {
      const ch = b[i]!;
      let end = -1;
      if (ch === '\n') end = i + 1;
      else if (cjk.has(ch)) end = i + 1;
      else if (ascii.has(ch)) {
        const next = b[i + 1];
        if (next === undefined) return -1; // wait: the next chunk decides
        if (/\s/.test(next)) end = i + 1;
      }
      if (end < 0) continue;
      // A Latin first segment of one short word ("Oh,") is not worth its own TTS request; CJK characters are syllables.
      if (first && ch === ',' && speakableLength(b.slice(0, end)) < MIN_FIRST_CHARS) continue;
      return end;
    }
    return -1;
  }
}

function speakableLength(s: string): number {
  return s.replace(/[\s\p{P}\p{S}]/gu, '').length;
}

function hasSpeakable(s: string): boolean {
  return speakableLength(s) > 0;
}
