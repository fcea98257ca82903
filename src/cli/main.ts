import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { stringify as stringifyYaml } from 'yaml';
import { redactConfig } from '../config/load.js';
import { loadEffectiveConfig, resolveRuntimeOptions, type CliFlags } from '../config/runtime.js';
import { errorMessage } from '../errors.js';
import { signDeviceToken } from '../protocol/auth-token.js';
import { localSelectionError } from '../providers/selection.js';
import { normalizeId } from '../protocol/ids.js';
import { startServer, type LinusServer } from '../server.js';
import { pgCoreStores, sqliteCoreStores, storeMode, type CoreStores } from '../store/compose.js';
import { migratePg } from '../store/postgres/migrations.js';
import { connectPg } from '../store/postgres/pool.js';
import { openDatabase } from '../store/sqlite.js';
import { VERSION } from '../version.js';
import { migrateCommand } from './migrate.js';
import { drainWithin, restartProcess } from './restart.js';
import { simulate } from './simulate.js';

/** One line on stderr and a non-zero exit: what an operator needs, nothing more (D15). */
function fail(err: unknown): never {
  process.stderr.write(`linus: ${errorMessage(err)}\n`);
  process.exit(1);
}

const withConfigFlags = (cmd: Command): Command =>
  cmd
    .option('-c, --config <file>', 'config file (default: <data-dir>/config.yaml, env LINUS_CONFIG)')
    .option('-d, --data-dir <dir>', 'data directory (default: ./data, env LINUS_DATA_DIR)');

async function serve(flags: CliFlags & { supervised?: boolean }): Promise<void> {
  let server: LinusServer;
  let logFile = '';
  const supervised = !!flags.supervised || process.env.LINUS_SUPERVISED === '1';
  try {
    const opts = resolveRuntimeOptions(flags, process.env);
    const loaded = loadEffectiveConfig(opts);
    const configured = loaded.config.log.log_file;
    logFile = configured ? resolve(opts.dataDir, configured) : join(opts.dataDir, 'linus.log');
    server = await startServer({
      config: loaded,
      dataDir: opts.dataDir,
      configPath: opts.configPath,
      reload: {
        configPath: opts.configPath,
        watch: loaded.config.server.watch_config,
        ...(opts.port !== undefined ? { port: opts.port } : {}),
        ...(opts.host ? { host: opts.host } : {}),
        ...(opts.postgresUrl ? { postgresUrl: opts.postgresUrl } : {}),
        ...(opts.redisUrl ? { redisUrl: opts.redisUrl } : {}),
      },
      onRestart: () => void restartProcess(server, { supervised, logFile }).catch(fail),
      bindRetryMs: Number(process.env.LINUS_BIND_RETRY_MS) || 0,
      warmAudio: true,
    });
  } catch (err) {
    fail(err);
  }
  process.on('SIGHUP', () => void server.reload('signal'));
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      process.stderr.write(`linus: second ${sig}, exiting now\n`);
      process.exit(1);
    }
    stopThenExit(server, sig);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

/** Drains the server and exits: 0 when the drain finished, 1 when a close hung past its budget. */
function stopThenExit(server: LinusServer, reason: string): void {
  drainWithin(server, reason).then(
    (drained) => process.exit(drained ? 0 : 1),
    (err) => fail(err),
  );
}

function checkConfig(flags: CliFlags): void {
  try {
    const opts = resolveRuntimeOptions(flags, process.env);
    const { config, warnings } = loadEffectiveConfig(opts, 'read');
    for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
    process.stdout.write(`# effective config from ${opts.configPath} (secrets redacted)\n`);
    process.stdout.write(stringifyYaml(redactConfig(config)));
    // Printed first, so that the effective values are there to read next to what is wrong with them.
    const selection = localSelectionError(config);
    if (selection) fail(selection.message);
  } catch (err) {
    fail(err);
  }
}

async function migrate(flags: CliFlags & { fromSqlite?: string }): Promise<void> {
  try {
    const opts = resolveRuntimeOptions(flags, process.env);
    const { config } = loadEffectiveConfig(opts, 'read');
    await migrateCommand(config, { fromSqlite: flags.fromSqlite, print: (l) => process.stdout.write(`${l}\n`) });
  } catch (err) {
    fail(err);
  }
}

/**
 * Opens the activation and binding stores the server of these flags uses (the data dir's SQLite file, or in cluster
 * mode the cluster's PostgreSQL), runs `use`, closes them; failures end the command.
 */
