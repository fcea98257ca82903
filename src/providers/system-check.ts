import type { LinusConfig } from '../config/schema.js';
import type { Logger } from '../observability/log.js';
import { findExecutable, missingPackageHint } from './system-tools.js';

/** Provider types that spawn a Debian tool, and the tool. */
const TOOLS: Record<string, string> = {
  pocketsphinx: 'pocketsphinx_continuous',
  flite: 'flite',
  espeak: 'espeak-ng',
  'espeak-ng': 'espeak-ng',
};

/**
 * At start-up, tells the operator which selected offline engine is missing and how to add it. The server
 * starts anyway: everything else works, and that provider reports the same hint when a turn needs it.
 */
export async function checkSystemTools(config: LinusConfig, log: Logger): Promise<string[]> {
  const missing: string[] = [];
  for (const [section, alias] of [
    ['ASR', config.selected_module.ASR],
    ['TTS', config.selected_module.TTS],
  ] as const) {
    const block = config[section][alias];
    const type = block?.type;
    const override = (block as { binary?: unknown } | undefined)?.binary;
    const tool = typeof override === 'string' && override ? override : type ? TOOLS[type] : undefined;
    if (!tool || (await findExecutable(tool))) continue;
    const hint = `${section} ${alias} needs ${tool}, which is not installed: run \`sudo apt-get install ${missingPackageHint(tool)}\` (or \`npm start\`, which installs it)`;
    missing.push(hint);
    log.warn(hint);
  }
  return missing;
}
