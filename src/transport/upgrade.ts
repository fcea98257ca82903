import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocketServer } from 'ws';
import { resolveHandshakeIds } from '../protocol/ids.js';
import type { ActivationStore } from '../store/activation.js';
import { Session, type ServerContext } from '../session/session.js';
import { checkDeviceAuth } from './device-auth.js';
import { headerString } from './http-util.js';

export interface UpgradeDeps {
  wss: WebSocketServer;
  ctx: ServerContext;
  activations: ActivationStore;
  accepting: () => boolean;
  connectionCount: () => number;
  onSession: (session: Session) => void;
}

/** Answers an upgrade request with a plain HTTP error and drops the socket: no session is ever allocated. */
function refuse(socket: Duplex, status: number, statusText: string, message: string): void {
  const body = JSON.stringify({ success: false, error: message });
  socket.end(
    `HTTP/1.1 ${status} ${statusText}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  socket.destroy();
}

/** Every check happens before the WebSocket handshake, so a refused device costs one HTTP response (D5). */
export function createUpgradeHandler(deps: UpgradeDeps): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  const { ctx } = deps;
  return (req, socket, head) => {
    const onSocketError = (): void => void socket.destroy();
    socket.on('error', onSocketError);
    const config = ctx.config.current;
    if (!deps.accepting()) {
      ctx.metrics.rejectedUpgrades.labels('draining').inc();
      refuse(socket, 503, 'Service Unavailable', 'server is shutting down');
      return;
    }
    if (deps.connectionCount() >= config.server.max_connections) {
      ctx.metrics.rejectedUpgrades.labels('max_connections').inc();
      refuse(socket, 503, 'Service Unavailable', 'too many connections (server.max_connections)');
      return;
    }
    const ids = resolveHandshakeIds(req.url, req.headers);
    const decision = checkDeviceAuth(config, ctx.authKey, ids);
    if (!decision.ok) {
      ctx.metrics.rejectedUpgrades.labels('auth').inc();
      ctx.log.warn({ device: ids.deviceId, client: ids.clientId, reason: decision.reason }, 'device auth failed');
      refuse(socket, 401, 'Unauthorized', `authentication failed: ${decision.reason}`);
      return;
    }
    if (config.server.activation.enabled && !deps.activations.isActivated(ids.deviceId)) {
      ctx.metrics.rejectedUpgrades.labels('not_activated').inc();
      refuse(socket, 401, 'Unauthorized', 'device is not activated: call the OTA URL and enter the code shown');
      return;
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
  };
}
