/**
 * transport: the `control` and `idle` profiles in one run (what `npm run bench:transport` ran before they were
 * profiles): ping→pong throughput, then memory per idle connection, each against the bare `ws` server.
 */
import type { Profile, ProfileContext, ProfileResult } from '../lib/profile.js';
import control from './control.js';
import idle from './idle.js';

const profile: Profile = {
  name: 'transport',
  summary: 'control then idle: ping→pong round trips/s and bytes per idle connection, Linus vs bare ws',
  options: { ...control.options, ...idle.options },
  help: { ...control.help, ...idle.help },
  smokeDefaults: { ...control.smokeDefaults, ...idle.smokeDefaults },
  timeoutSec: () => 3600,
  run,
};
export default profile;

async function run(ctx: ProfileContext): Promise<ProfileResult> {
  const startedAt = new Date();
  const c = await control.run(ctx);
  const i = ctx.signal.aborted ? undefined : await idle.run(ctx);
  const parts = i ? [c, i] : [c];
  const failures = parts.flatMap((r) => r.failures ?? []);
  return {
    profile: 'transport',
    command: '',
    startedAt: startedAt.toISOString(),
    durationSec: (Date.now() - startedAt.getTime()) / 1000,
    figures: parts.flatMap((r) => r.figures.map((f) => ({ ...f, name: `${r.profile}: ${f.name}` }))),
    generatorCpuPct: Math.max(...parts.map((r) => r.generatorCpuPct ?? 0)),
    notes: parts.flatMap((r) => (r.notes ?? []).map((n) => `${r.profile}: ${n}`)),
    ok: parts.every((r) => r.ok),
    ...(failures.length ? { failures } : {}),
    details: Object.fromEntries(parts.map((r) => [r.profile, r.details])),
  };
}
