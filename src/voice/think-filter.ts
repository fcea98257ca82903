/**
 * Removes `<think>…</think>` blocks from streamed model text. Reasoning models put their private reasoning
 * there, and it must never be spoken. Tags may be split across chunks, so a possible partial tag at the end
 * of a chunk is held back until the next chunk shows whether it really is one.
 */
const OPEN = '<think>';
const CLOSE = '</think>';

export class ThinkFilter {
  #inThink = false;
  #held = '';

  /** Feeds one chunk; returns the text that is certainly outside any think block ('' when none yet). */
  push(chunk: string): string {
    let s = this.#held + chunk;
    this.#held = '';
    let out = '';
    for (;;) {
      const tag = this.#inThink ? CLOSE : OPEN;
      const at = s.indexOf(tag);
      if (at >= 0) {
        if (!this.#inThink) out += s.slice(0, at);
        s = s.slice(at + tag.length);
        this.#inThink = !this.#inThink;
        continue;
      }
      const keep = partialTagLength(s, tag);
      if (!this.#inThink) out += s.slice(0, s.length - keep);
      this.#held = s.slice(s.length - keep);
      return out;
    }
  }

  /** End of the stream: a held partial `<think` outside a block was plain text after all; an unclosed block is dropped. */
  end(): string {
    const rest = this.#inThink ? '' : this.#held;
    this.#held = '';
    this.#inThink = false;
    return rest;
  }
}

/** Removes think blocks from a complete text. */
export function stripThink(text: string): string {
  const f = new ThinkFilter();
  return f.push(text) + f.end();
}

/** Length of the longest suffix of `s` that is a proper prefix of `tag`. */
function partialTagLength(s: string, tag: string): number {
  for (let n = Math.min(s.length, tag.length - 1); n > 0; n--) {
    if (s.endsWith(tag.slice(0, n))) return n;
  }
  return 0;
}
