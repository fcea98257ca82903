import { randomBytes, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { checkConfig, redactConfig } from '../../config/load.js';
import { deepMerge } from '../../config/reload.js';
import type { LinusConfig } from '../../config/schema.js';
import type { Feature, FeatureDeps } from '../../features/feature.js';
import type { WorkflowService } from '../../features/workflow/service.js';
import { signDeviceToken } from '../../protocol/auth-token.js';
import { normalizeId } from '../../protocol/ids.js';
import { Scope } from '../../session/scope.js';
import type { Session, TurnReport } from '../../session/session.js';
import { validId } from '../api.js';
import { budgetKey } from '../secret-throttle.js';
import { HttpError, headerString, readJson, sendJson } from '../http-util.js';
import { isLoopback } from '../http-util.js';
import { ConsoleAuth, sameOrigin } from './auth.js';
import { onlineDevices } from '../../hub/cluster/online.js';
import { DeviceBook } from './devices.js';
import { EventStream } from './events.js';
import { HEALTH_SAMPLE_MS, HealthHistory } from './health.js';
import { CONSOLE_HEADERS, consoleBuilt, registerConsoleFiles, WEB_DIR } from './static.js';

export interface ConsoleDeps extends FeatureDeps {
  workflow: WorkflowService;
}

const DEVICES_DEBOUNCE_MS = 100;

/** The config routes' body: the keys to change, as nested objects (`{"patch": {"server": {...}}}`). */
const patchBody = z.object({ patch: z.record(z.string(), z.unknown()).describe('the keys to change, nested') });

const REFUSAL_PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Linus console</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main class="refusal"><h1>Linus console</h1>
<p>The console is only open to this machine (loopback) while no secret is set.</p>
<p>To use it from another address, set <code>server.admin_secret</code> (full rights) or
<code>server.meeting_api_token</code> (read-only) in the config, then log in with it.</p></main></body></html>`;

/**
 * The web console (issue 11): the page and its files under /console/, log-in/out, the live event stream and the
 * HTTP API it uses beyond the features' own routes (devices, config, health, restart). Read at start: with
 * `server.console.enabled` off the caller does not build it (`ConsoleFeature.enabled`), so none of it is registered.
 */
export class ConsoleFeature implements Feature {
  readonly name = 'console';
  readonly #scope: Scope;

  static enabled(config: LinusConfig): boolean {
    return config.server.console.enabled;
  }

  constructor(deps: ConsoleDeps) {
    const { ctx, router, api } = deps;
    const { config, log } = ctx;
    const scope = new Scope('console', (err, where) => log.error({ err, where }, 'error in console scope'));
    this.#scope = scope;
    const auth = new ConsoleAuth(config, router.app);
    api.useConsole(auth);
    // Info, not a warning: a checkout that never built the console (tests, API-only use) runs as it should.
    if (!consoleBuilt()) log.info({ dir: WEB_DIR }, 'console not built (its page says so): run npm run build');
    const stream = new EventStream(scope);
    // Ended when the server drains, not when the console closes: the listener waits for its connections first.
    scope.on(ctx.events, 'draining', () => stream.end());
    const book = new DeviceBook({
      registry: ctx.registry,
      cluster: ctx.cluster,
      directory: deps.directory,
      modes: deps.modes,
      sessions: deps.sessions,
    });
    const health = new HealthHistory(ctx.metrics, async () => (await onlineDevices(ctx, { limit: 0, log })).count);

    // ---------------------------------------------------------------- live updates
    let devicesPending = false;
    const devicesChanged = (): void => {
      if (devicesPending || stream.size === 0) return;
      devicesPending = true;
      scope.timeout(DEVICES_DEBOUNCE_MS, () => {
        devicesPending = false;
        void scope.run('devices', async () => stream.send('devices', await book.list()));
      });
    };
    const noted =
      (what: string) =>
      (s: Session): void => {
        book.note(s.deviceId, what);
        devicesChanged();
      };
    scope.on(ctx.events, 'registered', noted('connected'));
    scope.on(ctx.events, 'ready', noted('hello'));
    scope.on(ctx.events, 'closed', noted('disconnected'));
    scope.on(ctx.events, 'turn', (s: Session, report: TurnReport) => {
      book.turn(s.deviceId, report);
      devicesChanged();
    });
    for (const mode of ['meeting', 'working', 'coding'] as const) {
      deps.modes.onStart(mode, noted(`mode ${mode} started`));
      deps.modes.onEnd(mode, noted(`mode ${mode} ended`));
    }
    scope.add(deps.directory.onReload(devicesChanged));
    // Devices coming and going on the other nodes are in the list too (D17).
    if (ctx.cluster) scope.on(ctx.cluster.registry.presence, 'change', devicesChanged);
    scope.on(ctx.events, 'meeting', (meetingId: string, change: string) =>
      stream.send('meeting', { meetingId, change }),
    );
    // Pages showing that group reload it through the API (same rights and shape as every other read).
    scope.add(deps.workflow.onChange((groupKey) => stream.send('tasks', { groupKey })));
    scope.interval(HEALTH_SAMPLE_MS, () => {
      void scope.run('health', async () => stream.send('health', await health.sample(true)));
    });

    // ---------------------------------------------------------------- pages and log-in
    router.add('GET', '/', (_req, res) => {
      res.writeHead(302, { location: '/console/' });
      res.end();
    });
    registerConsoleFiles(router.app, {
      refusal: (req) => (auth.mode === 'loopback' && !isLoopback(req.socket.remoteAddress) ? REFUSAL_PAGE : undefined),
    });
    router.add('GET', '/console/api/session', (req, res) => {
      // 200 either way: "not logged in" is an answer here, not a failure (the page then shows the log-in form).
      const access = auth.access(req);
      sendJson(res, 200, { success: true, data: { mode: auth.mode, loggedIn: !!access, ...access } }, CONSOLE_HEADERS);
    });
    router.add('POST', '/console/api/login', async (req, res) => {
      api.limit(req);
      // JSON only: a cross-site form cannot send it without a preflight this server never grants.
      if (!headerString(req, 'content-type')?.startsWith('application/json') || !sameOrigin(req))
        throw new HttpError(415, 'log in with a JSON body {"secret": "..."} from the console page');
      const body = (await readJson(req, 4096)) as { secret?: unknown };
      const secret = typeof body.secret === 'string' ? body.secret : '';
      if (!secret) throw new HttpError(401, 'wrong secret');
      // The same failed-secret budget as the admin calls: a guesser backs off here too.
      const address = budgetKey(req.socket.remoteAddress);
      api.throttle.guard(address, 'admin');
      const session = auth.login(secret);
      if (!session) {
        api.throttle.failed(address, 'admin');
        throw new HttpError(401, 'wrong secret');
      }
      log.info({ from: req.socket.remoteAddress, role: session.role }, 'console log-in');
      sendJson(
        res,
        200,
        { success: true, data: { role: session.role, csrf: session.csrf, mode: auth.mode } },
        { ...CONSOLE_HEADERS, 'set-cookie': auth.cookie(session.id) },
      );
    });
    router.add('POST', '/console/api/logout', (req, res) => {
      auth.logout(req);
      sendJson(res, 200, { success: true, data: {} }, { ...CONSOLE_HEADERS, 'set-cookie': auth.cookie() });
    });

    // ---------------------------------------------------------------- the API the pages use
    const priv = { private: true };
    api.document('GET', '/api/events', priv);
    router.add('GET', '/api/events', async (req, res, _params, url) => {
      api.limit(req);
      api.authorize(req, url, priv);
      stream.open(req, res, [{ event: 'devices', data: await book.list() }]);
    });
    api.add(
      'GET',
      '/api/devices',
      async () => {
        const devices = await book.list();
        return { devices, groups: DeviceBook.groups(devices) };
      },
      priv,
    );
    api.add(
      'GET',
      '/api/devices/:id',
      async (_req, params) => {
        const d = await book.detail(validId(normalizeId(params.id), 'device id'));
        if (!d) throw new HttpError(404, 'no such device');
        return d;
      },
      priv,
    );
    api.add(
      'GET',
      '/api/health',
      async () => ({
        everyMs: HEALTH_SAMPLE_MS,
        samples: health.samples,
        now: await health.sample(false),
      }),
      priv,
    );
    api.add('GET', '/api/config', () => ({ config: redactConfig(config.current) }), priv);
    /** The current config with the patch over it, checked completely (every problem with its key path). */
    const check = (patch: Record<string, unknown>) =>
      checkConfig(deepMerge(structuredClone(config.current) as Record<string, unknown>, patch));
    api.add(
      'POST',
      '/api/config/validate',
      async (_req, _params, _url, { patch }) => {
        const checked = check(patch);
        return checked.ok ? { ok: true, warnings: checked.value.warnings } : { ok: false, errors: checked.errors };
      },
      { ...priv, body: patchBody },
    );
    api.add(
      'POST',
      '/api/config/apply',
      async (_req, _params, _url, { patch }) => {
        const checked = check(patch);
        if (!checked.ok) return { ok: false, errors: checked.errors };
        const r = await deps.admin.reload(patch);
        if (!r.ok) return { ok: false, errors: [{ path: '', message: r.error }] };
        return { ok: true, changed: r.changed, restartRequired: r.restartRequired, warnings: r.warnings };
      },
      { admin: true, body: patchBody },
    );
    // The Talk page is a device: it gets an id of its own and, when device auth is on, a token signed like OTA's.
    api.add(
      'POST',
      '/api/talk',
      () => {
        const deviceId = `console-${randomBytes(4).toString('hex')}`;
        const clientId = randomUUID();
        const token = signDeviceToken(ctx.authKey, clientId, deviceId, Date.now() / 1000);
        return { deviceId, clientId, token, path: '/xiaozhi/v1/' };
      },
      { admin: true },
    );
    api.add(
      'POST',
      '/api/restart',
      () => {
        // After the answer is written (restart defers itself a moment).
        deps.admin.restart();
        return { restarting: true };
      },
      { admin: true },
    );
  }

  async close(): Promise<void> {
    await this.#scope.drain();
    this.#scope.close();
  }
}
