/** Window of the snapshot gate (D20, seed #11): fixed, as in the fork. */
export const SNAPSHOT_DEBOUNCE_MS = 1500;

/** What asked for a snapshot; automatic sources go through the gate, the others are answers or changes. */
export type SnapshotSource =
  'register' | 'hello' | 'mode_start' | 'list' | 'pull' | 'command' | 'change' | 'regroup' | 'resync';

/**
 * Through the gate. `resync`: this node may have missed task changes of other nodes (its bus lost broadcasts,
 * D17), so each device gets its group's list again, debounced like the others.
 */
export const AUTOMATIC_SOURCES: ReadonlySet<SnapshotSource> = new Set(['register', 'hello', 'mode_start', 'resync']);

/** Automatic sources of a fresh connection: nothing on its screen to clear, so an empty list is not sent. */
export const FRESH_SOURCES: ReadonlySet<SnapshotSource> = new Set(['register', 'hello', 'mode_start']);

/**
 * The one snapshot gate of a connection (seed #11). Every snapshot that reaches the connection is recorded
 * here, whatever caused it; an automatic trigger (register, hello, mode start) passes only when nothing went
 * out in the last `windowMs`. The fork stamped the time only on mode start, so register and hello were never
 * debounced; here the stamp is taken when a trigger is admitted (before the store is even read), so two
 * triggers in the same tick cannot both pass.
 *
 * Leading edge, not trailing: the first trigger answers at once and the rest of the burst is dropped. Nothing
 * is lost by dropping them, because every change to a group is pushed to its devices outside this gate.
 */
export class SnapshotGate {
  #last: number | undefined;
  #beforeAdmit: number | undefined;

  constructor(
    private readonly windowMs = SNAPSHOT_DEBOUNCE_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** For an automatic trigger: true (and the window restarts) when no snapshot went out within the window. */
  admit(): boolean {
    const t = this.now();
    if (this.#last !== undefined && t - this.#last < this.windowMs) return false;
    this.#beforeAdmit = this.#last;
    this.#last = t;
    return true;
  }

  /**
   * Gives back an admission that sent nothing (the list was empty): the window is as if the trigger never came.
   * Does nothing when another snapshot was recorded since.
   */
  release(admittedAt: number): void {
    if (this.#last === admittedAt) this.#last = this.#beforeAdmit;
  }

  /** Records a snapshot sent outside the debounce (an answer the caller asked for, a change push). */
  record(): void {
    this.#last = this.now();
  }

  get lastAt(): number | undefined {
    return this.#last;
  }
}
