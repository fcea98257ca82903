/**
 * How a talking bench device (bench/voice-client.ts) reaches the server, whatever the transport: text (JSON) and
 * Opus packets out, the same back. `websocket` is the firmware's WebSocket transport (protocol v1, raw Opus
 * frames); `mqtt` is its MQTT + UDP transport as the firmware runs it: OTA for the credentials, JSON published to
 * the OTA publish topic, Opus over UDP with the 16-byte header and AES-128-CTR (src/transport/mqtt/udp-packet.ts).
 * A link is connected once the server's hello arrived; `hello` is that message.
 */
import { randomUUID } from 'node:crypto';
import { createSocket } from 'node:dgram';
import WebSocket from 'ws';
import { connectLikeFirmware, type MqttSettings } from '../src/transport/mqtt/device-client.js';
import { openUdpPacket, parseUdpHeader, sealUdpPacket } from '../src/transport/mqtt/udp-packet.js';
import { deviceId, HELLO } from './shared.js';

export type VoiceTransport = 'websocket' | 'mqtt';

export interface ServerHello {
  type: 'hello';
  session_id?: string;
  audio_params?: { sample_rate?: number; frame_duration?: number };
  udp?: { server: string; port: number; key: string; nonce: string };
}

export interface VoiceLink {
  readonly hello: ServerHello;
  /** A JSON message (already serialized). */
  sendText(text: string): void;
  /** One uplink Opus packet; `timestamp` is its position in ms (UDP carries it, WebSocket v1 does not). */
  sendAudio(opus: Buffer, timestamp: number): void;
  /** Every message from now on: text as a string, audio as the Opus payload. */
  onMessage(handler: (data: Buffer, isBinary: boolean) => void): void;
  onClose(handler: () => void): void;
  close(): void;
}

export interface LinkOptions {
  /** WebSocket URL, or the OTA URL for `mqtt`. */
  url: string;
  timeoutMs: number;
}

export function connectLink(transport: VoiceTransport, n: number, opts: LinkOptions): Promise<VoiceLink> {
  return transport === 'mqtt' ? connectMqtt(n, opts) : connectWebSocket(n, opts);
}

function parseHello(data: Buffer | string): ServerHello | undefined {
  try {
    const msg = JSON.parse(data.toString()) as { type?: string };
    return msg.type === 'hello' ? (msg as ServerHello) : undefined;
  } catch {
    return undefined; // not JSON: not the hello this waits for
  }
}

/** Upgrade with the firmware headers, send hello, resolve on the server hello. */
function connectWebSocket(n: number, opts: LinkOptions): Promise<VoiceLink> {
  const ws = new WebSocket(opts.url, {
    headers: { 'Device-Id': deviceId(n), 'Client-Id': randomUUID(), 'Protocol-Version': '1' },
    perMessageDeflate: false,
    handshakeTimeout: opts.timeoutMs,
  });
  ws.on('error', () => {}); // a later socket error must not crash the process; the close is seen by the device
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`no hello reply within ${opts.timeoutMs} ms`)), opts.timeoutMs);
    const detach = (): void => {
      clearTimeout(timer);
      ws.off('message', onMessage);
      ws.off('close', onClose);
      ws.off('unexpected-response', onRefused);
    };
    const fail = (err: Error): void => {
      detach();
      ws.terminate();
      reject(err);
    };
    const onClose = (): void => fail(new Error('closed before hello reply'));
    const onRefused = (_req: unknown, res: { statusCode?: number }): void =>
      fail(new Error(`upgrade refused: HTTP ${res.statusCode}`));
    const onMessage = (data: Buffer, isBinary: boolean): void => {
      const hello = isBinary ? undefined : parseHello(data);
      if (!hello) return;
      detach();
      resolve({
        hello,
        sendText: (text) => ws.send(text),
        sendAudio: (opus) => ws.send(opus),
        onMessage: (handler) => ws.on('message', handler),
        onClose: (handler) => ws.on('close', handler),
        close() {
          if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1000, 'bench done');
        },
      });
    };
    ws.once('open', () => ws.send(HELLO));
    ws.on('message', onMessage);
    ws.once('unexpected-response', onRefused);
    ws.once('close', onClose);
  });
}

const MQTT_HELLO = JSON.stringify({
  type: 'hello',
  version: 3,
  transport: 'udp',
  features: { mcp: false },
  audio_params: { format: 'opus', sample_rate: 16000, channels: 1, frame_duration: 60 },
});

/** OTA → MQTT CONNECT with the issued credentials → hello → the UDP channel of the server hello. */
async function connectMqtt(n: number, opts: LinkOptions): Promise<VoiceLink> {
  const id = deviceId(n);
  const res = await fetch(opts.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'device-id': id, 'client-id': randomUUID() },
    body: JSON.stringify({ application: { version: '1.6.2' }, mac_address: id }),
    signal: AbortSignal.timeout(opts.timeoutMs),
  });
  const settings = ((await res.json()) as { mqtt?: MqttSettings }).mqtt;
  if (!settings) throw new Error(`OTA at ${opts.url} answered no mqtt block (HTTP ${res.status})`);
  const client = await connectLikeFirmware(settings);
  client.on('error', () => {}); // seen as a close by the device
  const udp = createSocket('udp4');
  udp.on('error', () => {}); // a send to a closed port; the turn's own timeout tells
  const textHandlers: ((data: Buffer, isBinary: boolean) => void)[] = [];
  let hello: ServerHello | undefined;
  let onHello: ((h: ServerHello) => void) | undefined;
  client.on('message', (_topic, payload) => {
    if (!hello) {
      const h = parseHello(payload);
      if (h) onHello?.(h);
      return;
    }
    for (const h of textHandlers) h(payload, false);
  });
  try {
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    hello = await new Promise<ServerHello>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no hello reply within ${opts.timeoutMs} ms`)), opts.timeoutMs);
      onHello = (h) => {
        clearTimeout(timer);
        resolve(h);
      };
      client.publish(settings.publish_topic, MQTT_HELLO);
    });
    if (!hello.udp) throw new Error('the server hello has no udp block');
  } catch (err) {
    udp.close();
    client.end(true);
    throw err;
  }
  const channel = {
    key: Buffer.from(hello.udp.key, 'hex'),
    nonce: Buffer.from(hello.udp.nonce, 'hex'),
    server: hello.udp.server,
    port: hello.udp.port,
  };
  let sequence = 0;
  let lastSequence = 0;
  let open = true;
  udp.on('message', (packet: Buffer) => {
    const parsed = parseUdpHeader(packet);
    // Older than the last one: dropped, as the firmware does.
    if (!parsed.ok || parsed.header.sequence < lastSequence) return;
    lastSequence = parsed.header.sequence;
    const opus = openUdpPacket(channel.key, packet);
    for (const h of textHandlers) h(opus, true);
  });
  const sessionId = hello.session_id ?? '';
  return {
    hello,
    sendText: (text) => void client.publish(settings.publish_topic, text),
    sendAudio(opus, timestamp) {
      if (open)
        udp.send(sealUdpPacket(channel.key, channel.nonce, opus, timestamp, ++sequence), channel.port, channel.server);
    },
    onMessage: (handler) => void textHandlers.push(handler),
    onClose: (handler) => void client.on('close', handler),
    close() {
      if (!open) return;
      open = false;
      client.publish(settings.publish_topic, JSON.stringify({ type: 'goodbye', session_id: sessionId }), () =>
        client.end(),
      );
      udp.close();
    },
  };
}
