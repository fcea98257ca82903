import { readFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createSocket } from 'node:dgram';
import WebSocket from 'ws';
import { decodeFrame, encodeFrame, type ProtocolVersion } from '../protocol/framing.js';
import { createFliteTts } from '../providers/tts/flite.js';
import type { PcmChunk } from '../providers/types.js';
import { createOpusDecoder, createOpusEncoder } from '../voice/opus.js';
import { concatPcm } from '../voice/pcm.js';
import { createResampler } from '../voice/resample.js';
import { readWav, writeWav } from '../voice/wav.js';
import { errorMessage } from '../errors.js';
import { parseJsonObject } from '../json.js';
import { timeoutSignal } from '../signals.js';
import { connectLikeFirmware, type MqttSettings } from '../transport/mqtt/device-client.js';
import { openUdpPacket, parseUdpHeader, sealUdpPacket } from '../transport/mqtt/udp-packet.js';

export interface SimulateOptions {
  url: string;
  wav?: string;
  say?: string;
  type?: string;
  deviceId: string;
  /** Sent as `Authorization: Bearer` (a server with `server.auth.enabled`). */
  token?: string;
  /** Ask this OTA URL (true: the server's own, from `url`) for the WebSocket URL and token first, as a device does. */
  ota?: string | boolean;
  out?: string;
  protocol: ProtocolVersion;
  /** `mqtt`: `url` is the OTA URL; the simulator then goes OTA → MQTT → UDP as the firmware does. */
  transport?: 'websocket' | 'mqtt';
  manual: boolean;
  timeoutMs: number;
  print: (line: string) => void;
}

export interface SimulateResult {
  stt?: string;
  sentences: string[];
  replyFrames: number;
  replySeconds: number;
  /** End of our speech (last frame sent) → first reply frame, ms. */
  firstAudioMs?: number;
  completed: boolean;
}

const UPLINK_RATE = 16000;
const FRAME_MS = 60;

