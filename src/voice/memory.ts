import type { LinusConfig } from '../config/schema.js';
import type { Logger } from '../observability/log.js';
import type { ProviderRegistry } from '../providers/registry.js';
import type { Scope } from '../session/scope.js';
import type { MemoryStore } from '../store/memory.js';
import type { Dialogue } from './dialogue.js';

const SUMMARY_PROMPT =
  'You keep a short memory of a voice assistant user. Merge the previous memory with the new conversation into at most 8 short bullet points of lasting facts and preferences (names, likes, plans). Answer with the bullet points only.';

/** What a memory save needs, as plain values: the session itself may be gone by the time it runs. */
export interface MemorySaveContext {
  config: LinusConfig;
  deviceId: string;
  log: Logger;
  /** The server's background scope (not the session's, which is closing). */
  background: Scope;
  providers: ProviderRegistry;
  memory: MemoryStore;
}

/**
 * Saves the session's dialogue memory (B7, seed #9): started when the session closes, run on the server's
 * background scope so it never delays the close, and awaited by shutdown so it is never lost.
 */
export function saveMemory(dialogue: Dialogue, ctx: MemorySaveContext): void {
  const { config, deviceId, log, providers } = ctx;
  const memoryType = config.Memory[config.selected_module.Memory]?.type ?? config.selected_module.Memory;
  if (memoryType !== 'mem_local_short') return;
  const transcript = dialogue.transcript();
  if (!transcript) return;
  void ctx.background.run(`memory:${deviceId}`, async (signal) => {
    const route = providers.llmRoute('memory');
    const lease = route.alias ? await providers.lease('llm', route.alias, route.overrides) : undefined;
    if (!lease) {
      log.warn('memory not saved: no LLM for the memory purpose (llm_by_mode.memory or selected_module.LLM)');
      return;
    }
    try {
      const summary = await lease.provider.complete({
        messages: [
          { role: 'system', content: SUMMARY_PROMPT },
          {
            role: 'user',
            content: `Previous memory:\n${dialogue.memory || '(none)'}\n\nNew conversation:\n${transcript}`,
          },
        ],
        signal,
        timeoutMs: 30_000,
        maxTokens: 400,
      });
      if (summary.trim()) await ctx.memory.save(deviceId, summary.trim());
      log.info({ chars: summary.length }, 'dialogue memory saved');
    } finally {
      lease.release();
    }
  });
}
