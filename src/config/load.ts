import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { makeDirs } from '../dirs.js';
import { errorCode, errorMessage } from '../errors.js';
import { configSchema, type LinusConfig } from './schema.js';

export class ConfigError extends Error {
  constructor(
    message: string,
    /** Dotted key path of the offending value, when one is known. */
    readonly keyPath?: string,
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface ValidatedConfig {
  config: LinusConfig;
  /** One line per unknown key, e.g. `unknown key server.prot (ignored)`. */
  warnings: string[];
}

/** Validates a raw (parsed YAML) object. Throws ConfigError naming the key path of the first invalid value. */
export function validateConfig(raw: unknown): ValidatedConfig {
  const input = raw ?? {};
  if (typeof input !== 'object' || Array.isArray(input))
    throw new ConfigError('config must be a YAML mapping at the top level');
  const checked = checkConfig(input);
  if (!checked.ok) {
    const [first] = checked.errors;
    throw new ConfigError(`invalid value at ${first.path || '(root)'}: ${first.message}`, first.path || undefined);
  }
  return checked.value;
}

export interface ConfigIssue {
  /** Dotted key path; empty for the root. */
  path: string;
  message: string;
}

/** Validates a whole config and reports every problem with its key path (validateConfig throws the first). */
export function checkConfig(
  raw: unknown,
): { ok: true; value: ValidatedConfig } | { ok: false; errors: [ConfigIssue, ...ConfigIssue[]] } {
  const input = raw ?? {};
  if (typeof input !== 'object' || Array.isArray(input))
    return { ok: false, errors: [{ path: '', message: 'config must be a YAML mapping at the top level' }] };
  const result = configSchema.safeParse(dropUnsetNulls(configSchema, input));
  if (!result.success) {
    const issues = result.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
    return {
      ok: false,
      errors: issues.length ? (issues as [ConfigIssue, ...ConfigIssue[]]) : [{ path: '', message: 'invalid' }],
    };
  }
  return { ok: true, value: { config: deepFreeze(result.data), warnings: unknownKeys(configSchema, input, []) } };
}

/** Reads and validates a YAML config file. A missing file is created with the defaults, commented out, when asked. */
export function loadConfigFile(
  path: string,
  options: { createIfMissing?: boolean; defaultsIfMissing?: boolean } = {},
): ValidatedConfig {
  if (!existsSync(path)) {
    if (options.defaultsIfMissing) return validateConfig({});
    if (!options.createIfMissing) throw new ConfigError(`config file not found: ${path}`);
    try {
      writeDefaultConfig(path);
    } catch (err) {
      const code = errorCode(err) ?? 'error';
      throw new ConfigError(
        `cannot create ${path} (${code}): the data dir is not writable; choose another with --data-dir or LINUS_DATA_DIR`,
        '--data-dir',
      );
    }
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${errorMessage(err)}`);
  }
  return validateConfig(parseConfigText(text, path));
}

export function parseConfigText(text: string, origin = 'config'): unknown {
  try {
    return parseYaml(text) ?? {};
  } catch (err) {
    if (err instanceof YAMLParseError) {
      const pos = err.linePos?.[0];
      const where = pos ? ` at line ${pos.line}, column ${pos.col}` : '';
      // The library's message repeats the position; keep only the reason.
      const reason = (err.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
      throw new ConfigError(`${origin}: YAML syntax error${where}: ${reason}`);
    }
    throw new ConfigError(`${origin}: ${errorMessage(err)}`);
  }
}

/** The embedded defaults, as the schema table produces them. */
export function defaultConfig(): LinusConfig {
  return validateConfig({}).config;
}

function writeDefaultConfig(path: string): void {
  makeDirs(dirname(path));
  // Every line commented out: the schema stays the one table of defaults, and a later release's
  // defaults are not frozen into this file. Uncomment what you change.
  const body = stringifyYaml(defaultConfig())
    .split('\n')
    .map((line) => (line.length ? `# ${line}` : line))
    .join('\n');
  const header = [
    '# Linus configuration. Every key below shows its default; uncomment and edit what you want to change.',
    "# The reference server's config.yaml layout is accepted as is. `linus check-config` prints the effective config.",
    '',
  ].join('\n');
  writeFileSync(path, `${header}\n${body}`, { flag: 'wx' });
}

/** Lists keys of `raw` that the schema does not know, walking nested objects. Free-form blocks are not walked. */
function unknownKeys(schema: z.ZodType, raw: unknown, path: string[]): string[] {
  const shape = objectShape(schema);
  if (!shape || raw === null || typeof raw !== 'object' || Array.isArray(raw)) return [];
  const warnings: string[] = [];
  for (const [key, value] of Object.entries(raw)) {
    const child = shape[key];
    const keyPath = [...path, key];
    if (!child) warnings.push(`unknown key ${keyPath.join('.')} (ignored)`);
    else warnings.push(...unknownKeys(child, value, keyPath));
  }
  return warnings;
}

/**
 * The reference writes `key: null` for a setting it leaves unset (`server.mqtt_gateway: null`...). Wherever the
 * schema lets a key be left out (optional, or with a default), a null there means just that: the key is dropped
 * before validation, so its default applies. Nested blocks are walked; free-form blocks belong to their owners
 * (provider blocks read null as unset, see providers/block.ts).
 */
function dropUnsetNulls(schema: z.ZodType, raw: unknown): unknown {
  const shape = objectShape(schema);
  if (!shape || raw === null || typeof raw !== 'object' || Array.isArray(raw)) return raw;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    const child = shape[key];
    // Zod's own test of "may be left out" (what its deprecated isOptional() does).
    if (value === null && child?.safeParse(undefined).success) continue;
    out[key] = child ? dropUnsetNulls(child, value) : value;
  }
  return out;
}

type ZodInternals = { _zod: { def: { type: string; innerType?: z.ZodType; shape?: Record<string, z.ZodType> } } };

/** The keys of an object schema, looking through optional/default/prefault wrappers. */
export function objectShape(schema: z.ZodType): Record<string, z.ZodType> | undefined {
  let s = schema as unknown as ZodInternals;
  for (let i = 0; i < 10; i++) {
    const def = s._zod.def;
    if (def.type === 'object') return def.shape;
    if (!def.innerType) return undefined;
    s = def.innerType as unknown as ZodInternals;
  }
  return undefined;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

const SECRET_KEY = /(secret|api[_-]?key|token|password|passwd|auth_key|private|access[_-]?key)/i;

/** A copy of the config with every secret-looking value replaced, for printing and logging. */
export function redactConfig(value: unknown, key = ''): unknown {
  if (Array.isArray(value)) return value.map((v) => redactConfig(v, key));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactConfig(v, k)]));
  }
  if (SECRET_KEY.test(key) && typeof value === 'string' && value.length > 0) return '***';
  // `cluster.postgres_url: postgres://user:password@host/db`: the password goes, the rest helps the operator.
  if (key.endsWith('_url') && typeof value === 'string' && value.includes('@')) return redactUrl(value);
  return value;
}

/** `postgres://user:***@host/db`: a URL fit for logs and error lines. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    // Not a URL we can read: say nothing of what it holds.
    return '(unparsable URL)';
  }
}
