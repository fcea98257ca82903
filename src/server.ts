import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { accessSync, constants, mkdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isAbsolute, join } from 'node:path';
import { WebSocketServer } from 'ws';
import type { ValidatedConfig } from './config/load.js';
import { fetchPrivateConfig } from './config/private-config.js';
import { ConfigReloader, type ReloadResult, type ReloadSource } from './config/reload.js';
import type { LinusConfig } from './config/schema.js';
import { ConfigStore } from './config/store.js';
import { errorCode, errorMessage } from './errors.js';
import { DEVICES_FILE, DeviceDirectory } from './hub/directory.js';
import { LocalDeviceRegistry, type DeviceRegistry } from './hub/registry.js';
import { createLogger, type Logger } from './observability/log.js';
import { Metrics } from './observability/metrics.js';
import { Scope } from './session/scope.js';
import { registerCoreHandlers } from './session/handlers.js';
import { MessageTable } from './session/message-table.js';
import { registerServerActions } from './session/server-actions.js';
import type { ServerContext, Session, SessionEvents } from './session/session.js';
import { createFeatures } from './features/index.js';
import { ModeController } from './features/modes.js';
import { createProviderFactories } from './providers/factories.js';
import { createAudioEngine } from './voice/audio-workers.js';
import { ProviderRegistry } from './providers/registry.js';
import { checkSystemTools } from './providers/system-check.js';
import { ActivationStore } from './store/activation.js';
import { DeviceBindings } from './store/bindings.js';
import { MemoryStore } from './store/memory.js';
import { openDatabase, type Db } from './store/sqlite.js';
import { registerAdminRoutes } from './transport/admin.js';
import { ApiRoutes } from './transport/api.js';
import { resolveAuthKey } from './transport/device-auth.js';
import { HttpError, sendJson, sendText } from './transport/http-util.js';
import { registerOtaRoutes } from './transport/ota.js';
import { limitRequests } from './transport/request-limits.js';
import { SecretThrottle } from './transport/secret-throttle.js';
import { Router } from './transport/router.js';
import { registerStatusRoutes } from './transport/status.js';
import { createUpgradeHandler } from './transport/upgrade.js';
import { VERSION } from './version.js';
import { VoiceHooks } from './voice/hooks.js';
import { LazyVoice } from './voice/pipeline.js';

/** A startup failure with one line for the operator, naming the config key (or flag) to change (D15). */
export class StartupError extends Error {
  constructor(
    message: string,
    readonly key?: string,
  ) {
    super(message);
    this.name = 'StartupError';
  }
}

export interface StartOptions {
  config: ValidatedConfig;
  dataDir: string;
  configPath?: string;
  /** Defaults to a logger built from the config's `log` block. */
  logger?: Logger;
  /** Process-level metrics (CPU, heap, GC); off in tests that run many servers in one process. */
  defaultMetrics?: boolean;
  /** Where reloads read from: the config file and the command-line overrides. Without it, reload reports an error. */
  reload?: { configPath: string; port?: number; host?: string; watch?: boolean };
  /** Called for `server`/`restart` and `POST /admin/restart`; the process owner (the CLI) drains and restarts. */
  onRestart?: () => void;
  /** Keep retrying a port that is still in use for this long (a replacement waiting for its predecessor). */
  bindRetryMs?: number;
}

export interface LinusServer {
  readonly port: number;
  readonly host: string;
  readonly ctx: ServerContext;
  readonly registry: DeviceRegistry;
  readonly sessions: ReadonlySet<Session>;
  readonly activations: ActivationStore;
  readonly providers: ProviderRegistry;
  readonly db: Db;
  readonly http: Server;
  /** ws://127.0.0.1:<port><path> style URL for local clients. */
  url(path?: string, scheme?: 'http' | 'ws'): string;
  /** Graceful: stop accepting, tell devices, close sessions, flush the store. Idempotent. */
  close(reason?: string): Promise<void>;
  /** Rebuilds and validates the whole config, then swaps it in; on failure the old one stays (D12). */
  reload(source: ReloadSource, patch?: Record<string, unknown>): Promise<ReloadResult>;
}

