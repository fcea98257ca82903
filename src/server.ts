import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { accessSync, constants } from 'node:fs';
import { makeDirs } from './dirs.js';
import { createServer, type Server } from 'node:http';
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
import { startClusterPart } from './hub/cluster/compose.js';
import { onlineDevices } from './hub/cluster/online.js';
import { syncConfig } from './hub/cluster/config-sync.js';
import { LocalDeviceRegistry, type DeviceRegistry } from './hub/registry.js';
import { closeLogger, createLogger, type Logger, type LogOptions } from './observability/log.js';
import { Metrics } from './observability/metrics.js';
import { Scope } from './session/scope.js';
import { registerCoreHandlers } from './session/handlers.js';
import { MessageTable } from './session/message-table.js';
import { registerServerActions } from './session/server-actions.js';
import type { ServerContext, Session, SessionEvents } from './session/session.js';
import { startFeatures } from './features/index.js';
import { ModeController } from './features/modes.js';
import { createProviderFactories } from './providers/factories.js';
import { createAudioEngine } from './voice/audio-workers.js';
import { Lifecycle, until } from './lifecycle.js';
import { timeoutSignal } from './signals.js';
import { warmUpAudio } from './voice/warm-up.js';
import { ProviderRegistry } from './providers/registry.js';
import { localSelectionError } from './providers/selection.js';
import { checkSystemTools } from './providers/system-check.js';
import type { ActivationStore } from './store/activation.js';
import { openStores } from './store/compose.js';
import type { Db } from './store/sqlite.js';
import { StartupError } from './startup-error.js';
import { registerAdminRoutes } from './transport/admin.js';
import { ApiRoutes } from './transport/api.js';
import { resolveAuthKey } from './transport/device-auth.js';
import { FirmwareStore } from './transport/firmware.js';
import { registerOtaRoutes } from './transport/ota.js';
import { limitRequests } from './transport/request-limits.js';
import { SecretThrottle } from './transport/secret-throttle.js';
import { HttpRoutes } from './transport/http-app.js';
import { registerVisionRoutes } from './transport/vision.js';
import { registerStatusRoutes } from './transport/status.js';
import { exposureNotice } from './transport/exposure.js';
import { registerBrokerAuthRoutes } from './transport/mqtt/broker-auth.js';
import { startBrokerClient } from './transport/mqtt/broker-client.js';
import { startMqttTransport, type MqttTransport } from './transport/mqtt/transport.js';
import { createUpgradeHandler } from './transport/upgrade.js';
import { VERSION } from './version.js';
import { VoiceHooks } from './voice/hooks.js';
import { LazyVoice, type VoiceServiceDeps } from './voice/pipeline.js';
import { SentenceCache } from './voice/sentence-cache.js';

export { StartupError } from './startup-error.js';

