import { createCipheriv } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import type { MqttClient } from 'mqtt';
import { parseJsonObject } from '../../src/json.js';
import { connectLikeFirmware, type MqttSettings } from '../../src/transport/mqtt/device-client.js';
import { Inbox, UplinkEncoder, type Json } from './device.js';
import type { TestServer } from './server.js';

export type { MqttSettings };

/** Linus's own MQTT + UDP transport on free ports only: a Mosquitto may hold 1883 on this machine. */
export const OWN_TRANSPORT = { server: { mqtt: { enabled: true, port: 0 }, udp: { port: 0 } } };

/** The firmware's boot: OTA, whose `mqtt` block it stores and connects with. */
export async function otaMqtt(server: TestServer, mac: string): Promise<MqttSettings> {
  const res = await fetch(server.url('/xiaozhi/ota/'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'device-id': mac, 'client-id': `${mac}-uuid` },
    body: JSON.stringify({ application: { version: '1.6.2' }, mac_address: mac }),
  });
  const reply = (await res.json()) as Json;
  if (!reply.mqtt) throw new Error(`OTA answered no mqtt block: ${JSON.stringify(reply)}`);
  return reply.mqtt as MqttSettings;
}

export interface DownlinkPacket {
  timestamp: number;
  sequence: number;
  payload: Buffer;
}

/** AES-128-CTR with the packet header as the counter block, written here independently of the server's code. */
function ctr(key: Buffer, header: Buffer, data: Buffer): Buffer {
  const c = createCipheriv('aes-128-ctr', key, header);
  return Buffer.concat([c.update(data), c.final()]);
}

/**
 * A test device that behaves like the firmware's MQTT + UDP transport (`mqtt_protocol.cc`): CONNECT with the OTA
 * credentials, JSON published to `publish_topic` (it never subscribes), a hello with `transport: "udp"`, then Opus
 * over UDP in packets whose header is the server's nonce with length, timestamp and sequence written in, encrypted
 * with AES-128-CTR; it drops downlink packets older than the last one, as the firmware does.
 */
export class MqttTestDevice {
  readonly inbox = new Inbox();
  /** Decrypted downlink audio, in arrival order. */
  readonly downlink: DownlinkPacket[] = [];
  /** Every datagram this device sent, as sent (for replay tests). */
  readonly sent: Buffer[] = [];
  readonly client: MqttClient;
  readonly settings: MqttSettings;
  #udp: Socket | undefined;
  #server: { address: string; port: number } | undefined;
  #key: Buffer | undefined;
  #nonce: Buffer | undefined;
  #localSequence = 0;
  #remoteSequence = 0;
  readonly #uplink = new UplinkEncoder();
  readonly #sending = new Set<Promise<void>>();

  private constructor(client: MqttClient, settings: MqttSettings) {
    this.client = client;
    this.settings = settings;
    client.on('message', (_topic, payload) => {
      const msg = parseJsonObject(payload.toString('utf8'));
      if (msg) this.inbox.push(msg);
    });
  }

  /**
   * Connects with the OTA settings; rejects with the broker's refusal (e.g. a wrong password). `subscribe` stands
   * in for a broker that subscribes devices to their topic on connect (EMQX auto-subscribe): Mosquitto does not.
   */
  static async connect(settings: MqttSettings, subscribe = false): Promise<MqttTestDevice> {
    const client = await connectLikeFirmware(settings);
    if (subscribe && settings.subscribe_topic) await client.subscribeAsync(settings.subscribe_topic, { qos: 0 });
    return new MqttTestDevice(client, settings);
  }

  send(msg: Json): void {
    this.client.publish(this.settings.publish_topic, JSON.stringify(msg));
  }

  /** The firmware's hello; on the server's answer it opens its UDP socket with the key and nonce given. */
  async hello(): Promise<Json> {
    this.send({
      type: 'hello',
      version: 3,
      transport: 'udp',
      features: { mcp: true },
      audio_params: { format: 'opus', sample_rate: 16000, channels: 1, frame_duration: 60 },
    });
    const hello = await this.inbox.next('hello', 3000);
    const udp = hello.udp as { server: string; port: number; key: string; nonce: string };
    this.#key = Buffer.from(udp.key, 'hex');
    this.#nonce = Buffer.from(udp.nonce, 'hex');
    this.#server = { address: udp.server, port: udp.port };
    this.#localSequence = 0;
    this.#remoteSequence = 0;
    await this.rebind();
    return hello;
  }

  /** A new UDP socket, so the server sees another source port (a NAT rebinding). */
  async rebind(): Promise<void> {
    await this.flush();
    this.#udp?.close();
    const udp = createSocket('udp4');
    udp.on('message', (packet) => this.#onDatagram(packet));
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    this.#udp = udp;
  }

  get udpPort(): number {
    return this.#udp!.address().port;
  }

  #onDatagram(packet: Buffer): void {
    if (packet.length < 16 || packet[0] !== 0x01 || !this.#key) return;
    const sequence = packet.readUInt32BE(12);
    if (sequence < this.#remoteSequence) return;
    this.#remoteSequence = sequence;
    const payload = ctr(this.#key, packet.subarray(0, 16), packet.subarray(16));
    this.downlink.push({ timestamp: packet.readUInt32BE(8), sequence, payload });
  }

  /** One Opus packet over UDP, framed and encrypted as the firmware does. */
  sendOpus(packet: Buffer, timestamp = 0): void {
    const header = Buffer.from(this.#nonce!);
    header.writeUInt16BE(packet.length, 2);
    header.writeUInt32BE(timestamp >>> 0, 8);
    header.writeUInt32BE(++this.#localSequence, 12);
    this.sendDatagram(Buffer.concat([header, ctr(this.#key!, header, packet)]));
  }

  sendDatagram(datagram: Buffer): void {
    this.sent.push(datagram);
    const sending = new Promise<void>((resolve) =>
      this.#udp!.send(datagram, this.#server!.port, this.#server!.address, () => resolve()),
    );
    this.#sending.add(sending);
    void sending.then(() => this.#sending.delete(sending));
  }

  /** Resolves when every datagram sent so far has left the socket. */
  async flush(): Promise<void> {
    await Promise.all([...this.#sending]);
  }

  encodePcm(pcm: Buffer): Buffer[] {
    return this.#uplink.encode(pcm);
  }

  get open(): boolean {
    return this.client.connected && this.#udp !== undefined;
  }

  next(match: string | ((m: Json) => boolean), timeoutMs = 2000): Promise<Json> {
    return this.inbox.next(match, timeoutMs);
  }

  /** Closes the audio channel the firmware's way: a goodbye with the session id. */
  goodbye(sessionId: string): void {
    this.send({ type: 'goodbye', session_id: sessionId });
    this.#udp?.close();
    this.#udp = undefined;
  }

  async close(): Promise<void> {
    this.#udp?.close();
    this.#udp = undefined;
    await this.client.endAsync();
  }
}
