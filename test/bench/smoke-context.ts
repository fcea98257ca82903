/**
 * Runs a bench profile as its smoke test does without the runner: the profile's option defaults with its smoke
 * defaults over them, the server from src/ (tsx), narration on stderr, and an abort signal tied to a deadline so
 * that a hung profile still cleans up its processes and returns.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FlagValues, Profile, ProfileContext, ProfileResult } from '../../bench/lib/profile.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function smokeFlags(profile: Profile, overrides: Record<string, string> = {}): FlagValues {
  const flags: FlagValues = {};
  for (const [name, opt] of Object.entries(profile.options))
    if (opt.default !== undefined) flags[name] = opt.default as string | boolean;
  return { ...flags, ...profile.smokeDefaults, ...overrides };
}

export async function runSmoke(
  profile: Profile,
  deadlineMs: number,
  overrides: Record<string, string> = {},
): Promise<ProfileResult> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new Error(`smoke deadline of ${deadlineMs} ms`)), deadlineMs);
  const ctx: ProfileContext = {
    root: ROOT,
    flags: smokeFlags(profile, overrides),
    smoke: true,
    serverFromSource: true,
    progress: () => {},
    log: (line) => void process.stderr.write(`${profile.name}: ${line}\n`),
    signal: abort.signal,
  };
  try {
    return await profile.run(ctx);
  } finally {
    clearTimeout(timer);
  }
}

/** The failures and the figures, for an assertion message. */
export function explain(r: ProfileResult): string {
  return JSON.stringify(
    {
      failures: r.failures,
      figures: r.figures.map(
        (f) => `${f.name}: ${f.value}${f.target ? ` (target ${f.target}, ${f.met ? 'met' : 'MISSED'})` : ''}`,
      ),
      notes: r.notes,
    },
    null,
    2,
  );
}
