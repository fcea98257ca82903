import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import { errorMessage } from '../../errors.js';
import type { ActivationStore } from '../../store/activation.js';
import { activationPasses } from '../device-auth.js';
import { budgetKey, type SecretThrottle } from '../secret-throttle.js';
import { verifyMqttLogin, type MqttLogin } from './credentials.js';
import { startDeviceHub, plainAddress, type HubDeps, type HubDevice } from './hub.js';
import { mqttSigningKey, subscribeTopic } from './ota.js';

/** MQTT CONNACK return codes (v3.1.1) used for refusals. */
const SERVER_UNAVAILABLE = 3;
const BAD_USERNAME_OR_PASSWORD = 4;
const NOT_AUTHORIZED = 5;

export interface MqttTransportDeps extends HubDeps {
  activations: ActivationStore;
  /** Wrong passwords are wrong secrets: counted per address, and an address backing off is not checked at all. */
  throttle: SecretThrottle;
}

export interface MqttTransport {
  /** Where devices connect: the embedded broker's bound port (differs from the config when it asks for 0), or the external broker's. */
  readonly mqttPort: number;
  readonly udpPort: number;
  /** With an external broker (broker-client.ts): its host and the topic prefix, for OTA. */
  readonly broker?: { host: string; topicPrefix: string };
  close(): Promise<void>;
}

type Ok<T> = T extends { ok: true } ? T : never;

function refusal(message: string, returnCode: number): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

/**
 * Linus's own MQTT + UDP transport with an embedded broker (aedes) for the JSON messages; the device hub
 * (hub.ts) does the rest. Devices log in with the OTA-issued credentials, checked here at CONNECT.
 */
export async function startMqttTransport(deps: MqttTransportDeps): Promise<MqttTransport> {
  const { ctx } = deps;
  const { metrics, log } = ctx;
  const initial = ctx.config.current.server;
  const devices = new Map<Client, HubDevice>();
  const logins = new WeakMap<Client, Ok<MqttLogin>>();
  const hub = await startDeviceHub(deps);
  const broker = await Aedes.createBroker({
    authenticate(client, username, password, done) {
      const config = ctx.config.current;
      const address = budgetKey((client.conn as Socket).remoteAddress);
      if (deps.throttle.retryAfterMs(address, 'device') > 0) {
        metrics.rejectedUpgrades.labels('throttled').inc();
        done(refusal('too many wrong passwords from this address; retry later', SERVER_UNAVAILABLE), null);
        return;
      }
      const login = verifyMqttLogin(mqttSigningKey(config, ctx.authKey), client.id, username, password);
      if (!login.ok) {
        if (password?.length) deps.throttle.failed(address, 'device');
        metrics.rejectedUpgrades.labels('auth').inc();
        log.warn({ client: client.id, reason: login.reason }, 'MQTT login refused');
        done(refusal(login.reason, BAD_USERNAME_OR_PASSWORD), null);
        return;
      }
      if (!deps.accepting()) {
        metrics.rejectedUpgrades.labels('draining').inc();
        done(refusal('server is shutting down', SERVER_UNAVAILABLE), null);
        return;
      }
      const admit = (): void => {
        logins.set(client, login);
        done(null, true);
      };
      activationPasses(config, deps.activations, login.deviceId, metrics.rejectedUpgrades.labels('not_activated')).then(
        (activated) => {
          if (activated) return admit();
          done(refusal('device is not activated', NOT_AUTHORIZED), null);
        },
        (err: unknown) => {
          log.warn({ client: client.id, err: errorMessage(err) }, 'MQTT login refused: the store is unreachable');
          done(refusal('the store is unreachable; retry later', SERVER_UNAVAILABLE), null);
        },
      );
    },
    // Server messages go straight to their device; nothing a device publishes is forwarded to other clients.
    authorizeForward: (_client, packet) => ((packet as { clientId?: string }).clientId ? null : packet),
    // The broker stores retained messages and queues for offline subscribers before any handler of ours runs:
    // nothing is retained, and a device may subscribe only to its own topic, so no client can grow that memory.
    authorizePublish: (_client, packet, callback) => {
      packet.retain = false;
      callback(null);
    },
    authorizeSubscribe: (client, subscription, callback) => {
      const own = subscribeTopic(logins.get(client)?.deviceId ?? client?.id ?? '');
      callback(null, subscription.topic === own ? subscription : null);
    },
  });
  const mqttServer: Server = createServer(broker.handle);
  await listenOn(mqttServer, initial.mqtt.port, initial.ip).catch(async (err: unknown) => {
    mqttServer.close();
    await new Promise<void>((r) => broker.close(() => r()));
    await hub.close();
    throw err;
  });
  const mqttPort = (mqttServer.address() as AddressInfo).port;

  // At CONNACK, not at 'clientReady': aedes handles the client's packets from CONNACK on, while 'clientReady' waits
  // for its session queue, so a hello published right after CONNACK would find no device (seen under load).
  broker.on('connackSent', (_packet, client) => {
    const login = logins.get(client);
    if (!login) return;
    const conn = client.conn as Socket;
    const topic = subscribeTopic(login.deviceId);
    devices.set(
      client,
      hub.attach({
        deviceId: login.deviceId,
        clientId: login.clientId,
        publish: (json, cb) =>
          client.publish({ cmd: 'publish', topic, payload: Buffer.from(json), qos: 0, retain: false, dup: false }, cb),
        ...(conn.remoteAddress ? { remoteAddress: plainAddress(conn.remoteAddress) } : {}),
        reachedAt: ctx.config.current.server.mqtt.public_host || plainAddress(conn.localAddress) || initial.ip,
      }),
    );
  });
  broker.on('publish', (packet, client) => {
    const device = client ? devices.get(client) : undefined;
    if (device) device.message(Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload));
  });
  broker.on('clientDisconnect', (client) => {
    const device = devices.get(client);
    devices.delete(client);
    device?.gone();
  });
  broker.on('clientError', (client, err) => log.debug({ client: client.id, err: err.message }, 'MQTT client error'));
  mqttServer.on('error', (err) => log.error({ err }, 'MQTT listener error'));
  log.info(
    { mqtt: mqttPort, udp: hub.udpPort },
    `MQTT + UDP transport on ${initial.ip}: MQTT ${mqttPort}, UDP ${hub.udpPort}`,
  );

  let closing: Promise<void> | undefined;
  return {
    mqttPort,
    udpPort: hub.udpPort,
    close() {
      closing ??= (async () => {
        hub.closeChannels();
        await new Promise<void>((r) => broker.close(() => r()));
        await new Promise<void>((r) => mqttServer.close(() => r()));
        await hub.close();
      })();
      return closing;
    },
  };
}

function listenOn(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