async function withCoreStores<T>(flags: CliFlags, use: (stores: CoreStores) => Promise<T>): Promise<T> {
  try {
    const opts = resolveRuntimeOptions(flags, process.env);
    const { config } = loadEffectiveConfig(opts, 'read');
    if (storeMode(config) === 'cluster') {
      const pg = await connectPg({ url: config.cluster.postgres_url, max: 2 }).catch((err: unknown) => {
        throw new Error(`${errorMessage(err)}; check cluster.postgres_url (or LINUS_DATABASE_URL)`, { cause: err });
      });
      try {
        await migratePg(pg);
        return await use(pgCoreStores(pg));
      } finally {
        await pg.close();
      }
    }
    const db = openDatabase(opts.dataDir);
    try {
      return await use(sqliteCoreStores(db));
    } finally {
      db.close();
    }
  } catch (err) {
    fail(err);
  }
}

async function activate(code: string, flags: CliFlags): Promise<void> {
  const rec = await withCoreStores(flags, (s) => s.activations.activateByCode(code));
  if (!rec) fail(`no device is waiting with code ${code}`);
  process.stdout.write(`activated ${rec.deviceId}\n`);
}

async function listBindings(flags: CliFlags): Promise<void> {
  const rows = await withCoreStores(flags, (s) => s.bindings.list());
  if (!rows.length) process.stdout.write('no device is bound to a client id yet\n');
  for (const b of rows) process.stdout.write(`${b.deviceId}\t${b.clientId}\t${new Date(b.boundAt).toISOString()}\n`);
}

async function rebind(deviceId: string, clientId: string | undefined, flags: CliFlags): Promise<void> {
  const dev = normalizeId(deviceId);
  if (!dev) fail('device id is empty');
  const client = clientId === undefined ? undefined : normalizeId(clientId);
  if (clientId !== undefined && !client) fail('client id is empty');
  const before = await withCoreStores(flags, (s) => s.bindings.rebind(dev, client));
  const was = before ? ` (was ${before.clientId})` : ' (it was not bound)';
  process.stdout.write(
    client
      ? `${dev} is now bound to client ${client}${was}\n`
      : `${dev} is free: the next client that obtains a token owns it${was}\n`,
  );
}

function token(deviceId: string, clientId: string | undefined, flags: CliFlags): void {
  try {
    const opts = resolveRuntimeOptions(flags, process.env);
    const { config } = loadEffectiveConfig(opts, 'read');
    const key = config.server.auth_key || config['manager-api'].secret;
    if (!key) fail('set server.auth_key in the config first: tokens are signed with it');
    const dev = normalizeId(deviceId);
    if (!dev) fail('device id is empty');
    process.stdout.write(`${signDeviceToken(key, normalizeId(clientId) ?? dev, dev, Date.now() / 1000)}\n`);
  } catch (err) {
    fail(err);
  }
}

/**
 * `linus bench ...`: the benchmark runner (bench/run.ts, TypeScript through tsx) from the package root, with the
 * same arguments and its exit code. Only a checkout with dev dependencies has it.
 */
function bench(args: string[]): void {
  // src/cli/ or dist/cli/: the package root is two levels up either way.
  const root = fileURLToPath(new URL('../..', import.meta.url));
  if (!existsSync(join(root, 'bench', 'run.ts')) || !existsSync(join(root, 'node_modules', 'tsx', 'package.json'))) {
    process.stderr.write(
      'linus: bench needs a source checkout with dev dependencies (bench/ and tsx are missing here: git clone, then npm install)\n',
    );
    process.exit(2);
  }
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args], { cwd: root, stdio: 'inherit' });
  // Ctrl-C reaches the runner too (same process group): it stops its profile and children, and we wait for it.
  process.on('SIGINT', () => {});
  for (const sig of ['SIGTERM', 'SIGHUP'] as const) process.on(sig, () => child.kill(sig));
  child.on('error', (err) => fail(err));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + 2 : 1)));
}

