import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { connect, type MqttClient } from 'mqtt';
import { errorMessage } from '../../errors.js';
import { activationPasses } from '../device-auth.js';
import { parseMqttClientId } from './credentials.js';
import { startDeviceHub, plainAddress, type HubDevice } from './hub.js';
import { brokerTopics, brokerUplinkFilter } from './ota.js';
import type { MqttTransport, MqttTransportDeps } from './transport.js';

/** MQTT's registered ports, plain and over TLS. */
const defaultPort = (url: URL): number => (/^(mqtts|ssl):$/.test(url.protocol) ? 8883 : 1883);

/** The broker URL without its password, for logs and errors. */
export function redactedUrl(url: URL): string {
  const shown = new URL(url.href);
  if (shown.password) shown.password = '***';
  return shown.href;
}

const isWildcard = (ip: string): boolean => ip === '0.0.0.0' || ip === '::' || ip === '';

/**
 * The MQTT + UDP transport behind an external broker (`server.mqtt.broker_url`: Mosquitto, EMQX): Linus is one
 * more client. It subscribes to every device's publish topic (`<prefix>device-server/<client id>`) and publishes
 * to each device's `<prefix>devices/p2p/<client id>`; OTA hands those topics out. The broker authenticates devices
 * and must keep each to its own topics (its ACLs): the topic is all that names the publisher here. The stock
 * firmware never subscribes, so the broker must subscribe it to its topic on connect (EMQX auto-subscribe).
 * Linus does not see a device's MQTT connection: its channel ends on goodbye, a new hello or the idle timeout.
 */
export async function startBrokerClient(deps: MqttTransportDeps): Promise<MqttTransport> {
  const { ctx } = deps;
  const { metrics, log } = ctx;
  const initial = ctx.config.current.server;
  const url = new URL(initial.mqtt.broker_url);
  const prefix = initial.mqtt.topic_prefix;
  const uplink = brokerUplinkFilter(prefix).slice(0, -1);
  const hub = await startDeviceHub(deps);
  const client: MqttClient = connect(url.href, {
    clientId: `linus-${randomUUID().slice(0, 8)}`,
    protocolVersion: 4,
    clean: true,
    // After the first connection: a broker restart is waited out, subscriptions are renewed on reconnect.
    reconnectPeriod: 2000,
    connectTimeout: 10_000,
    // While the broker is away, messages are dropped rather than queued: a stale reply is worth nothing later.
    queueQoSZero: false,
  });
  // From the start: an 'error' between the connect and the subscription below must not go unheard (it would
  // end the process).
  client.on('error', (err) => log.warn({ err: err.message }, `MQTT broker ${redactedUrl(url)}: ${err.message}`));
  try {
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error): void => {
        detach();
        reject(err);
      };
      // Refused or unreachable: mqtt.js may only close and retry; the first close fails the start.
      const closed = (): void => fail(new Error('connection refused or closed'));
      const ok = (): void => {
        detach();
        resolve();
      };
      const detach = (): void => {
        client.off('connect', ok);
        client.off('error', fail);
        client.off('close', closed);
      };
      client.on('connect', ok);
      client.on('error', fail);
      client.on('close', closed);
    });
    await client.subscribeAsync(brokerUplinkFilter(prefix), { qos: 0 });
  } catch (err) {
    client.end(true);
    await hub.close();
    throw new Error(`${redactedUrl(url)}: ${errorMessage(err)}`, { cause: err });
  }
  const stream = client.stream as Socket | undefined;
  const reachedAt = isWildcard(initial.ip) ? plainAddress(stream?.localAddress) || initial.ip : initial.ip;

  /** Devices by client id, from their first message until their channel ends. */
  const devices = new Map<string, HubDevice>();
  /**
   * Messages of a client id whose activation is being read from the store, in arrival order: delivered once it is
   * known, so a hello and the audio right behind it stay in order. Bounded: a device does not outrun one read.
   */
  const waiting = new Map<string, Buffer[]>();
  const MAX_WAITING = 64;
  let stopping = false;

  function attach(clientId: string, deviceId: string, deviceClientId: string): HubDevice {
    const topic = brokerTopics(prefix, clientId).subscribe_topic;
    const device = hub.attach({
      deviceId,
      clientId: deviceClientId,
      publish: (json, cb) => client.publish(topic, json, { qos: 0, retain: false }, (err) => cb(err)),
      reachedAt,
      idle: () => devices.delete(clientId),
    });
    devices.set(clientId, device);
    return device;
  }

  function onUplink(clientId: string, payload: Buffer): void {
    const known = devices.get(clientId);
    if (known) return known.message(payload);
    const queued = waiting.get(clientId);
    if (queued) {
      if (queued.length < MAX_WAITING) queued.push(payload);
      else metrics.badFrames.labels('mqtt_unknown_device').inc();
      return;
    }
    const ids = parseMqttClientId(clientId);
    if (!ids) {
      metrics.badFrames.labels('mqtt_unknown_device').inc();
      return;
    }
    waiting.set(clientId, [payload]);
    const settle = (activated: boolean): void => {
      const messages = waiting.get(clientId) ?? [];
      waiting.delete(clientId);
      if (stopping) return;
      if (!activated) return;
      const device = attach(clientId, ids.deviceId, ids.clientId);
      for (const m of messages) device.message(m);
    };
    const refused = metrics.rejectedUpgrades.labels('not_activated');
    activationPasses(ctx.config.current, deps.activations, ids.deviceId, refused).then(settle, (err: unknown) => {
      // The store is unreachable: the messages are dropped and the device retries (its next message asks again).
      log.warn({ device: ids.deviceId, err: errorMessage(err) }, 'MQTT device: activation unknown, store unreachable');
      settle(false);
    });
  }

  client.on('message', (topic, payload) => {
    if (topic.startsWith(uplink)) onUplink(topic.slice(uplink.length), payload);
    else metrics.badFrames.labels('mqtt_unknown_device').inc();
  });
  client.on('offline', () => log.warn(`MQTT broker ${redactedUrl(url)} unreachable; reconnecting`));
  const port = Number(url.port) || defaultPort(url);
  log.info(
    { broker: redactedUrl(url), udp: hub.udpPort },
    `MQTT + UDP transport through the broker at ${redactedUrl(url)} (topics ${prefix}device-server/+), UDP ${hub.udpPort}`,
  );

  let closing: Promise<void> | undefined;
  return {
    mqttPort: port,
    udpPort: hub.udpPort,
    broker: { host: url.hostname, topicPrefix: prefix },
    close() {
      closing ??= (async () => {
        stopping = true;
        hub.closeChannels();
        // The goodbyes just published leave before the connection does.
        await client.endAsync();
        await hub.close();
      })();
      return closing;
    },
  };
}
