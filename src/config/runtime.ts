import { resolve } from 'node:path';
import { ConfigError, loadConfigFile, validateConfig, type ValidatedConfig } from './load.js';

/** Where the process reads its config and keeps its data, and the command-line/env overrides. */
export interface RuntimeOptions {
  dataDir: string;
  configPath: string;
  /** True when the config path is the default one (it is then created on first start). */
  defaultConfigPath: boolean;
  port?: number;
  host?: string;
  /** LINUS_DATABASE_URL: `cluster.postgres_url`. */
  postgresUrl?: string;
  /** LINUS_REDIS_URL: `cluster.redis_url`. */
  redisUrl?: string;
}

export interface CliFlags {
  config?: string;
  dataDir?: string;
  port?: string | number;
  host?: string;
}

/** Precedence: command-line flag > LINUS_* environment variable > config file > schema default. */
export function resolveRuntimeOptions(flags: CliFlags, env: NodeJS.ProcessEnv, cwd = process.cwd()): RuntimeOptions {
  const dataDir = resolve(cwd, flags.dataDir ?? env.LINUS_DATA_DIR ?? 'data');
  const explicitConfig = flags.config ?? env.LINUS_CONFIG;
  const opts: RuntimeOptions = {
    dataDir,
    configPath: explicitConfig ? resolve(cwd, explicitConfig) : resolve(dataDir, 'config.yaml'),
    defaultConfigPath: !explicitConfig,
  };
  const port = flags.port ?? env.LINUS_PORT;
  if (port !== undefined && port !== '')
    opts.port = parsePort(port, flags.port !== undefined ? '--port' : 'LINUS_PORT');
  const host = flags.host ?? env.LINUS_HOST;
  if (host) opts.host = host;
  if (env.LINUS_DATABASE_URL) opts.postgresUrl = env.LINUS_DATABASE_URL;
  if (env.LINUS_REDIS_URL) opts.redisUrl = env.LINUS_REDIS_URL;
  return opts;
}

function parsePort(value: string | number, origin: string): number {
  const n = typeof value === 'number' ? value : /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new ConfigError(`${origin} must be a port number 0-65535, got "${value}"`, 'server.port');
  return n;
}

/** Loads the config file and applies the port/host overrides, validating the result as a whole. */
export function loadEffectiveConfig(opts: RuntimeOptions, mode: 'serve' | 'read' = 'serve'): ValidatedConfig {
  // Serving creates the default file on first start; read-only commands (check-config, token) never write.
  const loaded = loadConfigFile(
    opts.configPath,
    mode === 'serve' ? { createIfMissing: opts.defaultConfigPath } : { defaultsIfMissing: opts.defaultConfigPath },
  );
  return applyOverrides(loaded, opts);
}

export function applyOverrides(
  loaded: ValidatedConfig,
  opts: Pick<RuntimeOptions, 'port' | 'host' | 'postgresUrl' | 'redisUrl'>,
): ValidatedConfig {
  if (opts.port === undefined && opts.host === undefined && !opts.postgresUrl && !opts.redisUrl) return loaded;
  const server = {
    ...loaded.config.server,
    ...(opts.port !== undefined ? { port: opts.port } : {}),
    ...(opts.host ? { ip: opts.host } : {}),
  };
  const cluster = {
    ...loaded.config.cluster,
    ...(opts.postgresUrl ? { postgres_url: opts.postgresUrl } : {}),
    ...(opts.redisUrl ? { redis_url: opts.redisUrl } : {}),
  };
  const { config } = validateConfig({
    ...structuredClone(loaded.config),
    server: structuredClone(server),
    cluster: structuredClone(cluster),
  });
  return { config, warnings: loaded.warnings };
}