function ensureDataDir(dataDir: string): void {
  try {
    mkdirSync(dataDir, { recursive: true });
    accessSync(dataDir, constants.W_OK);
  } catch (err) {
    const code = errorCode(err) ?? 'error';
    throw new StartupError(
      `data dir ${dataDir} is not writable (${code}); choose another with --data-dir or LINUS_DATA_DIR`,
      '--data-dir',
    );
  }
}

function listenError(err: unknown, host: string, port: number): StartupError {
  const code = errorCode(err);
  switch (code) {
    case 'EADDRINUSE':
      return new StartupError(
        `port ${port} on ${host} is already in use (another Linus or another program); change server.port, --port or LINUS_PORT`,
        'server.port',
      );
    case 'EACCES':
    case 'EPERM':
      return new StartupError(
        `permission denied to listen on ${host}:${port} (ports below 1024 need privileges); change server.port, --port or LINUS_PORT`,
        'server.port',
      );
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
    case 'EINVAL':
      return new StartupError(
        `cannot listen on host "${host}" (${code}): not an address of this machine; change server.ip, --host or LINUS_HOST`,
        'server.ip',
      );
    default:
      return new StartupError(`cannot listen on ${host}:${port}: ${errorMessage(err)}`, 'server.port');
  }
}

export async function startServer(opts: StartOptions): Promise<LinusServer> {
  const initial: LinusConfig = opts.config.config;
  ensureDataDir(opts.dataDir);
  const config = new ConfigStore(initial);
  const logFile = initial.log.log_file
    ? isAbsolute(initial.log.log_file)
      ? initial.log.log_file
      : join(opts.dataDir, initial.log.log_file)
    : undefined;
  const log =
    opts.logger ??
    createLogger({
      level: initial.log.log_level,
      maxMessageLength: initial.log.max_message_length,
      ...(logFile ? { file: logFile } : {}),
    });
  for (const w of opts.config.warnings) log.warn(`config: ${w}`);

  let db: Db;
  try {
    db = openDatabase(opts.dataDir);
  } catch (err) {
    throw new StartupError(
      `cannot open the store in ${opts.dataDir}: ${errorMessage(err)}; choose another with --data-dir or LINUS_DATA_DIR`,
      '--data-dir',
    );
  }
  const activations = new ActivationStore(db);
  const bindings = new DeviceBindings(db);
  const metrics = new Metrics({ defaultMetrics: opts.defaultMetrics ?? true });
  const throttle = new SecretThrottle(metrics, log, () => config.current.server.failed_secrets);
  const registry = new LocalDeviceRegistry();
  const auth = resolveAuthKey(initial, randomBytes(16).toString('hex'));
  if (auth.ephemeral && initial.server.auth.enabled) {
    log.warn(
      'server.auth is enabled but no server.auth_key or manager-api.secret is set: tokens will not survive a restart',
    );
  }
  const scope = new Scope('server', (err, where) => log.error({ err, where }, 'error in server scope'));
  const background = new Scope('background', (err, where) => log.error({ err, where }, 'background task failed'));
  const messages = new MessageTable<Session>();
  registerCoreHandlers(messages);
  const events = new EventEmitter<SessionEvents>();
  const ctx: ServerContext = { config, metrics, log, registry, authKey: auth.key, background, messages, events };
  const providers = new ProviderRegistry(config, createProviderFactories(), log);
  const reloader = opts.reload ? new ConfigReloader(config, opts.reload, log) : undefined;
  const reload = (source: ReloadSource, patch?: Record<string, unknown>): Promise<ReloadResult> =>
    reloader
      ? reloader.reload(source, patch)
      : Promise.resolve({ ok: false, source, error: 'this server has no config file to reload from' });
  /** Deferred a moment so the caller's reply leaves first; the drain then closes that connection too. */
  const restart = (): void => {
    background.timeout(100, () => {
      if (opts.onRestart) opts.onRestart();
      else log.warn('restart requested, but this server is not run by the linus command; ignoring');
    });
  };
  registerServerActions(messages, { reload: (patch) => reload('device', patch), restart, throttle });
  // With a manager API the whole config comes from it at start; when it cannot be had, the file config serves.
  if (reloader && initial['manager-api'].url) {
    const r = await reload('start');
    if (!r.ok) log.error(`manager API config not loaded at start (${r.error}); serving the local config`);
  }
  const memory = new MemoryStore(db);
  const audio = createAudioEngine(initial.server.audio_workers, log);
  void checkSystemTools(initial, log);
  const sessions = new Set<Session>();
  let state: 'serving' | 'draining' = 'serving';

  const router = new Router();
  registerStatusRoutes(router, {
    metrics,
    registry,
    connections: () => sessions.size,
    state: () => state,
    version: VERSION,
  });
  registerOtaRoutes(router, { config, activations, bindings, throttle, authKey: auth.key, log });
  registerAdminRoutes(router, {
    config,
    activations,
    bindings,
    throttle,
    log,
    reload: (patch) => reload('admin', patch),
    restart,
  });
  const modes = new ModeController(messages);
  const directory = new DeviceDirectory(join(opts.dataDir, DEVICES_FILE), config, log);
  scope.add(() => directory.close());
  const voices = new WeakMap<Session, LazyVoice>();
  const voiceHooks = new VoiceHooks();
  const features = createFeatures({
    ctx,
    db,
    providers,
    modes,
    directory,
    dataDir: opts.dataDir,
    router,
    api: new ApiRoutes(router, config, throttle),
    voiceHooks,
    voiceOf: (session) => voices.get(session)?.pipeline,
    sessions: () => sessions,
  });

  const http = createServer();
  http.on(
    'request',
    limitRequests(http, metrics, (req, res) => void handleHttp(router, log, req, res)),
  );
  http.keepAliveTimeout = 5000;
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false, // Opus does not compress; deflate costs 3x throughput and 2x memory
    clientTracking: false,
    maxPayload: initial.server.max_frame_hard_bytes,
  });
  http.on(
    'upgrade',
    createUpgradeHandler({
      wss,
      ctx,
      activations,
      bindings,
      throttle,
      accepting: () => state === 'serving',
      connectionCount: () => sessions.size,
      onSession: (session) => {
        sessions.add(session);
        session.scope.add(() => sessions.delete(session));
        if (config.current['manager-api'].url) {
          void session.scope.run('private-config', async () => {
            try {
              session.privateConfig = await fetchPrivateConfig(config.current, session, session.scope.signal);
            } catch (err) {
              if (!session.closed)
                session.log.warn(
                  { err: errorMessage(err) },
                  'no private config from the manager API; using the server config',
                );
            }
          });
        }
        const voice = new LazyVoice(session, { providers, memory, hooks: voiceHooks, audio });
        voices.set(session, voice);
        session.voice = voice;
      },
    }),
  );

  const { ip: host } = initial.server;
  const port = initial.server.port;
  await listen(http, host, port, opts.bindRetryMs ?? 0).catch((err) => {
    void audio.close();
    db.close();
    metrics.close();
    throw err;
  });
  if (reloader && opts.reload?.watch) {
    reloader.watchFile();
    scope.add(() => reloader.close());
  }
  http.on('error', (err) => log.error({ err }, 'http server error'));
  const bound = (http.address() as AddressInfo).port;

  // One sweep pings every socket; a peer that did not answer the previous ping is cut off (A4).
  const sweep = (): void => {
    const every = config.current.server.ws_ping_interval_ms;
    if (every <= 0) {
      scope.timeout(5000, sweep);
      return;
    }
    scope.timeout(every, () => {
      for (const s of sessions) if (!s.ping()) s.terminate();
      sweep();
    });
  };
  sweep();
  // One idle sweep for every session instead of a timer per connection (A7).
  scope.interval(500, () => {
    const now = Date.now();
    for (const s of sessions) s.checkIdle(now);
  });

  log.info(
    { host, port: bound, dataDir: opts.dataDir, config: opts.configPath, version: VERSION },
    `Linus listening on ${host}:${bound}`,
  );

  let closing: Promise<void> | undefined;
  const server: LinusServer = {
    port: bound,
    host,
    ctx,
    registry,
    sessions,
    activations,
    providers,
    db,
    http,
    url(path = '/', scheme = 'http') {
      const h = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
      return `${scheme}://${h}:${bound}${path}`;
    },
    reload,
    close(reason = 'shutdown') {
      closing ??= (async () => {
        state = 'draining';
        log.info({ reason, sessions: sessions.size }, 'draining');
        const httpClosed = new Promise<void>((resolve) => http.close(() => resolve()));
        for (const s of [...sessions]) {
          s.notify('shutdown', 'The server is shutting down; reconnect in a moment.');
          s.close(1001, 'server shutdown');
        }
        scope.close();
        for (const f of [...features].reverse()) {
          try {
            await f.close?.();
          } catch (err) {
            log.error({ err, feature: f.name }, 'feature close failed');
          }
        }
        // Pending saves (dialogue memory...) finish before the store closes: nothing stored is lost (A9).
        await Promise.race([
          (async () => {
            await background.drain();
            await httpClosed;
          })(),
          new Promise((r) => setTimeout(r, config.current.server.shutdown_timeout_ms).unref()),
        ]);
        background.close();
        http.closeAllConnections();
        // After the sessions: their streams are closed; encodes still in flight are dropped with the threads.
        await audio.close();
        await providers.close();
        try {
          db.close();
        } catch (err) {
          log.error({ err }, 'closing the store failed');
        }
        metrics.close();
        log.info('stopped');
      })();
      return closing;
    },
  };
  return server;
}

