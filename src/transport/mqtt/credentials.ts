import { createHmac } from 'node:crypto';
import { secretEquals } from '../../protocol/auth-token.js';

/**
 * MQTT credentials as the reference hands them out in OTA and as the xiaozhi-mqtt-gateway checks them at CONNECT:
 *   client_id = GID_<model>@@@<mac with _>@@@<mac with _>
 *   username  = base64 of a small JSON object (the reference sends {"ip": "unknown"})
 *   password  = base64(HMAC-SHA256(signature key, client_id + "|" + username))
 * The device stores every member of the OTA `mqtt` block verbatim and replays it at CONNECT.
 */
export interface MqttCredentials {
  client_id: string;
  username: string;
  password: string;
}

/** What the reference writes as the username: Python's `json.dumps({"ip": "unknown"})`, base64. */
const REFERENCE_USERNAME = Buffer.from('{"ip": "unknown"}').toString('base64');
const SEPARATOR = '@@@';

/** The device model the reference reads from the OTA body (`device.model`, else `model`), else `default`. */
export function otaDeviceModel(body: unknown): string {
  const b = (body && typeof body === 'object' ? body : {}) as { device?: { model?: unknown }; model?: unknown };
  const model = typeof b.device?.model === 'string' ? b.device.model : typeof b.model === 'string' ? b.model : '';
  return model || 'default';
}

export function mqttClientId(deviceId: string, model: string): string {
  const mac = deviceId.replaceAll(':', '_');
  // `/`, `+` and `#` too: the client id is a topic level on an external broker.
  return [`GID_${model}`.replace(/[: /+#]/g, '_'), mac, mac].join(SEPARATOR);
}

export function signMqttPassword(key: string, clientId: string, username: string): string {
  return createHmac('sha256', key).update(`${clientId}|${username}`).digest('base64');
}

/** Credentials for one device; with no key the password is empty, as the reference leaves it. */
export function issueMqttCredentials(key: string, deviceId: string, model: string): MqttCredentials {
  const client_id = mqttClientId(deviceId, model);
  const username = REFERENCE_USERNAME;
  return { client_id, username, password: key ? signMqttPassword(key, client_id, username) : '' };
}

export type MqttLogin = { ok: true; deviceId: string; clientId: string } | { ok: false; reason: string };

/**
 * Checks CONNECT credentials the way the gateway does (client id in three `@@@` parts, password = the signature
 * of client id and username) and reads the device id (the MAC, `_` back to `:`) from the client id.
 */
export function verifyMqttLogin(
  key: string,
  clientId: string,
  username: string | undefined,
  password: Buffer | string | undefined,
): MqttLogin {
  const ids = parseMqttClientId(clientId);
  if (!ids) return { ok: false, reason: 'client id is not GID@@@mac@@@uuid' };
  if (!username) return { ok: false, reason: 'no username' };
  const given = typeof password === 'string' ? password : (password?.toString('utf8') ?? '');
  if (!secretEquals(signMqttPassword(key, clientId, username), given)) return { ok: false, reason: 'bad password' };
  return { ok: true, ...ids };
}

/** The device id (the MAC, `_` back to `:`) and client id in an MQTT client id of the reference's shape. */
export function parseMqttClientId(clientId: string): { deviceId: string; clientId: string } | undefined {
  const parts = clientId.split(SEPARATOR);
  if (parts.length !== 3 || !parts[1]) return undefined;
  return { deviceId: parts[1].replaceAll('_', ':').toLowerCase(), clientId: parts[2] || parts[1] };
}
