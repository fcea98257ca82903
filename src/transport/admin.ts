import type { IncomingMessage } from 'node:http';
import type { ReloadResult } from '../config/reload.js';
import type { ConfigStore } from '../config/store.js';
import type { Logger } from '../observability/log.js';
import { secretEquals } from '../protocol/auth-token.js';
import { bearerToken } from '../protocol/ids.js';
import type { ActivationStore } from '../store/activation.js';
import { HttpError, headerString, readJson, sendJson } from './http-util.js';
import type { Router } from './router.js';

/** Admin calls need `server.admin_secret` as a Bearer token or `X-Admin-Token`; with no secret set they are off. */
export function requireAdmin(config: ConfigStore, req: IncomingMessage): void {
  const secret = config.current.server.admin_secret;
  if (!secret) throw new HttpError(403, 'admin endpoints are disabled: set server.admin_secret');
  const given = bearerToken(headerString(req, 'authorization')) ?? headerString(req, 'x-admin-token');
  if (!secretEquals(given, secret)) throw new HttpError(401, 'admin token missing or wrong');
}

export interface AdminDeps {
  config: ConfigStore;
  activations: ActivationStore;
  log: Logger;
  reload(patch?: Record<string, unknown>): Promise<ReloadResult>;
  restart(): void;
}

export function registerAdminRoutes(router: Router, deps: AdminDeps): void {
  router.add('POST', '/admin/config/reload', async (req, res) => {
    requireAdmin(deps.config, req);
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
    requireAdmin(deps.config, req);
    sendJson(res, 202, { success: true, data: { restarting: true } });
    res.on('finish', () => deps.restart());
  });
  router.add('POST', '/admin/activate', async (req, res) => {
    requireAdmin(deps.config, req);
    const body = (await readJson(req)) as { code?: unknown };
    const code = typeof body.code === 'string' || typeof body.code === 'number' ? String(body.code) : '';
    if (!/^\d{6}$/.test(code.trim())) throw new HttpError(400, 'body must be {"code":"<6 digits>"}');
    const rec = deps.activations.activateByCode(code);
    if (!rec) throw new HttpError(404, `no device is waiting with code ${code.trim()}`);
    deps.log.info({ device: rec.deviceId }, 'device activated');
    sendJson(res, 200, { success: true, data: { deviceId: rec.deviceId, activatedAt: rec.activatedAt } });
  });
  router.add('GET', '/admin/activations', (req, res) => {
    requireAdmin(deps.config, req);
    sendJson(res, 200, { success: true, data: deps.activations.list() });
  });
}