export function main(argv: string[]): void {
  const program = new Command('linus')
    .version(VERSION)
    .description('Linus: a server for xiaozhi voice-assistant devices');
  withConfigFlags(program.command('serve').description('start the server'))
    .option('-p, --port <n>', 'port (env LINUS_PORT; config server.port)')
    .option('-H, --host <host>', 'address to bind (env LINUS_HOST; config server.ip)')
    .option(
      '--supervised',
      'on restart, drain and exit 0 for a supervisor (systemd Restart=always) to start us again (env LINUS_SUPERVISED=1)',
    )
    .action((flags: CliFlags) => serve(flags));
  withConfigFlags(
    program.command('check-config').description('validate the config and print the effective values, secrets redacted'),
  ).action((flags: CliFlags) => checkConfig(flags));
  withConfigFlags(
    program
      .command('migrate')
      .description(
        "bring the PostgreSQL schema (cluster.postgres_url or LINUS_DATABASE_URL) up to date; with --from-sqlite, copy a single node's data into it",
      ),
  )
    .option(
      '--from-sqlite <file>',
      'SQLite file to copy (data/linus.db): meetings, tasks, queued peer messages, memory, activations, device bindings',
    )
    .action((flags: CliFlags & { fromSqlite?: string }) => migrate(flags));
  withConfigFlags(
    program.command('activate <code>').description('activate the device waiting with this 6-digit code'),
  ).action((code: string, flags: CliFlags) => activate(code, flags));
  const devices = program
    .command('devices')
    .description('which client id owns each device id (with auth on, the first client to obtain a token)');
  withConfigFlags(devices.command('list').description('list device ids and the client ids they are bound to')).action(
    (flags: CliFlags) => listBindings(flags),
  );
  withConfigFlags(
    devices
      .command('rebind <device-id> [client-id]')
      .description(
        'a re-flashed device has a new client id: bind the device id to it, or with none free it for the next client that obtains a token',
      ),
  ).action((deviceId: string, clientId: string | undefined, flags: CliFlags) => rebind(deviceId, clientId, flags));
  withConfigFlags(
    program
      .command('token <device-id> [client-id]')
      .description(
        'print a device token (server.auth_key must be set; it connects only if the device id is free or bound to this client id)',
      ),
  ).action((deviceId: string, clientId: string | undefined, flags: CliFlags) => token(deviceId, clientId, flags));
  program
    .command('simulate')
    .description('act as a device: speak a WAV file or a sentence, print the replies, save the reply audio')
    .option('-u, --url <url>', 'WebSocket URL (with --transport mqtt: the OTA URL)', 'ws://127.0.0.1:8000/xiaozhi/v1/')
    .option('--transport <t>', 'websocket, or mqtt: OTA → MQTT → UDP like the firmware', 'websocket')
    .option('-w, --wav <file>', 'speak this WAV file (any rate, mono or stereo)')
    .option('-s, --say <text>', 'speak this text (synthesized locally with flite)')
    .option('-t, --type <text>', 'type this text instead of speaking (listen detect)')
    .option('-o, --out <file>', 'save the reply audio to this WAV file')
    .option('--device-id <id>', 'device id to connect as', 'sim-device')
    .option('--token <token>', 'device token (server.auth.enabled), sent as Authorization: Bearer')
    .option('--ota [url]', "get the WebSocket URL and token from OTA first, as a device does (default: the server's)")
    .option('--protocol <n>', 'binary protocol version 1, 2 or 3', '1')
    .option('--manual', 'push-to-talk: listen start manual, audio, listen stop', false)
    .option('--timeout <ms>', 'give up after this long', '30000')
    .action(
      async (o: {
        url: string;
        wav?: string;
        say?: string;
        type?: string;
        out?: string;
        deviceId: string;
        token?: string;
        ota?: string | boolean;
        protocol: string;
        transport: string;
        manual: boolean;
        timeout: string;
      }) => {
        if (!o.wav && !o.say && o.type === undefined) fail('give --wav FILE, --say TEXT or --type TEXT');
        const protocol = Number(o.protocol);
        if (protocol !== 1 && protocol !== 2 && protocol !== 3) fail('--protocol must be 1, 2 or 3');
        if (o.transport !== 'websocket' && o.transport !== 'mqtt') fail('--transport must be websocket or mqtt');
        try {
          const r = await simulate({
            ...o,
            protocol,
            transport: o.transport,
            timeoutMs: Number(o.timeout) || 30000,
            print: (l) => process.stdout.write(`${l}\n`),
          });
          process.exit(r.completed ? 0 : 1);
        } catch (err) {
          fail(err);
        }
      },
    );
  program
    .command('bench')
    .description('run a benchmark profile (talk, idle, control, peer, soak, ...); linus bench --help lists them')
    .argument('[args...]', 'the profile and its flags')
    .allowUnknownOption()
    .helpOption(false)
    .action((args: string[]) => bench(args));
  program.parseAsync(argv).catch(fail);
}