export interface StartOptions {
  config: ValidatedConfig;
  dataDir: string;
  configPath?: string;
  /** Defaults to a logger built from the config's `log` block. */
  logger?: Logger;
  /** Process-level metrics (CPU, heap, GC); off in tests that run many servers in one process. */
  defaultMetrics?: boolean;
  /** Where reloads read from: the config file and the command-line overrides. Without it, reload reports an error. */
  reload?: {
    configPath: string;
    port?: number;
    host?: string;
    postgresUrl?: string;
    redisUrl?: string;
    watch?: boolean;
  };
  /** Called for `server`/`restart` and `POST /admin/restart`; the process owner (the CLI) drains and restarts. */
  onRestart?: () => void;
  /** Keep retrying a port that is still in use for this long (a replacement waiting for its predecessor). */
  bindRetryMs?: number;
  /**
   * Start the audio threads and load the VAD model right after listening (the CLI does); tests that start many
   * servers in one process leave it off, and their threads start on first use.
   */
  warmAudio?: boolean;
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
    makeDirs(dataDir);
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

function logOptions(config: LinusConfig, dataDir: string): LogOptions {
  const file = config.log.log_file;
  return {
    level: config.log.log_level,
    maxMessageLength: config.log.max_message_length,
    ...(file ? { file: isAbsolute(file) ? file : join(dataDir, file) } : {}),
  };
}

/** How long the log output may still take once the stop's budget is spent. */
const LOG_GRACE_MS = 250;

/**
 * Starts the server as an ordered list of parts (see `Lifecycle`): each part's close is registered as the part
 * is made, and a stop — or a start that fails half-way, e.g. on a port in use — closes them in reverse.
 */
export async function startServer(opts: StartOptions): Promise<LinusServer> {
  const selection = localSelectionError(opts.config.config);
  if (selection) throw new StartupError(selection.message, selection.key);
  ensureDataDir(opts.dataDir);
  const config = new ConfigStore(opts.config.config);
  const log = opts.logger ?? createLogger(logOptions(config.current, opts.dataDir));
  const parts = new Lifecycle({
    budgetMs: () => config.current.server.shutdown_timeout_ms,
    onError: (err, part) => log.error({ err, part }, 'closing failed'),
  });
  // First in, last out: every other part may log while it closes. A logger we were given is its owner's to close.
  // Its last lines get a moment even when the drain spent the budget: a healthy sink needs milliseconds.
  parts.add('log', async ({ reason, deadline }) => {
    log.info({ reason }, 'stopped');
    if (!opts.logger) await closeLogger(log, deadline.aborted ? timeoutSignal(LOG_GRACE_MS) : deadline);
  });
  try {
    return await start(opts, config, log, parts);
  } catch (err) {
    await parts.close('start failed');
    throw err;
  }
}

async function start(opts: StartOptions, config: ConfigStore, log: Logger, parts: Lifecycle): Promise<LinusServer> {
  const initial = config.current;
  for (const w of opts.config.warnings) log.warn(`config: ${w}`);

  const stores = await openStores({ config: initial, dataDir: opts.dataDir, log }, parts);
  const { db } = stores;
  // Cluster mode: routes, handover, fan-out and presence over Redis (D17); closed after the sessions.
  const cluster = stores.mode === 'cluster' ? await startClusterPart(initial, log, parts) : undefined;
  const { activations, bindings } = stores;
  const metrics = parts.start(
    'metrics',
    () => new Metrics({ defaultMetrics: opts.defaultMetrics ?? true }),
    (m) => m.close(),
  );
  if (cluster) {
    const off = cluster.bus.onGap((gap) => metrics.clusterBusGaps.labels(gap.reason).inc());
    parts.add('cluster gap count', () => void off());
  }
  const throttle = new SecretThrottle(metrics, log, () => config.current.server.failed_secrets);
  const providers = parts.start(
    'providers',
    () => new ProviderRegistry(config, createProviderFactories(), log),
    (p) => p.close(),
  );
  // Pending saves (dialogue memory...) finish before the providers and the store close: nothing stored is lost (A9).
  const background = parts.start(
    'background tasks',
    () => new Scope('background', (err, where) => log.error({ err, where }, 'background task failed')),
    async (scope, { deadline }) => {
      await until(scope.drain(), deadline);
      scope.close();
    },
  );
  // Closed after the sessions: their streams are gone; encodes still in flight are dropped with the threads.
  const audio = parts.start(
    'audio threads',
    () => createAudioEngine(initial.server.audio_workers, log),
    (a) => a.close(),
  );
  void background.run('system check', () => checkSystemTools(initial, log));

  const registry: DeviceRegistry = cluster?.registry ?? new LocalDeviceRegistry();
  const auth = resolveAuthKey(initial, randomBytes(16).toString('hex'));
  if (auth.ephemeral && initial.server.auth.enabled) {
    log.warn(
      'server.auth is enabled but no server.auth_key or manager-api.secret is set: tokens will not survive a restart',
    );
  }
  const messages = new MessageTable<Session>();
  registerCoreHandlers(messages);
  const events = new EventEmitter<SessionEvents>();
  const ctx: ServerContext = {
    config,
    metrics,
    log,
    registry,
    authKey: auth.key,
    background,
    messages,
    events,
    ...(cluster ? { cluster } : {}),
  };
  const reloader = opts.reload ? new ConfigReloader(config, opts.reload, log) : undefined;
  const configSync =
    cluster && reloader
      ? parts.start(
          'cluster config',
          () => syncConfig(cluster.bus, reloader, log),
          (s) => s.close(),
        )
      : undefined;
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
  // A patch the cluster took before this node started is its config too (as the manager API's is at start).
  await configSync?.catchUp();

  const sessions = new Set<Session>();
  // Made here so that routes can be registered on it; listening and its drain come after the features.
  const http = createServer();
  const router = new HttpRoutes(
    http,
    (server, handle) => server.on('request', limitRequests(server, metrics, handle)),
    log,
  );
  registerStatusRoutes(router, {
    metrics,
    registry,
    connections: () => sessions.size,
    state: () => (parts.stopping ? 'draining' : 'serving'),
    version: VERSION,
    online: () => onlineDevices({ registry, cluster }, { limit: 0, log }),
    ...(stores.pg ? { store: () => stores.pg!.reach() } : {}),
    ...(cluster
      ? {
          cluster: () => {
            const configRejected = configSync?.rejected();
            return {
              node: cluster.registry.nodeId,
              ...cluster.registry.health(),
              bus: { ...cluster.bus.stats },
              ...(configRejected ? { configRejected } : {}),
            };
          },
        }
      : {}),
  });
  const directory = parts.start(
    'device directory',
    () => new DeviceDirectory(join(opts.dataDir, DEVICES_FILE), config, log),
    (d) => d.close(),
  );
  const firmware = new FirmwareStore(join(opts.dataDir, 'bin'), log, (id) => directory.setting(id, 'firmware'));
  registerOtaRoutes(router, {
    config,
    activations,
    bindings,
    throttle,
    authKey: auth.key,
    log,
    firmware,
    mqttPort: () => mqtt?.mqttPort,
    mqttBroker: () => mqtt?.broker,
  });
  registerVisionRoutes(router, { config, throttle, providers, metrics, authKey: auth.key, log });
  if (initial.server.mqtt.enabled && initial.server.mqtt.broker_url)
    registerBrokerAuthRoutes(router, { config, activations, authKey: auth.key, metrics });
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
  const voices = new WeakMap<Session, LazyVoice>();
  const voiceHooks = new VoiceHooks();
  startFeatures(
    {
      ctx,
      db,
      stores: stores.features,
      providers,
      modes,
      directory,
      dataDir: opts.dataDir,
      router,
      api: new ApiRoutes(router, config, throttle),
      voiceHooks,
      voiceOf: (session) => voices.get(session)?.pipeline,
      sessions: () => sessions,
      admin: { reload: (patch) => reload('admin', patch), restart },
    },
    parts,
  );

  // Closed first of the long-lived parts: stop accepting, tell every device, then wait for the connections
  // (until the stop's deadline) before the features and the store they use close.
  await router.app.ready();
  parts.add('http', async ({ deadline }) => {
    const closed = new Promise<void>((resolve) => http.close(() => resolve()));
    ctx.events.emit('draining');
    for (const s of [...sessions]) {
      s.notify('shutdown', 'The server is shutting down; reconnect in a moment.');
      s.close(1001, 'server shutdown');
    }
    await until(closed, deadline);
    http.closeAllConnections();
    // Its plugins' timers; the server itself is ours and closed above.
    await router.app.close();
  });
  http.keepAliveTimeout = 5000;
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false, // Opus does not compress; deflate costs 3x throughput and 2x memory
    clientTracking: false,
    maxPayload: initial.server.max_frame_hard_bytes,
  });
  // One for the server: a fixed sentence said to one device is reused for every other.
  const sentences = new SentenceCache();
  const onSession = (session: Session): void => {
    sessions.add(session);
    session.scope.add(() => sessions.delete(session));
    openSession(session, config, voices, {
      providers,
      memory: stores.memory,
      hooks: voiceHooks,
      audio,
      sentences,
    });
  };
  const admission = { ctx, activations, accepting: () => !parts.stopping, connectionCount: () => sessions.size };
  http.on('upgrade', createUpgradeHandler({ wss, ...admission, bindings, throttle, onSession }));

  const { ip: host, port } = initial.server;
  await listen(http, host, port, opts.bindRetryMs ?? 0);
  // The MQTT + UDP transport feeds sessions through the same hook as the WebSocket upgrade. Made after the
  // listener, it is closed before it: its devices get their goodbye while everything else still runs.
  let mqtt: MqttTransport | undefined;
  if (initial.server.mqtt.enabled) {
    const external = initial.server.mqtt.broker_url !== '';
    const start = external ? startBrokerClient : startMqttTransport;
    const transport = await start({ ...admission, throttle, onSession }).catch((err: unknown) => {
      throw external
        ? new StartupError(
            `cannot use the MQTT broker or open UDP port ${initial.server.udp.port} (${errorMessage(err)}); check server.mqtt.broker_url / server.udp.port or turn server.mqtt.enabled off`,
            'server.mqtt.broker_url',
          )
        : new StartupError(
            `cannot open the MQTT port ${initial.server.mqtt.port} or UDP port ${initial.server.udp.port} (${errorCode(err) ?? errorMessage(err)}); change server.mqtt.port / server.udp.port or turn server.mqtt.enabled off`,
            'server.mqtt.port',
          );
    });
    parts.add('mqtt', () => transport.close());
    mqtt = transport;
  }
  http.on('error', (err) => log.error({ err }, 'http server error'));
  const bound = (http.address() as AddressInfo).port;
  if (reloader && opts.reload?.watch) {
    reloader.watchFile();
    parts.add('config watch', () => reloader.close());
  }
  const timers = parts.start(
    'timers',
    () => new Scope('server', (err, where) => log.error({ err, where }, 'error in server scope')),
    (scope) => scope.close(),
  );
  sweepSessions(timers, config, sessions);

  log.info(
    { host, port: bound, dataDir: opts.dataDir, config: opts.configPath, version: VERSION },
    `Linus listening on ${host}:${bound}`,
  );
  const exposed = exposureNotice(initial, host, bound);
  if (exposed) log.warn(exposed);
  // In the timers scope, closed first on a stop: a warm-up cut short by the shutdown is no failure.
  if (opts.warmAudio)
    void timers.run('audio warm-up', () => warmUpAudio({ audio, providers, config: initial, scope: timers, log }));
  return {
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
      if (!parts.stopping) log.info({ reason, sessions: sessions.size }, 'draining');
      return parts.close(reason);
    },
  };
}

/** A new session's private config (from the manager API, if there is one) and its voice, built on first use. */
function openSession(
  session: Session,
  config: ConfigStore,
  voices: WeakMap<Session, LazyVoice>,
  voiceDeps: VoiceServiceDeps,
): void {
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
  const voice = new LazyVoice(session, voiceDeps);
  voices.set(session, voice);
  session.voice = voice;
}

/**
 * The two sweeps over every session: one ping sweep, where a peer that did not answer the previous ping is cut
 * off (A4), and one idle sweep instead of a timer per connection (A7).
 */
function sweepSessions(scope: Scope, config: ConfigStore, sessions: ReadonlySet<Session>): void {
  const ping = (): void => {
    const every = config.current.server.ws_ping_interval_ms;
    if (every <= 0) {
      scope.timeout(5000, ping);
      return;
    }
    scope.timeout(every, () => {
      for (const s of sessions) if (!s.ping()) s.terminate();
      ping();
    });
  };
  ping();
  scope.interval(500, () => {
    const now = Date.now();
    for (const s of sessions) s.checkIdle(now);
  });
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
