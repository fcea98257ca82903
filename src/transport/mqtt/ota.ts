import type { LinusConfig } from '../../config/schema.js';
import { issueMqttCredentials, otaDeviceModel } from './credentials.js';

/** Topics as the reference hands them out; the firmware publishes to the first and never subscribes. */
export const PUBLISH_TOPIC = 'device-server';
export const subscribeTopic = (deviceId: string): string => `devices/p2p/${deviceId.replaceAll(':', '_')}`;

/**
 * The OTA `mqtt` block, or undefined when devices should stay on WebSocket. With `server.mqtt_gateway` set it
 * sends devices to that gateway (endpoint verbatim) with credentials signed by `server.mqtt_signature_key`, as the
 * reference does; the firmware prefers `mqtt` over `websocket` when both are present.
 */
export function otaMqttBlock(config: LinusConfig, deviceId: string, body: unknown): Record<string, string> | undefined {
  const endpoint = config.server.mqtt_gateway?.trim();
  if (!endpoint) return undefined;
  const credentials = issueMqttCredentials(config.server.mqtt_signature_key ?? '', deviceId, otaDeviceModel(body));
  return {
    endpoint,
    ...credentials,
    publish_topic: PUBLISH_TOPIC,
    subscribe_topic: subscribeTopic(deviceId),
  };
}