async function uplinkPcm(opts: SimulateOptions): Promise<Int16Array | undefined> {
  let chunk: PcmChunk | undefined;
  if (opts.wav) chunk = readWav(readFileSync(opts.wav));
  else if (opts.say) {
    const tts = createFliteTts('simulate', {});
    const parts: Int16Array[] = [];
    let rate = UPLINK_RATE;
    for await (const c of tts.synthesize(opts.say, { signal: timeoutSignal(10_000) })) {
      parts.push(c.samples);
      rate = c.sampleRate;
    }
    await tts.dispose();
    chunk = { sampleRate: rate, samples: concatPcm(parts) };
  }
  if (!chunk) return undefined;
  if (chunk.sampleRate === UPLINK_RATE) return chunk.samples;
  const r = createResampler(chunk.sampleRate, UPLINK_RATE);
  const out = concatPcm([r.push(chunk.samples), r.flush()]);
  r.dispose();
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What a refusal's body says: the `error` or `message` of a JSON answer, else its text. */
function refusalReason(body: string): string {
  const json = parseJsonObject(body);
  const reason = json?.error ?? json?.message;
  return typeof reason === 'string' && reason ? reason : body.trim().slice(0, 300);
}

/** The OTA call a device makes before it connects: the WebSocket URL and token the server hands out. */
async function askOta(opts: SimulateOptions, clientId: string): Promise<{ url?: string; token?: string }> {
  const ws = new URL(opts.url);
  const url =
    typeof opts.ota === 'string' ? opts.ota : `${ws.protocol === 'wss:' ? 'https:' : 'http:'}//${ws.host}/xiaozhi/ota/`;
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Device-Id': opts.deviceId, 'Client-Id': clientId, 'content-type': 'application/json' },
    body: JSON.stringify({ application: { version: '0.0.0' }, mac_address: opts.deviceId }),
    signal: timeoutSignal(10_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`OTA ${url} answered HTTP ${res.status}: ${refusalReason(text)}`);
  const answer = (parseJsonObject(text) ?? {}) as {
    websocket?: { url?: string; token?: string };
    activation?: { code?: string; message?: string };
  };
  if (answer.activation) opts.print(`ota: activation needed, code ${String(answer.activation.code)}`);
  const token = answer.websocket?.token || undefined;
  opts.print(`ota: websocket ${String(answer.websocket?.url)}${token ? ', with a token' : ', no token'}`);
  return { ...(answer.websocket?.url ? { url: answer.websocket.url } : {}), ...(token ? { token } : {}) };
}

/** One readable line for a message the simulator does not act on. */
function describeMessage(msg: Record<string, unknown>): string {
  if (msg.type === 'server' && msg.event === 'stats') {
    const online = Array.isArray(msg.online) ? msg.online.length : Number(msg.deviceCount);
    return `server: ${online} device${online === 1 ? '' : 's'} online; CPU ${String(msg.cpuPercent)} %, memory ${String(msg.memUsedMB)} / ${String(msg.memTotalMB)} MB`;
  }
  if (msg.type === 'system') return `system (${String(msg.event)}): ${String(msg.message)}`;
  if (msg.type === 'error') return `error ${String(msg.code)}: ${String(msg.message)}`;
  return `${String(msg.type)}: ${JSON.stringify(msg)}`;
}

/**
 * `linus simulate`: a device simulator that connects like the firmware, speaks a WAV file (or text through
 * the local flite TTS) as 60 ms Opus frames in real time, prints what the server answers, and saves the
 * reply audio to a WAV file.
 */
export async function simulate(opts: SimulateOptions): Promise<SimulateResult> {
  const speech = await uplinkPcm(opts);
  const result: SimulateResult = { sentences: [], replyFrames: 0, replySeconds: 0, completed: false };
  const frames: Buffer[] = [];
  let speaking = false;
  let spokeAt = 0;
  let helloRate = 24000;
  let resolveHello: () => void = () => {};
  const helloSeen = new Promise<void>((r) => (resolveHello = r));
  let resolveDone: () => void = () => {};
  const done = new Promise<void>((r) => (resolveDone = r));

  const audio = (opus: Buffer): void => {
    if (!speaking) return; // the firmware drops audio outside tts start/stop too
    if (result.firstAudioMs === undefined && spokeAt) result.firstAudioMs = Math.round(performance.now() - spokeAt);
    frames.push(opus);
  };
  const text = (raw: string): void => opts.print(`text: ${raw}`);
  const json = (msg: Json): void => {
    if (msg.type === 'hello') {
      helloRate = Number((msg.audio_params as { sample_rate?: number } | undefined)?.sample_rate ?? 24000);
      opts.print(`hello: session ${String(msg.session_id)}, downlink ${helloRate} Hz`);
      resolveHello();
    } else if (msg.type === 'stt') {
      result.stt = String(msg.text);
      opts.print(`stt: ${result.stt}`);
    } else if (msg.type === 'llm') opts.print(`llm: ${String(msg.text)} (${String(msg.emotion)})`);
    else if (msg.type === 'tts') {
      if (msg.state === 'start') speaking = true;
      if (msg.state === 'sentence_start') {
        result.sentences.push(String(msg.text));
        opts.print(`tts: ${String(msg.text)}`);
      }
      if (msg.state === 'stop') {
        speaking = false;
        result.completed = true;
        opts.print('tts: stop');
        resolveDone();
      }
    } else if (msg.type === 'mcp') {
      const payload = msg.payload as { id?: number; method?: string };
      // Answer like a device with no tools, so the server's MCP exchange completes.
      if (payload.method === 'initialize')
        link.sendJson({
          type: 'mcp',
          payload: {
            jsonrpc: '2.0',
            id: payload.id,
            result: {
              protocolVersion: '2024-11-05',
              capabilities: { tools: {} },
              serverInfo: { name: 'linus-simulate', version: '1' },
            },
          },
        });
      else if (payload.method === 'tools/list')
        link.sendJson({
          type: 'mcp',
          payload: { jsonrpc: '2.0', id: payload.id, result: { tools: [], nextCursor: '' } },
        });
    } else opts.print(describeMessage(msg));
  };
  const open = opts.transport === 'mqtt' ? openMqttLink : openWebSocketLink;
  const link = await open(opts, { json, text, audio, close: () => resolveDone() });

  link.sendJson({
    type: 'hello',
    ...link.helloFields,
    features: { mcp: true },
    audio_params: { format: 'opus', sample_rate: UPLINK_RATE, channels: 1, frame_duration: FRAME_MS },
  });
  await Promise.race([helloSeen, sleep(10_000)]);
  const timeout = sleep(opts.timeoutMs);

  if (opts.type !== undefined) {
    // A moment of microphone silence first: over UDP the server learns where to send audio from the device's packets.
    const encoder = createOpusEncoder(UPLINK_RATE, FRAME_MS);
    for (let i = 0; i < 3; i++)
      link.sendAudio(encoder.encode(new Int16Array((UPLINK_RATE * FRAME_MS) / 1000)), i * FRAME_MS);
    encoder.dispose();
    link.sendJson({ type: 'listen', state: 'detect', text: opts.type });
    spokeAt = performance.now();
  } else if (speech) {
    link.sendJson({ type: 'listen', state: 'start', mode: opts.manual ? 'manual' : 'auto' });
    const encoder = createOpusEncoder(UPLINK_RATE, FRAME_MS);
    const frameSamples = (UPLINK_RATE * FRAME_MS) / 1000;
    // Speech, then 1.5 s of silence so the server's VAD sees the end of the utterance.
    const total = speech.length + (opts.manual ? 0 : UPLINK_RATE * 1.5);
    const start = performance.now();
    for (let i = 0, off = 0; off < total; i++, off += frameSamples) {
      const frame = new Int16Array(frameSamples);
      if (off < speech.length) frame.set(speech.subarray(off, Math.min(off + frameSamples, speech.length)));
      link.sendAudio(encoder.encode(frame), Math.round(i * FRAME_MS));
      if (off + frameSamples >= speech.length && !spokeAt) spokeAt = performance.now();
      const wait = start + (i + 1) * FRAME_MS - performance.now();
      if (wait > 0) await sleep(wait);
      if (result.completed) break;
    }
    encoder.dispose();
    if (opts.manual) link.sendJson({ type: 'listen', state: 'stop' });
  }
  await Promise.race([done, timeout]);
  await link.close();

  result.replyFrames = frames.length;
  result.replySeconds = (frames.length * FRAME_MS) / 1000;
  if (opts.out && frames.length) {
    const decoder = createOpusDecoder(helloRate, 1);
    const pcm = concatPcm(frames.map((f) => decoder.decode(f)));
    decoder.dispose();
    writeFileSync(opts.out, writeWav({ sampleRate: helloRate, samples: pcm }));
    opts.print(`saved ${result.replySeconds.toFixed(2)} s of reply audio to ${opts.out}`);
  }
  if (result.firstAudioMs !== undefined)
    opts.print(`first reply audio ${result.firstAudioMs} ms after the end of speech`);
  return result;
}

type Json = Record<string, unknown>;

/** What the simulator does with what arrives, whatever the transport. */
interface LinkHandlers {
  json(message: Json): void;
  text(text: string): void;
  audio(opus: Buffer): void;
  close(): void;
}

/** How the simulator talks to the server: JSON messages and Opus packets. */
interface SimLink {
  /** The transport's fields of the device hello. */
  helloFields: Json;
  sendJson(message: Json): void;
  sendAudio(opus: Buffer, timestamp: number): void;
  close(): Promise<void>;
}

/** A JSON text frame or message goes to `json`; anything else is printed as text. */
function parseText(text: string, on: LinkHandlers): void {
  const msg = parseJsonObject(text);
  if (msg) on.json(msg);
  else on.text(text);
}

async function openWebSocketLink(opts: SimulateOptions, on: LinkHandlers): Promise<SimLink> {
  const clientId = `${opts.deviceId}-sim`;
  const ota = opts.ota ? await askOta(opts, clientId) : {};
  const token = opts.token ?? ota.token;
  const ws = new WebSocket(ota.url ?? opts.url, {
    perMessageDeflate: false,
    headers: {
      'Device-Id': opts.deviceId,
      'Client-Id': clientId,
      'Protocol-Version': String(opts.protocol),
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
    },
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        const reason = refusalReason(body);
        reject(new Error(`server refused the connection: HTTP ${res.statusCode}${reason ? `: ${reason}` : ''}`));
      });
    });
  });
  ws.on('message', (data: Buffer, isBinary) => {
    if (!isBinary) return parseText(data.toString('utf8'), on);
    const f = decodeFrame(opts.protocol, data);
    if (f.ok) on.audio(f.frame.payload);
  });
  ws.on('close', () => on.close());
  return {
    helloFields: { version: opts.protocol, transport: 'websocket' },
    sendJson: (message) => ws.send(JSON.stringify(message)),
    sendAudio: (opus, timestamp) => ws.send(encodeFrame(opts.protocol, opus, timestamp)),
    close: async () => ws.close(),
  };
}