/** Binds; a port still held by a predecessor is retried until `retryMs` runs out (restart hand-over). */
async function listen(http: Server, host: string, port: number, retryMs: number): Promise<void> {
  const deadline = Date.now() + retryMs;
  for (;;) {
    try {
      await new Promise<void>((resolve, reject) => {
        const onError = (err: NodeJS.ErrnoException) => reject(err);
        http.once('error', onError);
        try {
          http.listen({ port, host }, () => {
            http.off('error', onError);
            resolve();
          });
        } catch (err) {
          http.off('error', onError);
          reject(err);
        }
      });
      return;
    } catch (err) {
      if (errorCode(err) !== 'EADDRINUSE' || Date.now() >= deadline) throw listenError(err, host, port);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function handleHttp(router: Router, log: Logger, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const method = req.method ?? 'GET';
  let url: URL;
  try {
    url = new URL(req.url ?? '/', 'http://localhost');
  } catch {
    // The client is told; there is nothing else to keep of a URL we cannot read.
    sendJson(res, 400, { success: false, error: 'bad request URL' });
    return;
  }
  const match = router.match(method, url.pathname);
  try {
    if (match.kind === 'found') {
      await match.handler(req, res, match.params, url);
    } else if (match.kind === 'method_not_allowed') {
      sendJson(res, 405, { success: false, error: `method ${method} not allowed` }, { allow: match.allow.join(', ') });
    } else if (method === 'GET' || method === 'HEAD') {
      // WebSocket paths are any path; a plain GET on one says the server is up, as the reference does (D1).
      sendText(res, 200, 'Server is running\n');
    } else {
      sendJson(res, 404, { success: false, error: 'not found' });
    }
  } catch (err) {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof HttpError) sendJson(res, err.status, { success: false, error: err.message }, err.headers);
    else {
      log.error({ err, path: url.pathname }, 'http handler failed');
      sendJson(res, 500, { success: false, error: 'internal error' });
    }
  }
}
