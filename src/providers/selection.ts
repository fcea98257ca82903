import type { LinusConfig } from '../config/schema.js';
import { asrTypes } from './asr/index.js';
import { vadTypes } from './factories.js';
import { llmTypes } from './llm/index.js';
import { ttsTypes } from './tts/index.js';

/** The provider types each section accepts, from the factories' own tables. */
const TYPES = { VAD: vadTypes, ASR: asrTypes, LLM: llmTypes, TTS: ttsTypes } as const;

export interface SelectionProblem {
  /** The key to change, e.g. `selected_module.LLM`. */
  key: string;
  message: string;
}

/**
 * What `selected_module` names that no device could use: an alias without a block in its section, or a block whose
 * `type` no provider implements. Found at start-up and by check-config rather than when the first device talks.
 * An empty alias selects nothing and is fine (no LLM yet). Blocks that are not selected are not checked.
 */
export function selectionProblems(config: LinusConfig): SelectionProblem[] {
  const problems: SelectionProblem[] = [];
  for (const [section, types] of Object.entries(TYPES) as [keyof typeof TYPES, readonly string[]][]) {
    const alias = config.selected_module[section];
    if (!alias) continue;
    const key = `selected_module.${section}`;
    const blocks = config[section];
    const block = blocks[alias];
    if (!block) {
      const defined = Object.keys(blocks);
      problems.push({
        key,
        message: `${key} is "${alias}", but ${section} has no block named ${alias} (${defined.length ? `defined: ${defined.join(', ')}` : 'none is defined'})`,
      });
      continue;
    }
    const type = String(block.type ?? '').toLowerCase();
    if (!types.includes(type))
      problems.push({
        key,
        message: `${key} is "${alias}", whose type ${type ? `"${type}"` : '(missing)'} is not supported: set ${section}.${alias}.type to one of ${types.join(', ')}`,
      });
  }
  return problems;
}

/** With a manager API the modules come from it: its config is checked as it arrives (a failed check keeps the old). */
export function localSelectionError(config: LinusConfig): { key: string; message: string } | undefined {
  return config['manager-api'].url ? undefined : selectionError(config);
}

/** The problems as one error naming the first key to change, or undefined when there are none. */
export function selectionError(config: LinusConfig): { key: string; message: string } | undefined {
  const problems = selectionProblems(config);
  if (!problems.length) return undefined;
  return { key: problems[0]!.key, message: problems.map((p) => p.message).join('; ') };
}
