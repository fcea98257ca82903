import { randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { parseJsonObject } from '../../json.js';
import type { HandshakeIds } from '../../protocol/ids.js';
import { RateWindow } from '../../rate.js';
import { Session, type ConnectionInfo, type ServerContext } from '../../session/session.js';
import { UdpChannel, type ChannelLink, type UdpPeer } from './channel.js';
import { parseUdpHeader } from './udp-packet.js';

export interface HubDeps {
  ctx: ServerContext;
  accepting: () => boolean;
  connectionCount: () => number;
  /** The same hook a WebSocket session goes through (session set, voice, private config). */
  onSession: (session: Session) => void;
}

/** One device on MQTT, as its broker front-end (embedded or external) knows it. */
export interface MqttDeviceLink {
  deviceId: string;
  clientId: string;
  /** Publishes one JSON message where this device receives it. */
  publish(json: string, cb: (err?: Error) => void): void;
  /** The device's address, when the front-end sees it (the embedded broker does; a remote broker does not). */
  remoteAddress?: string;
  /** The host the device reached us at: the server hello's UDP host when `server.udp.public_host` is empty. */
  reachedAt: string;
  /** The device has no channel any more (after a message without one, or when its channel ended). */
  idle?: () => void;
}

/** What a front-end does with its device: hand it what it published, and say when it is gone. */
export interface HubDevice {
  message(payload: Buffer): void;
  gone(): void;
}

export interface DeviceHub {
  readonly udpPort: number;
  attach(link: MqttDeviceLink): HubDevice;
  /** Ends every open channel with a goodbye (the front-end still delivers it). */
  closeChannels(): void;
  close(): Promise<void>;
}

/**
 * The part of the MQTT + UDP transport that does not depend on the broker: one UDP socket for the audio of every
 * device, and per device the hello → channel → session life (hello opens a channel the session sees as its
 * socket; goodbye from either side, a new hello or the device's disconnection closes it).
 */
export async function startDeviceHub(deps: HubDeps): Promise<DeviceHub> {
  const { ctx } = deps;
  const { metrics, log } = ctx;
  const initial = ctx.config.current.server;
  const channels = new Map<number, UdpChannel>();
  const udp: UdpSocket = createSocket(initial.ip.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(initial.udp.port, initial.ip, () => {
      udp.off('error', reject);
      resolve();
    });
  });
  const udpPort = udp.address().port;

  function newSsrc(): number {
    for (;;) {
      const ssrc = randomBytes(4).readUInt32BE(0);
      if (ssrc !== 0 && !channels.has(ssrc)) return ssrc;
    }
  }

  function openChannel(link: MqttDeviceLink, released: (channel: UdpChannel) => void): UdpChannel | undefined {
    const config = ctx.config.current.server;
    if (!deps.accepting() || deps.connectionCount() >= config.max_connections) {
      metrics.rejectedUpgrades.labels(deps.accepting() ? 'max_connections' : 'draining').inc();
      return undefined;
    }
    const channelLink: ChannelLink = {
      publish: (json, cb) => link.publish(json, cb),
      sendUdp: (packet, to, cb) => udp.send(packet, to.port, to.address, (err) => cb(err ?? undefined)),
      udp: { server: config.udp.public_host || link.reachedAt, port: udpPort },
      released: (channel) => {
        channels.delete(channel.ssrc);
        released(channel);
      },
      metrics,
    };
    const channel = new UdpChannel(newSsrc(), channelLink);
    channels.set(channel.ssrc, channel);
    const ids: HandshakeIds = { deviceId: link.deviceId, clientId: link.clientId, source: 'mqtt', fromGateway: true };
    const info: ConnectionInfo = {
      ids,
      path: 'mqtt',
      // The HTTP side (vision explain URL) at the host the device reached us at, as a WebSocket's Host header gives.
      ...(config.port > 0 ? { host: `${link.reachedAt}:${config.port}` } : {}),
      ...(link.remoteAddress ? { remoteAddress: link.remoteAddress } : {}),
    };
    const session = new Session(channel, info, ctx);
    channel.sessionId = session.sessionId;
    deps.onSession(session);
    session.start();
    return channel;
  }

  function attach(link: MqttDeviceLink): HubDevice {
    let channel: UdpChannel | undefined;
    // Publishes per second, before any session sees them: a hello flood must not cost other devices.
    const rate = new RateWindow();
    const released = (c: UdpChannel): void => {
      if (channel !== c) return;
      channel = undefined;
      link.idle?.();
    };
    const publish = (json: string): void => link.publish(json, () => {});
    return {
      message(payload) {
        if (!rate.admit(ctx.config.current.server.max_messages_per_second)) {
          metrics.badFrames.labels('rate_limited').inc();
          return;
        }
        // Not a JSON object: the open session counts and answers it like any bad frame.
        const message = parseJsonObject(payload.toString('utf8'));
        const type = message?.type;
        if (type === 'hello') {
          // Forgotten before it ends, so its release does not mark the device idle: a new channel follows.
          const old = channel;
          channel = undefined;
          old?.end(1000, 'new hello');
          channel = openChannel(link, released);
          if (channel) channel.receiveJson(payload);
          else {
            publish(JSON.stringify({ type: 'goodbye' }));
            link.idle?.();
          }
          return;
        }
        if (!channel) {
          // No session: tell the device its channel is gone, as the gateway does (never answer a goodbye).
          if (type !== 'goodbye') {
            const sessionId = typeof message?.session_id === 'string' ? message.session_id : undefined;
            publish(JSON.stringify({ type: 'goodbye', ...(sessionId ? { session_id: sessionId } : {}) }));
          }
          link.idle?.();
          return;
        }
        if (type === 'goodbye') channel.end(1000, 'device goodbye');
        else channel.receiveJson(payload);
      },
      gone() {
        channel?.end(1000, 'MQTT disconnected');
      },
    };
  }

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

  const closeChannels = (): void => {
    for (const channel of [...channels.values()]) channel.close(1001, 'server shutdown');
  };
  let closing: Promise<void> | undefined;
  return {
    udpPort,
    attach,
    closeChannels,
    close() {
      closing ??= (async () => {
        closeChannels();
        await new Promise<void>((r) => udp.close(() => r()));
      })();
      return closing;
    },
  };
}

/** An IPv4 address as Node gives it on a dual-stack socket (`::ffff:1.2.3.4`), without the prefix. */
export const plainAddress = (address: string | undefined): string => (address ?? '').replace(/^::ffff:/, '');
