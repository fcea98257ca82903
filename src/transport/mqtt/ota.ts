import type { LinusConfig } from '../../config/schema.js';
import { issueMqttCredentials, otaDeviceModel } from './credentials.js';

/** Topics as the reference hands them out; the firmware publishes to the first and never subscribes. */
export const PUBLISH_TOPIC = 'device-server';
export const subscribeTopic = (deviceId: string): string => `devices/p2p/${deviceId.replaceAll(':', '_')}`;

/**
 * Topics on an external broker: one pair per device, named by its client id, so that the broker's ACLs can bind a
 * client to its own (Mosquitto `%c`, EMQX `${clientid}`) and Linus knows who published from the topic alone.
 */
export const brokerTopics = (prefix: string, clientId: string): { publish_topic: string; subscribe_topic: string } => ({
  publish_topic: `${prefix}device-server/${clientId}`,
  subscribe_topic: `${prefix}devices/p2p/${clientId}`,
});
/** What Linus subscribes to on an external broker: every device's publish topic. */
export const brokerUplinkFilter = (prefix: string): string => `${prefix}device-server/+`;

/** Linus's own MQTT transport as this OTA request sees it. */
export interface OwnMqtt {
  /** Where devices connect: the embedded broker's port, or the external broker's. */
  port: number;
  /** With an external broker: its host and the topic prefix. */
  broker?: { host: string; topicPrefix: string };
  /** Host header of the OTA request: its host part is the endpoint when `server.mqtt.public_host` is empty. */
  host: string | undefined;
  authKey: string;
}

/** Host part of a Host header (`name:port`, `[v6]:port`). */
function hostPart(header: string | undefined): string | undefined {
  const h = header?.trim();
  if (!h) return undefined;
  const v6 = /^\[([^\]]+)\]/.exec(h);
  return v6 ? `[${v6[1]}]` : h.split(':')[0];
}

/**
 * The OTA `mqtt` block, or undefined when devices should stay on WebSocket (the firmware prefers `mqtt` when both
 * are present). Linus's own MQTT transport, when it runs, wins: its endpoint and credentials signed with
 * `server.mqtt_signature_key` (else the device-token key). Otherwise `server.mqtt_gateway` sends devices to that
 * gateway (endpoint verbatim) with credentials signed by `server.mqtt_signature_key`, as the reference does.
 */
export function otaMqttBlock(
  config: LinusConfig,
  deviceId: string,
  body: unknown,
  own?: OwnMqtt,
): Record<string, string> | undefined {
  let endpoint: string;
  let key: string;
  let broker: OwnMqtt['broker'];
  if (own) {
    broker = own.broker;
    const host = config.server.mqtt.public_host || broker?.host || hostPart(own.host) || config.server.ip;
    endpoint = `${host}:${own.port}`;
    key = mqttSigningKey(config, own.authKey);
  } else {
    const gateway = config.server.mqtt_gateway?.trim();
    if (!gateway) return undefined;
    endpoint = gateway;
    key = config.server.mqtt_signature_key ?? '';
  }
  const credentials = issueMqttCredentials(key, deviceId, otaDeviceModel(body));
  return {
    endpoint,
    ...credentials,
    ...(broker
      ? brokerTopics(broker.topicPrefix, credentials.client_id)
      : { publish_topic: PUBLISH_TOPIC, subscribe_topic: subscribeTopic(deviceId) }),
  };
}

/** The key MQTT passwords are signed with: `server.mqtt_signature_key`, else the device-token key. */
export function mqttSigningKey(config: LinusConfig, authKey: string): string {
  return config.server.mqtt_signature_key || authKey;
}
