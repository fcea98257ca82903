import { Command } from 'commander';
import { stringify as stringifyYaml } from 'yaml';
import { ConfigError, redactConfig } from '../config/load.js';
import { loadEffectiveConfig, resolveRuntimeOptions, type CliFlags } from '../config/runtime.js';
import { signDeviceToken } from '../protocol/auth-token.js';
import { normalizeId } from '../protocol/ids.js';
import { startServer, StartupError } from '../server.js';
import { ActivationStore } from '../store/activation.js';
import { openDatabase } from '../store/sqlite.js';
import { VERSION } from '../version.js';

/** One line on stderr and a non-zero exit: what an operator needs, nothing more (D15). */
function fail(err: unknown): never {
  const msg = err instanceof StartupError || err instanceof ConfigError ? err.message : err instanceof Error ? err.message : String(err);
  process.stderr.write(`linus: ${msg}\n`);
  process.exit(1);
}

const withConfigFlags = (cmd: Command): Command =>
  cmd
    .option('-c, --config <file>', 'config file (default: <data-dir>/config.yaml, env LINUS_CONFIG)')
    .option('-d, --data-dir <dir>', 'data directory (default: ./data, env LINUS_DATA_DIR)');

async function serve(flags: CliFlags): Promise<void> {
  let server;
  try {
    const opts = resolveRuntimeOptions(flags, process.env);
    const loaded = loadEffectiveConfig(opts);
    server = await startServer({ config: loaded, dataDir: opts.dataDir, configPath: opts.configPath });
  } catch (err) {
    fail(err);
  }
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      process.stderr.write(`linus: second ${sig}, exiting now\n`);
      process.exit(1);
    }
    void server.close(sig).then(
      () => process.exit(0),
      (err) => fail(err),
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

function checkConfig(flags: CliFlags): void {
  try {
    const opts = resolveRuntimeOptions(flags, process.env);
    const { config, warnings } = loadEffectiveConfig(opts);
    for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
    process.stdout.write(`# effective config from ${opts.configPath} (secrets redacted)\n`);
    process.stdout.write(stringifyYaml(redactConfig(config)));
  } catch (err) {
    fail(err);
  }
}

function activate(code: string, flags: CliFlags): void {
  try {
    const opts = resolveRuntimeOptions(flags, process.env);
    const db = openDatabase(opts.dataDir);
    const rec = new ActivationStore(db).activateByCode(code);
    db.close();
    if (!rec) fail(`no device is waiting with code ${code}`);
    process.stdout.write(`activated ${rec.deviceId}\n`);
  } catch (err) {
    fail(err);
  }
}

function token(deviceId: string, clientId: string | undefined, flags: CliFlags): void {
  try {
    const opts = resolveRuntimeOptions(flags, process.env);
    const { config } = loadEffectiveConfig(opts);
    const key = config.server.auth_key || config['manager-api'].secret;
    if (!key) fail('set server.auth_key in the config first: tokens are signed with it');
    const dev = normalizeId(deviceId);
    if (!dev) fail('device id is empty');
    process.stdout.write(`${signDeviceToken(key, normalizeId(clientId) ?? dev, dev, Date.now() / 1000)}\n`);
  } catch (err) {
    fail(err);
  }
}

export function main(argv: string[]): void {
  const program = new Command('linus').version(VERSION).description('Linus: a server for xiaozhi voice-assistant devices');
  withConfigFlags(program.command('serve').description('start the server'))
    .option('-p, --port <n>', 'port (env LINUS_PORT; config server.port)')
    .option('-H, --host <host>', 'address to bind (env LINUS_HOST; config server.ip)')
    .action((flags: CliFlags) => serve(flags));
  withConfigFlags(program.command('check-config').description('validate the config and print the effective values, secrets redacted')).action(
    (flags: CliFlags) => checkConfig(flags),
  );
  withConfigFlags(program.command('activate <code>').description('activate the device waiting with this 6-digit code')).action(
    (code: string, flags: CliFlags) => activate(code, flags),
  );
  withConfigFlags(program.command('token <device-id> [client-id]').description('print a device token (server.auth_key must be set)')).action(
    (deviceId: string, clientId: string | undefined, flags: CliFlags) => token(deviceId, clientId, flags),
  );
  program.parseAsync(argv).catch(fail);
}
