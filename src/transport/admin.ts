import type { IncomingMessage } from 'node:http';
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

export function registerAdminRoutes(router: Router, deps: { config: ConfigStore; activations: ActivationStore; log: Logger }): void {
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
