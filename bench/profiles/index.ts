/**
 * The profiles of `linus bench` (bench/run.ts), each loaded only when asked for: a profile's imports (ONNX,
 * Opus, ...) cost nothing to the others.
 */
import type { Profile } from '../lib/profile.js';

type Loader = () => Promise<Profile>;

/** A profile module exports its Profile as default (or as `profile`). */
async function pick(name: string, load: Promise<object>): Promise<Profile> {
  const mod = (await load) as { default?: Profile; profile?: Profile };
  const p = mod.default ?? mod.profile;
  if (!p || typeof p.run !== 'function')
    throw new Error(`bench/profiles/${name}.ts exports no Profile (default export)`);
  return p;
}

export const PROFILES: Record<string, Loader> = {
  talk: () => pick('talk', import('./talk.js')),
  idle: () => pick('idle', import('./idle.js')),
  control: () => pick('control', import('./control.js')),
  peer: () => pick('peer', import('./peer.js')),
  queue: () => pick('queue', import('./queue.js')),
  soak: () => pick('soak', import('./soak.js')),
  transport: () => pick('transport', import('./transport.js')),
  meeting: () => pick('meeting', import('./meeting.js')),
  faults: () => pick('faults', import('./faults.js')),
  storm: () => pick('storm', import('./storm.js')),
  fuzz: () => pick('fuzz', import('./fuzz.js')),
  crash: () => pick('crash', import('./crash.js')),
  bus: () => pick('bus', import('./bus.js')),
  cluster: () => pick('cluster', import('./cluster.js')),
};

export const PROFILE_NAMES = Object.keys(PROFILES);
