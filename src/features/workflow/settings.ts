import { z } from 'zod';
import type { LinusConfig } from '../../config/schema.js';

/**
 * The workflow/working config keys (fork §6). The config schema keeps these blocks open, so the feature reads
 * them here, with their defaults in one place. Read on every use (never cached), so a hot reload applies at once.
 * An invalid value falls back to its default rather than breaking the feature.
 */
const workflowBlock = z.looseObject({
  /** Delays the register snapshot by `snapshot_on_register_delay_ms` (seed #10). */
  test_mode: z.boolean().catch(false).default(false),
  snapshot_on_register_delay_ms: z.number().int().min(0).max(60_000).catch(0).default(0),
});

const workingBlock = z.looseObject({
  /** In working mode only placeholder `tts start/stop` go out (the device ignores TTS there anyway). */
  disable_tts: z.boolean().catch(true).default(true),
});

export interface WorkflowSettings {
  testMode: boolean;
  registerDelayMs: number;
  workingDisableTts: boolean;
}

export function workflowSettings(config: LinusConfig): WorkflowSettings {
  const wf = workflowBlock.safeParse(config.workflow ?? {});
  const wk = workingBlock.safeParse(config.working ?? {});
  return {
    testMode: wf.success ? wf.data.test_mode : false,
    registerDelayMs: wf.success ? wf.data.snapshot_on_register_delay_ms : 0,
    workingDisableTts: wk.success ? wk.data.disable_tts : true,
  };
}
