import type { DeviceRegistry } from '../hub/registry.js';
import type { Metrics } from '../observability/metrics.js';
import { sendJson } from './http-util.js';
import type { Router } from './router.js';

export function registerStatusRoutes(
  router: Router,
  deps: {
    metrics: Metrics;
    registry: DeviceRegistry;
    connections: () => number;
    state: () => 'serving' | 'draining';
    version: string;
  },
): void {
  const started = Date.now();
  router.add('GET', '/health', (_req, res) => {
    const serving = deps.state() === 'serving';
    sendJson(res, serving ? 200 : 503, {
      status: serving ? 'ok' : 'draining',
      pid: process.pid,
      version: deps.version,
      uptimeSeconds: Math.round((Date.now() - started) / 1000),
      connections: deps.connections(),
      devices: deps.registry.size,
    });
  });
  router.add('GET', '/metrics', async (_req, res) => {
    const body = await deps.metrics.registry.metrics();
    res.writeHead(200, { 'content-type': deps.metrics.registry.contentType });
    res.end(body);
  });
}
