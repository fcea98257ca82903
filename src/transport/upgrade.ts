import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocketServer } from 'ws';
import { errorMessage } from '../errors.js';
import { resolveHandshakeIds, type HandshakeIds } from '../protocol/ids.js';
import type { ActivationStore } from '../store/activation.js';
import type { DeviceBindings } from '../store/bindings.js';
import { Session, type ServerContext } from '../session/session.js';
import {
  activationPasses,
  checkDeviceAuth,
  checkOwnership,
  needsDeviceSecret,
  type AuthDecision,
} from './device-auth.js';
import { headerString } from './http-util.js';
import { rawHttpResponse, tooManyHeaders } from './request-limits.js';
import { budgetKey, tooManyFailures, type SecretThrottle } from './secret-throttle.js';

export interface UpgradeDeps {
  wss: WebSocketServer;
  ctx: ServerContext;
  activations: ActivationStore;
  bindings: DeviceBindings;
  /** Failed-secret budget per address (wrong device tokens count against it). */
  throttle: SecretThrottle;
  accepting: () => boolean;
  connectionCount: () => number;
  onSession: (session: Session) => void;
}

/** Answers an upgrade request with a plain HTTP error and drops the socket: no session is ever allocated. */
function refuse(socket: Duplex, status: number, message: string, headers: Record<string, string> = {}): void {
  socket.end(rawHttpResponse(status, message, headers));
  socket.destroy();
}

/** Every check happens before the WebSocket handshake, so a refused device costs one HTTP response (D5). */
export function createUpgradeHandler(deps: UpgradeDeps): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  const { ctx } = deps;

  /** The checks that read the store (PostgreSQL in a cluster): the refusal, or undefined to go on. */
  async function storeRefusal(
    ids: HandshakeIds,
    decision: Extract<AuthDecision, { ok: true }>,
  ): Promise<{ status: number; message: string } | undefined> {
    const owner = await checkOwnership(decision, ids, deps.bindings, ctx.registry.get(ids.deviceId));
    if (!owner.ok) {
      ctx.metrics.rejectedUpgrades.labels('not_owner').inc();
      ctx.log.warn({ device: ids.deviceId, client: ids.clientId, reason: owner.reason }, 'device id not owned');
      return { status: owner.status, message: owner.reason };
    }
    const refused = ctx.metrics.rejectedUpgrades.labels('not_activated');
    if (!(await activationPasses(ctx.config.current, deps.activations, ids.deviceId, refused)))
      return { status: 401, message: 'device is not activated: call the OTA URL and enter the code shown' };
    return undefined;
  }

  return (req, socket, head) => {
    const onSocketError = (): void => void socket.destroy();
    socket.on('error', onSocketError);
    const config = ctx.config.current;
    const tooMany = tooManyHeaders(req);
    if (tooMany) {
      ctx.metrics.httpRefused.labels('too_many_headers').inc();
      refuse(socket, 431, tooMany);
      return;
    }
    if (!deps.accepting()) {
      ctx.metrics.rejectedUpgrades.labels('draining').inc();
      refuse(socket, 503, 'server is shutting down');
      return;
    }
    if (deps.connectionCount() >= config.server.max_connections) {
      ctx.metrics.rejectedUpgrades.labels('max_connections').inc();
      refuse(socket, 503, 'too many connections (server.max_connections)');
      return;
    }
    const ids = resolveHandshakeIds(req.url, req.headers);
    const address = budgetKey(req.socket.remoteAddress);
    const wait = needsDeviceSecret(config, ids.deviceId) ? deps.throttle.retryAfterMs(address, 'device') : 0;
    if (wait > 0) {
      ctx.metrics.rejectedUpgrades.labels('throttled').inc();
      const err = tooManyFailures(wait);
      refuse(socket, err.status, err.message, err.headers);
      return;
    }
    const decision = checkDeviceAuth(config, ctx.authKey, ids);
    if (!decision.ok) {
      if (decision.guessed) deps.throttle.failed(address, 'device');
      ctx.metrics.rejectedUpgrades.labels('auth').inc();
      ctx.log.warn({ device: ids.deviceId, client: ids.clientId, reason: decision.reason }, 'device auth failed');
      refuse(socket, 401, `authentication failed: ${decision.reason}`);
      return;
    }
    // The ownership and activation checks read the store: the handshake waits for them; a store that fails
    // answers 503, so the device retries instead of hanging.
    storeRefusal(ids, decision).then(
      (refusal) => {
        if (refusal) return refuse(socket, refusal.status, refusal.message);
        // A stop may have begun while the store answered.
        if (!deps.accepting()) {
          ctx.metrics.rejectedUpgrades.labels('draining').inc();
          return refuse(socket, 503, 'server is shutting down');
        }
        // Copy what the session needs: the callback must not keep the upgrade request alive for the connection's life.
        const info = {
          ids,
          path: (req.url ?? '/').split('?')[0] ?? '/',
          ...(headerString(req, 'host') ? { host: headerString(req, 'host')! } : {}),
          ...(req.socket.remoteAddress ? { remoteAddress: req.socket.remoteAddress } : {}),
        };
        deps.wss.handleUpgrade(req, socket, head, (ws) => {
          socket.off('error', onSocketError);
          const session = new Session(ws, info, ctx);
          deps.onSession(session);
          session.start();
        });
      },
      (err: unknown) => {
        ctx.metrics.rejectedUpgrades.labels('store').inc();
        ctx.log.warn({ device: ids.deviceId, err: errorMessage(err) }, 'upgrade refused: the store is unreachable');
        refuse(socket, 503, 'the store is unreachable; retry later');
      },
    );
  };
}
