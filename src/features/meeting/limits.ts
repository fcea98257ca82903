/**
 * The fixed ingestion limits of the fork (fork-contracts §6 "fixed constants") and the two small pure structures
 * that enforce them: a de-duplication window per meeting and a snippet rate window per connection.
 */

/** A text seen again within this window is a duplicate. */
export const DEDUP_WINDOW_MS = 60_000;
/** Snippets per connection per second; more are refused. */
export const SNIPPETS_PER_SECOND = 10;
/** Pending (not yet merged) snippets per meeting; reaching it merges them into segments at once. */
export const PENDING_CAP = 200;
/** Segments carried by the final transcript. */
export const FINAL_TRANSCRIPT_SEGMENTS = 50;
/** Most segments one periodic transcript push carries (the device caches 50). */
export const PUSH_MAX_ITEMS = 50;

/**
 * Texts seen in the last `windowMs`, by key. Bounded: beyond `maxKeys` the oldest keys go first, so a flood of
 * distinct texts cannot grow it without limit.
 */
export class DedupWindow {
  #seen = new Map<string, number>();

  constructor(
    readonly windowMs = DEDUP_WINDOW_MS,
    readonly maxKeys = 5000,
  ) {}

  /** True when `key` was seen within the window; either way it is recorded as seen `now`. */
  check(key: string, now: number): boolean {
    this.#expire(now);
    const last = this.#seen.get(key);
    const duplicate = last !== undefined && now - last < this.windowMs;
    // Re-inserting keeps the map ordered by last sight, so expiry only looks at the head.
    this.#seen.delete(key);
    this.#seen.set(key, now);
    if (this.#seen.size > this.maxKeys) this.#seen.delete(this.#seen.keys().next().value as string);
    return duplicate;
  }

  /** Records a text seen at `ts` (seeding after a restart) without asking. */
  remember(key: string, ts: number): void {
    const last = this.#seen.get(key);
    if (last !== undefined && last >= ts) return;
    this.#seen.delete(key);
    this.#seen.set(key, ts);
  }

  /** Undoes `check` for a text that could not be stored after all. */
  forget(key: string, ts: number): void {
    if (this.#seen.get(key) === ts) this.#seen.delete(key);
  }

  get size(): number {
    return this.#seen.size;
  }

  #expire(now: number): void {
    for (const [key, ts] of this.#seen) {
      if (now - ts < this.windowMs) break;
      this.#seen.delete(key);
    }
  }
}
