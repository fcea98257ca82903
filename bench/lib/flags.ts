/**
 * Reading a profile's flags (already parsed by the runner with node:util parseArgs): numbers in a range, lists,
 * one-of choices. A bad value throws FlagError, which the runner prints with the profile's usage (exit 2).
 */
import { parse as parseYaml } from 'yaml';
import type { FlagValues, ProfileOptions } from './profile.js';

export class FlagError extends Error {}

const raw = (flags: FlagValues, name: string): string => String(flags[name] ?? '');

/** A number in min..max. */
export function num(flags: FlagValues, name: string, min: number, max: number, value = raw(flags, name)): number {
  const v = Number(value);
  if (value.trim() === '' || !Number.isFinite(v) || v < min || v > max)
    throw new FlagError(`--${name} must be a number in ${min}..${max}, got "${value}"`);
  return v;
}

/** An integer in min..max. */
export function int(flags: FlagValues, name: string, min: number, max: number, value = raw(flags, name)): number {
  const v = num(flags, name, min, max, value);
  if (!Number.isInteger(v)) throw new FlagError(`--${name} must be an integer, got "${value}"`);
  return v;
}

/** A comma-separated list of integers, each in min..max. */
export function intList(flags: FlagValues, name: string, min: number, max: number): number[] {
  const items = raw(flags, name)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!items.length) throw new FlagError(`--${name} needs at least one value`);
  return items.map((s) => int(flags, name, min, max, s));
}

export function oneOf<T extends string>(flags: FlagValues, name: string, allowed: readonly T[]): T {
  const v = raw(flags, name);
  if (!allowed.includes(v as T)) throw new FlagError(`--${name} must be one of ${allowed.join(', ')}, got "${v}"`);
  return v as T;
}

export const onOff = (flags: FlagValues, name: string): boolean => oneOf(flags, name, ['on', 'off'] as const) === 'on';

/** Flags every profile that starts a server takes. */
export const SERVER_OPTIONS = {
  pin: { type: 'string', default: 'on' },
  'server-node-args': { type: 'string', default: '' },
} as const satisfies ProfileOptions;

/** For the voice profiles: server settings to measure with (worker threads, codec complexity...). */
export const SERVER_SET_OPTIONS = {
  'server-set': { type: 'string', default: '' },
} as const satisfies ProfileOptions;

export const SERVER_HELP: Record<keyof typeof SERVER_OPTIONS, string> = {
  pin: 'on|off: server on CPU 0, load generators on the other CPUs, with taskset',
  'server-node-args':
    'extra node flags for the server (note the =), e.g. --server-node-args="--cpu-prof --cpu-prof-dir=/tmp/prof"',
};

export const SERVER_SET_HELP: Record<keyof typeof SERVER_SET_OPTIONS, string> = {
  'server-set':
    'server config values for this run, comma-separated path=value, e.g. server.audio_workers=2,server.opus_complexity=3',
};

/** `--server-set a.b=1,c=x` → { a: { b: 1 }, c: 'x' } (values read as YAML scalars). */
export function serverSettings(flags: FlagValues): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const item of raw(flags, 'server-set')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new FlagError(`--server-set: "${item}" is not path=value`);
    const path = item.slice(0, eq).split('.');
    let node = out;
    for (const key of path.slice(0, -1)) node = (node[key] ??= {}) as Record<string, unknown>;
    node[path.at(-1)!] = parseYaml(item.slice(eq + 1)) as unknown;
  }
  return out;
}

export const serverNodeArgs = (flags: FlagValues): string[] =>
  raw(flags, 'server-node-args').split(/\s+/).filter(Boolean);
