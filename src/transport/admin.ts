import type { IncomingMessage } from 'node:http';
import type { ReloadResult } from '../config/reload.js';
import type { ConfigStore } from '../config/store.js';
import type { Logger } from '../observability/log.js';
import { bearerToken, normalizeId } from '../protocol/ids.js';
import type { ActivationStore } from '../store/activation.js';
import type { DeviceBindings } from '../store/bindings.js';
import { HttpError, headerString, readJson, sendJson } from './http-util.js';
import type { HttpRoutes } from './http-app.js';
import { checkSecret, type SecretThrottle } from './secret-throttle.js';

/**
 * Admin calls need `server.admin_secret` as a Bearer token or `X-Admin-Token`; with no secret set they are off.
 * A wrong secret counts against the address's failed-secret budget; while it backs off, the answer is 429.
 */
export function requireAdmin(deps: { config: ConfigStore; throttle: SecretThrottle }, req: IncomingMessage): void {
  const secret = deps.config.current.server.admin_secret;
  if (!secret) throw new HttpError(403, 'admin endpoints are disabled: set server.admin_secret');
  const given = bearerToken(headerString(req, 'authorization')) ?? headerString(req, 'x-admin-token');
  checkSecret(deps.throttle, req.socket.remoteAddress, given, [secret], 'admin');
}

export interface AdminDeps {
  config: ConfigStore;
  activations: ActivationStore;
  bindings: DeviceBindings;
  throttle: SecretThrottle;
  log: Logger;
  reload(patch?: Record<string, unknown>): Promise<ReloadResult>;
  restart(): void;
}

export function registerAdminRoutes(router: HttpRoutes, deps: AdminDeps): void {
  router.add('POST', '/admin/config/reload', async (req, res) => {
    requireAdmin(deps, req);
    const body = (await readJson(req)) as { patch?: unknown };
    const patch =
      body.patch && typeof body.patch === 'object' && !Array.isArray(body.patch)
        ? (body.patch as Record<string, unknown>)
        : undefined;
    const result = await deps.reload(patch);
    if (!result.ok) throw new HttpError(400, result.error);
    sendJson(res, 200, {
      success: true,
      data: { changed: result.changed, restartRequired: result.restartRequired, warnings: result.warnings },
    });
  });
  router.add('POST', '/admin/restart', (req, res) => {
    requireAdmin(deps, req);
    sendJson(res, 202, { success: true, data: { restarting: true } });
    res.on('finish', () => deps.restart());
  });
  router.add('POST', '/admin/activate', async (req, res) => {
    requireAdmin(deps, req);
    const body = (await readJson(req)) as { code?: unknown };
    const code = typeof body.code === 'string' || typeof body.code === 'number' ? String(body.code) : '';
    if (!/^\d{6}$/.test(code.trim())) throw new HttpError(400, 'body must be {"code":"<6 digits>"}');
    const rec = await deps.activations.activateByCode(code);
    if (!rec) throw new HttpError(404, `no device is waiting with code ${code.trim()}`);
    deps.log.info({ device: rec.deviceId }, 'device activated');
    sendJson(res, 200, { success: true, data: { deviceId: rec.deviceId, activatedAt: rec.activatedAt } });
  });
  router.add('GET', '/admin/activations', async (req, res) => {
    requireAdmin(deps, req);
    sendJson(res, 200, { success: true, data: await deps.activations.list() });
  });
  router.add('GET', '/admin/devices', async (req, res) => {
    requireAdmin(deps, req);
    sendJson(res, 200, { success: true, data: await deps.bindings.list() });
  });
  // A re-flashed device has a new client id: it may own its device id again only by the admin's word.
  router.add('POST', '/admin/devices/rebind', async (req, res) => {
    requireAdmin(deps, req);
    const body = (await readJson(req)) as { deviceId?: unknown; clientId?: unknown };
    const deviceId = normalizeId(body.deviceId);
    if (!deviceId) throw new HttpError(400, 'body must be {"deviceId":"...", "clientId"?:"..."}');
    const clientId = body.clientId === undefined ? undefined : normalizeId(body.clientId);
    if (body.clientId !== undefined && !clientId) throw new HttpError(400, 'clientId must be a non-empty string');
    const before = await deps.bindings.rebind(deviceId, clientId);
    deps.log.info({ device: deviceId, from: before?.clientId ?? null, to: clientId ?? null }, 'device rebound');
    sendJson(res, 200, {
      success: true,
      data: { deviceId, clientId: clientId ?? null, previousClientId: before?.clientId ?? null },
    });
  });
}
