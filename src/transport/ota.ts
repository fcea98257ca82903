import type { IncomingMessage } from 'node:http';
import type { ConfigStore } from '../config/store.js';
import type { LinusConfig } from '../config/schema.js';
import type { Logger } from '../observability/log.js';
import { signDeviceToken } from '../protocol/auth-token.js';
import { normalizeId, resolveHandshakeIds } from '../protocol/ids.js';
import type { ActivationStore } from '../store/activation.js';
import type { DeviceBindings } from '../store/bindings.js';
import { activationPasses, needsDeviceSecret, unboundHint } from './device-auth.js';
import type { FirmwareStore } from './firmware.js';
import { HttpError, headerString, readJson, sendJson, sendText } from './http-util.js';
import { otaMqttBlock } from './mqtt/ota.js';
import type { CorsPolicy, HttpRoutes } from './http-app.js';
import { KeyedRateWindows } from '../rate.js';
import { budgetKey, refusedWhileBackingOff, type SecretThrottle } from './secret-throttle.js';

/** The two URL families devices use: the reference's and the fork's. */
export const OTA_FAMILIES = [
  { ota: '/xiaozhi/ota', ws: '/xiaozhi/v1/' },
  { ota: '/supie/ota', ws: '/supie/v1/' },
] as const;

const CORS: CorsPolicy = {
  methods: 'GET, POST, OPTIONS',
  headers: 'content-type, device-id, client-id, authorization, activation-version, serial-number',
};
const cors = { cors: CORS };

/** The reference's default `server.websocket` is a placeholder that must not reach devices. */
function configuredWebsocketUrl(config: LinusConfig): string | undefined {
  const v = config.server.websocket.trim();
  if (!v || !/^wss?:\/\/[^\s/]+/i.test(v) || /你的|your[-_ ]?ip/i.test(v)) return undefined;
  return v;
}

/** The host a device reached us at (else our own address), and whether over TLS (a proxy's X-Forwarded-Proto). */
function requestOrigin(config: LinusConfig, req: Pick<IncomingMessage, 'headers'>): { host: string; tls: boolean } {
  const { ip, port } = config.server;
  const host =
    headerString(req as IncomingMessage, 'host') || `${ip === '0.0.0.0' || ip === '::' ? '127.0.0.1' : ip}:${port}`;
  return { host, tls: headerString(req as IncomingMessage, 'x-forwarded-proto') === 'https' };
}

/** The WebSocket URL a device should use, from config or from the host it reached us at. */
export function websocketUrlFor(config: LinusConfig, req: Pick<IncomingMessage, 'headers'>, wsPath: string): string {
  const configured = configuredWebsocketUrl(config);
  if (configured) return configured;
  const { host, tls } = requestOrigin(config, req);
  return `${tls ? 'wss' : 'ws'}://${host}${wsPath}`;
}

export interface OtaDeps {
  config: ConfigStore;
  activations: ActivationStore;
  bindings: DeviceBindings;
  throttle: SecretThrottle;
  authKey: string;
  log: Logger;
  /** Firmware images in data/bin; without it OTA always answers the device's own version. */
  firmware?: FirmwareStore;
  /** Bound port of Linus's own MQTT transport, when it runs. */
  mqttPort?: () => number | undefined;
  /** With an external broker: its host and topic prefix, for the `mqtt` block. */
  mqttBroker?: () => { host: string; topicPrefix: string } | undefined;
}

/** The body as JSON when it is; a body that is not JSON still gets an answer from the headers. Too large: 413. */
async function readOptionalJson(req: IncomingMessage): Promise<unknown> {
  try {
    return await readJson(req);
  } catch (err) {
    if (err instanceof HttpError && err.status === 413) throw err;
    return {};
  }
}

interface OtaBody {
  mac_address?: unknown;
  application?: { version?: unknown };
  board?: { type?: unknown };
}

