import { randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import { parseJsonObject } from '../../json.js';
import type { HandshakeIds } from '../../protocol/ids.js';
import { RateWindow } from '../../rate.js';
import { Session, type ConnectionInfo, type ServerContext } from '../../session/session.js';
import type { ActivationStore } from '../../store/activation.js';
import { budgetKey, type SecretThrottle } from '../secret-throttle.js';
import { UdpChannel, type ChannelLink, type UdpPeer } from './channel.js';
import { verifyMqttLogin, type MqttLogin } from './credentials.js';
import { mqttSigningKey, subscribeTopic } from './ota.js';
import { parseUdpHeader } from './udp-packet.js';

/** MQTT CONNACK return codes (v3.1.1) used for refusals. */
const SERVER_UNAVAILABLE = 3;
const BAD_USERNAME_OR_PASSWORD = 4;
const NOT_AUTHORIZED = 5;

export interface MqttTransportDeps {
  ctx: ServerContext;
  activations: ActivationStore;
  accepting: () => boolean;
  connectionCount: () => number;
  /** Wrong passwords are wrong secrets: counted per address, and an address backing off is not checked at all. */
  throttle: SecretThrottle;
  /** The same hook a WebSocket session goes through (session set, voice, private config). */
  onSession: (session: Session) => void;
}

export interface MqttTransport {
  /** Bound ports (differ from the config when it asks for 0). */
  readonly mqttPort: number;
  readonly udpPort: number;
  close(): Promise<void>;
}

type Ok<T> = T extends { ok: true } ? T : never;

/** One connected MQTT client: its identity from CONNECT and its open audio channel, if any. */
interface MqttDevice {
  client: Client;
  login: Ok<MqttLogin>;
  channel: UdpChannel | undefined;
  /** Publishes per second, before any session sees them: a hello flood must not cost other devices. */
  rate: RateWindow;
}

function refusal(message: string, returnCode: number): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

const plainAddress = (address: string | undefined): string => (address ?? '').replace(/^::ffff:/, '');

/**
 * Linus's own MQTT + UDP transport: an embedded broker (aedes) for the JSON messages and one UDP socket for the
 * audio of every device. Each device `hello` opens a channel that the session sees as its socket; `goodbye`
 * (either side), a new hello or the end of the MQTT connection closes it.
 */
export async function startMqttTransport(deps: MqttTransportDeps): Promise<MqttTransport> {
  const { ctx } = deps;
  const { metrics, log } = ctx;
  const initial = ctx.config.current.server;
  const devices = new Map<Client, MqttDevice>();
  const logins = new WeakMap<Client, Ok<MqttLogin>>();
  const channels = new Map<number, UdpChannel>();

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
      if (config.server.activation.enabled && !deps.activations.isActivated(login.deviceId)) {
        metrics.rejectedUpgrades.labels('not_activated').inc();
        done(refusal('device is not activated', NOT_AUTHORIZED), null);
        return;
      }
      logins.set(client, login);
      done(null, true);
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

  const udp: UdpSocket = createSocket(initial.ip.includes(':') ? 'udp6' : 'udp4');
  const mqttServer: Server = createServer(broker.handle);
  await Promise.all([
    listenOn(mqttServer, initial.mqtt.port, initial.ip),
    new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(initial.udp.port, initial.ip, () => {
        udp.off('error', reject);
        resolve();
      });
    }),
  ]).catch(async (err: unknown) => {
    udp.close();
    mqttServer.close();
    await new Promise<void>((r) => broker.close(() => r()));
    throw err;
  });
  const mqttPort = (mqttServer.address() as AddressInfo).port;
  const udpPort = udp.address().port;

  const publish = (client: Client, json: string, cb: (err?: Error) => void): void => {
    const topic = subscribeTopic(logins.get(client)?.deviceId ?? client.id);
    client.publish({ cmd: 'publish', topic, payload: Buffer.from(json), qos: 0, retain: false, dup: false }, cb);
  };

  function newSsrc(): number {
    for (;;) {
      const ssrc = randomBytes(4).readUInt32BE(0);
      if (ssrc !== 0 && !channels.has(ssrc)) return ssrc;
    }
  }

  function openChannel(device: MqttDevice): UdpChannel | undefined {
    const config = ctx.config.current.server;
    if (!deps.accepting() || deps.connectionCount() >= config.max_connections) {
      metrics.rejectedUpgrades.labels(deps.accepting() ? 'max_connections' : 'draining').inc();
      return undefined;
    }
    const conn = device.client.conn as Socket;
    const reachedAt = config.mqtt.public_host || plainAddress(conn.localAddress) || config.ip;
    const link: ChannelLink = {
      publish: (json, cb) => publish(device.client, json, cb),
      sendUdp: (packet, to, cb) => udp.send(packet, to.port, to.address, (err) => cb(err ?? undefined)),
      udp: {
        server: config.udp.public_host || reachedAt,
        port: udpPort,
      },
      released: (channel) => {
        channels.delete(channel.ssrc);
        if (device.channel === channel) device.channel = undefined;
      },
      metrics,
    };
    const channel = new UdpChannel(newSsrc(), link);
    channels.set(channel.ssrc, channel);
    device.channel = channel;
    const ids: HandshakeIds = {
      deviceId: device.login.deviceId,
      clientId: device.login.clientId,
      source: 'mqtt',
      fromGateway: true,
    };
    const info: ConnectionInfo = {
      ids,
      path: 'mqtt',
      // The HTTP side (vision explain URL) at the host the device reached us at, as a WebSocket's Host header gives.
      ...(config.port > 0 ? { host: `${reachedAt}:${config.port}` } : {}),
      ...(conn.remoteAddress ? { remoteAddress: plainAddress(conn.remoteAddress) } : {}),
    };
    const session = new Session(channel, info, ctx);
    channel.sessionId = session.sessionId;
    deps.onSession(session);
    session.start();
    return channel;
  }

  /** A message the device published: hello opens a channel, goodbye closes it, the rest goes to the session. */
  function onDeviceMessage(device: MqttDevice, payload: Buffer): void {
    if (!device.rate.admit(ctx.config.current.server.max_messages_per_second)) {
      metrics.badFrames.labels('rate_limited').inc();
      return;
    }
    // Not a JSON object: the open session counts and answers it like any bad frame.
    const message = parseJsonObject(payload.toString('utf8'));
    const type = message?.type;
    if (type === 'hello') {
      device.channel?.end(1000, 'new hello');
      const channel = openChannel(device);
      if (channel) channel.receiveJson(payload);
      else publish(device.client, JSON.stringify({ type: 'goodbye' }), () => {});
      return;
    }
    if (!device.channel) {
      // No session: tell the device its channel is gone, as the gateway does (never answer a goodbye).
      if (type !== 'goodbye') {
        const sessionId = typeof message?.session_id === 'string' ? message.session_id : undefined;
        publish(
          device.client,
          JSON.stringify({ type: 'goodbye', ...(sessionId ? { session_id: sessionId } : {}) }),
          () => {},
        );
      }
      return;
    }
    if (type === 'goodbye') device.channel.end(1000, 'device goodbye');
    else device.channel.receiveJson(payload);
  }

  broker.on('clientReady', (client) => {
    const login = logins.get(client);
    if (login) devices.set(client, { client, login, channel: undefined, rate: new RateWindow() });
  });
  broker.on('publish', (packet, client) => {
    const device = client ? devices.get(client) : undefined;
    if (device) onDeviceMessage(device, Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload));
  });
  broker.on('clientDisconnect', (client) => {
    const device = devices.get(client);
    devices.delete(client);
    device?.channel?.end(1000, 'MQTT disconnected');
  });
  broker.on('clientError', (client, err) => log.debug({ client: client.id, err: err.message }, 'MQTT client error'));

  udp.on('message', (packet: Buffer, from: RemoteInfo) => {
    const parsed = parseUdpHeader(packet);
    if (!parsed.ok) {
      metrics.badFrames.labels(parsed.reason).inc();
      return;
    }
    const channel = channels.get(parsed.header.ssrc);
    const refused = channel
      ? channel.receiveUdp(packet, parsed.header, { address: from.address, port: from.port } satisfies UdpPeer)
      : 'udp_unknown_session';
    if (refused) metrics.badFrames.labels(refused).inc();
  });
  udp.on('error', (err) => log.error({ err }, 'UDP socket error'));
  mqttServer.on('error', (err) => log.error({ err }, 'MQTT listener error'));

  log.info({ mqtt: mqttPort, udp: udpPort }, `MQTT + UDP transport on ${initial.ip}: MQTT ${mqttPort}, UDP ${udpPort}`);

  let closing: Promise<void> | undefined;
  return {
    mqttPort,
    udpPort,
    close() {
      closing ??= (async () => {
        for (const channel of [...channels.values()]) channel.close(1001, 'server shutdown');
        await new Promise<void>((r) => broker.close(() => r()));
        await new Promise<void>((r) => mqttServer.close(() => r()));
        await new Promise<void>((r) => udp.close(() => r()));
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
