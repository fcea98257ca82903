import { EventEmitter } from 'node:events';
import type { LinusConfig } from './schema.js';

/**
 * Holds the immutable config snapshot in force. Code reads `current` when it needs a value, never copies
 * config into long-lived fields, so a swap is seen everywhere at once.
 */
export class ConfigStore extends EventEmitter<{ change: [next: LinusConfig, previous: LinusConfig] }> {
  #current: LinusConfig;

  constructor(initial: LinusConfig) {
    super();
    this.#current = initial;
  }

  get current(): LinusConfig {
    return this.#current;
  }

  replace(next: LinusConfig): void {
    const previous = this.#current;
    this.#current = next;
    this.emit('change', next, previous);
  }
}