export function registerOtaRoutes(router: HttpRoutes, deps: OtaDeps): void {
  const newClaims = new KeyedRateWindows(3_600_000);
  for (const family of OTA_FAMILIES) {
    router.add('GET', `${family.ota}/download/:file`, (req, res, params) =>
      deps.firmware ? deps.firmware.serve(req, res, params.file ?? '') : sendJson(res, 404, { success: false }),
    );
    router.add(
      'GET',
      `${family.ota}/`,
      (req, res) => {
        sendText(
          res,
          200,
          `OTA interface is running; websocket address: ${websocketUrlFor(deps.config.current, req, family.ws)}\n`,
        );
      },
      cors,
    );
    router.add(
      'POST',
      `${family.ota}/`,
      async (req, res) => {
        const config = deps.config.current;
        const parsed = await readOptionalJson(req);
        const body: OtaBody = parsed && typeof parsed === 'object' ? (parsed as OtaBody) : {};
        const ids = resolveHandshakeIds(req.url, req.headers, () => '');
        const deviceId = ids.deviceId || normalizeId(body.mac_address);
        if (!deviceId) {
          sendJson(res, 200, { success: false, message: 'request error: Device-Id header is missing' });
          return;
        }
        const clientId = ids.clientId || deviceId;
        const now = Date.now();
        const websocket: Record<string, unknown> = { url: websocketUrlFor(config, req, family.ws), token: '' };
        if (needsDeviceSecret(config, deviceId)) {
          // Trust on first use: the first client id to get a token owns the device id; another gets none (403), and
          // its address is charged as for a wrong secret, so claiming other devices' ids is throttled like guessing.
          const address = budgetKey(req.socket.remoteAddress);
          if (refusedWhileBackingOff(deps.throttle, address, req, res)) return;
          const perHour = config.server.auth.new_devices_per_hour;
          // One read of the binding per request: a bound device id is not claimed again.
          const bound = await deps.bindings.get(deviceId);
          if (perHour > 0 && !bound && !newClaims.admit(address, perHour, now)) {
            const seconds = Math.ceil(newClaims.retryAfterMs(address, now) / 1000);
            deps.log.warn({ device: deviceId, address, perHour }, 'OTA token refused: too many new device ids');
            sendJson(
              res,
              429,
              {
                success: false,
                message: `too many new device ids from this address (server.auth.new_devices_per_hour: ${perHour}); retry in ${seconds} s`,
              },
              { 'retry-after': String(seconds) },
            );
            return;
          }
          const owner = (bound ?? (await deps.bindings.claim(deviceId, clientId, now))).clientId;
          if (owner !== clientId) {
            deps.throttle.failed(address, 'device');
            deps.log.warn(
              { device: deviceId, client: clientId, owner, address },
              'OTA token refused: the device id is bound to another client id',
            );
            sendJson(res, 403, { success: false, message: unboundHint(deviceId) });
            return;
          }
          websocket.token = signDeviceToken(deps.authKey, clientId, deviceId, now / 1000);
        }
        websocket.version = config.server.binary_protocol_version;
        const appVersion = typeof body.application?.version === 'string' ? body.application.version : '0.0.0';
        const awaitingActivation = !(await activationPasses(config, deps.activations, deviceId));
        const board = typeof body.board?.type === 'string' ? body.board.type : headerString(req, 'device-model');
        const { host, tls } = requestOrigin(config, req);
        // The device's own version means "no update"; a device still to be activated gets none.
        const firmware =
          deps.firmware && !awaitingActivation
            ? await deps.firmware.offer(
                { id: deviceId, board, version: appVersion },
                `${tls ? 'https' : 'http'}://${host}${family.ota}/download/`,
              )
            : { version: appVersion, url: '' };
        const reply: Record<string, unknown> = {
          server_time: { timestamp: now, timezone_offset: Math.round(config.server.timezone_offset * 60) },
          firmware,
          websocket,
        };
        const ownPort = deps.mqttPort?.();
        const broker = deps.mqttBroker?.();
        const own =
          ownPort === undefined
            ? undefined
            : { port: ownPort, host: headerString(req, 'host'), authKey: deps.authKey, ...(broker ? { broker } : {}) };
        const mqtt = otaMqttBlock(config, deviceId, body, own);
        if (mqtt) {
          reply.mqtt = mqtt;
          if (!mqtt.password)
            deps.log.warn({ device: deviceId }, 'OTA mqtt block without a password: set server.mqtt_signature_key');
        }
        if (awaitingActivation) {
          const rec = await deps.activations.issue(deviceId, clientId, now);
          reply.activation = {
            code: rec.code,
            message: `${config.server.activation.message}\n${rec.code}`,
            challenge: rec.challenge,
            timeout_ms: 30_000,
          };
          deps.log.info({ device: deviceId, code: rec.code }, 'device awaits activation');
        }
        sendJson(res, 200, reply);
      },
      cors,
    );
    router.add(
      'POST',
      `${family.ota}/activate`,
      async (req, res) => {
        await readOptionalJson(req);
        const config = deps.config.current;
        if (!config.server.activation.enabled) {
          sendJson(res, 200, { success: true, message: 'activation is not required' });
          return;
        }
        const ids = resolveHandshakeIds(req.url, req.headers, () => '');
        const rec = ids.deviceId ? await deps.activations.get(ids.deviceId) : undefined;
        if (!rec) {
          sendJson(res, 404, { success: false, message: 'unknown device: call the OTA URL first to get a code' });
          return;
        }
        // 202 tells the firmware to keep polling; 200 ends its activation loop.
        if (rec.activatedAt === null) sendJson(res, 202, { success: false, message: 'waiting for activation' });
        else sendJson(res, 200, { success: true, message: 'activated' });
      },
      cors,
    );
  }
}
