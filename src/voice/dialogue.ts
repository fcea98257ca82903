import type { ChatMessage } from '../providers/types.js';

/**
 * The dialogue of one session: system prompt (with the device's remembered summary) plus a capped history.
 * Tool exchanges stay paired: trimming never leaves a tool result without the call that asked for it.
 */
export class Dialogue {
  #history: ChatMessage[] = [];

  constructor(
    private readonly maxMessages = 20,
    public memory = '',
  ) {}

  get history(): readonly ChatMessage[] {
    return this.#history;
  }

  add(message: ChatMessage): void {
    this.#history.push(message);
    while (this.#history.length > this.maxMessages) {
      this.#history.shift();
      // Never start the kept history with a tool result or an assistant tool call cut from its pair.
      while (this.#history[0] && this.#history[0].role !== 'user') this.#history.shift();
    }
  }

  /** Messages for one LLM request. */
  messages(prompt: string, extra: ChatMessage[] = []): ChatMessage[] {
    const system = this.memory
      ? `${prompt}\n\nWhat you remember about this user from earlier conversations:\n${this.memory}`
      : prompt;
    return [{ role: 'system', content: system }, ...this.#history, ...extra];
  }

  /** Plain user/assistant lines, for the memory summary. */
  transcript(): string {
    return this.#history
      .filter((m) => (m.role === 'user' || m.role === 'assistant') && typeof m.content === 'string' && m.content)
      .map((m) => `${m.role}: ${m.content as string}`)
      .join('\n');
  }
}