/** The firmware's MQTT + UDP transport: OTA for the credentials, JSON over MQTT, encrypted Opus over UDP. */
async function openMqttLink(opts: SimulateOptions, on: LinkHandlers): Promise<SimLink> {
  const res = await fetch(opts.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'device-id': opts.deviceId, 'client-id': `${opts.deviceId}-sim` },
    body: JSON.stringify({ application: { version: '0.0.0' }, mac_address: opts.deviceId }),
    signal: timeoutSignal(10_000),
  });
  const settings = ((await res.json()) as { mqtt?: MqttSettings }).mqtt;
  if (!settings?.endpoint)
    throw new Error(`the OTA answer at ${opts.url} has no mqtt block (is server.mqtt.enabled on?)`);
  const client = await connectLikeFirmware(settings).catch((err: unknown) => {
    throw new Error(`MQTT connection to ${settings.endpoint} refused: ${errorMessage(err)}`);
  });
  // Unlike the firmware, which leaves this to the broker (EMQX auto-subscribe; the embedded broker delivers
  // directly): on a broker that does neither (Mosquitto) the replies reach the simulator this way.
  if (settings.subscribe_topic) await client.subscribeAsync(settings.subscribe_topic, { qos: 0 });
  const udp = createSocket('udp4');
  await new Promise<void>((resolve) => udp.bind(0, resolve));
  let channel: { key: Buffer; nonce: Buffer; server: string; port: number; sessionId: string } | undefined;
  let sequence = 0;
  let lastSequence = 0;
  // The server hello carries the UDP channel; it is read here before the simulator sees the message.
  const handlers: LinkHandlers = {
    ...on,
    json(message) {
      const u = message.type === 'hello' ? (message.udp as Json | undefined) : undefined;
      if (u) {
        channel = {
          key: Buffer.from(String(u.key), 'hex'),
          nonce: Buffer.from(String(u.nonce), 'hex'),
          server: String(u.server),
          port: Number(u.port),
          sessionId: String(message.session_id ?? ''),
        };
      }
      on.json(message);
    },
  };
  client.on('message', (_topic, payload) => parseText(payload.toString('utf8'), handlers));
  client.on('close', () => on.close());
  udp.on('message', (packet: Buffer) => {
    const parsed = parseUdpHeader(packet);
    if (!channel || !parsed.ok || parsed.header.sequence < lastSequence) return;
    lastSequence = parsed.header.sequence;
    on.audio(openUdpPacket(channel.key, packet));
  });
  const sendJson = (message: Json): void => {
    client.publish(settings.publish_topic || 'device-server', JSON.stringify(message));
  };
  return {
    helloFields: { version: 3, transport: 'udp' },
    sendJson,
    sendAudio(opus, timestamp) {
      if (channel)
        udp.send(sealUdpPacket(channel.key, channel.nonce, opus, timestamp, ++sequence), channel.port, channel.server);
    },
    async close() {
      if (channel) sendJson({ type: 'goodbye', session_id: channel.sessionId });
      udp.close();
      await client.endAsync();
    },
  };
}
