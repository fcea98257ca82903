// Talk: this browser is a device over the real protocol. Microphone → Opus (WebCodecs AudioEncoder) → WebSocket;
// the answer's Opus frames → AudioDecoder → speakers. A text box for typed turns; every event shown.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, canWrite, messageOf } from '../api.js';
import { useEvent } from '../events.js';
import { fmtTime } from '../format.js';
import { Field, toastError, useTitle } from '../ui.js';
import type { Device } from './devices.js';

const UPLINK_RATE = 16000;
const FRAME_MS = 60;

interface Line {
  who: string;
  what: string;
}

interface Mic {
  stream: MediaStream;
  ctx: AudioContext;
  node: ScriptProcessorNode;
  encoder: AudioEncoder;
}

/** Everything of one connection: the socket, the codecs, the audio graph. Not state: nothing here is drawn. */
interface Link {
  ws: WebSocket;
  deviceId: string;
  decoder: AudioDecoder | null;
  playCtx: AudioContext;
  playAt: number;
  /** Answer frames handed to the decoder (their timestamps). */
  frames: number;
  mic: Mic | null;
  /** performance.now() of the user's last input (typed send, or the recognized text), for the answer latency. */
  askedAt: number;
  answered: boolean;
  typed: boolean;
}

/** The page with only a heading and one line (when talking is not possible here). */
function Notice({ cls, text }: { cls: string; text: string }) {
  return (
    <section>
      <h1>Talk</h1>
      <p class={cls}>{text}</p>
    </section>
  );
}

export function TalkPage() {
  useTitle('Talk');
  if (!canWrite())
    return (
      <Notice cls="muted" text="Talking uses the providers like a device does: log in with server.admin_secret." />
    );
  if (typeof AudioEncoder === 'undefined' || typeof AudioDecoder === 'undefined')
    return <Notice cls="error" text="This browser has no WebCodecs audio (AudioEncoder/AudioDecoder); use Chromium." />;
  return <Talk />;
}

function Talk() {
  const [status, setStatus] = useState('Not connected.');
  const [ready, setReady] = useState(false);
  const [connected, setConnected] = useState(false);
  const [talking, setTalking] = useState(false);
  const [lines, setLines] = useState<Line[]>([]);
  const [latency, setLatency] = useState<number | null>(null);
  const [played, setPlayed] = useState(0);
  const [text, setText] = useState('');
  const [serverLatency, setServerLatency] = useState('');
  const link = useRef<Link | null>(null);
  const textInput = useRef<HTMLInputElement>(null);
  const logEnd = useRef<HTMLOListElement>(null);

  const line = (who: string, what: string) => setLines((old) => [...old, { who, what }]);
  useEffect(() => logEnd.current?.lastElementChild?.scrollIntoView({ block: 'nearest' }), [lines]);
  useEffect(() => {
    if (ready) textInput.current?.focus();
  }, [ready]);

  const play = (l: Link, data: AudioData) => {
    const n = data.numberOfFrames;
    const samples = new Float32Array(n);
    data.copyTo(samples, { planeIndex: 0, format: 'f32-planar' });
    const buffer = l.playCtx.createBuffer(1, n, data.sampleRate);
    data.close();
    buffer.copyToChannel(samples, 0);
    const src = l.playCtx.createBufferSource();
    src.buffer = buffer;
    src.connect(l.playCtx.destination);
    // Frames are queued back to back; a gap (the next sentence late) restarts a moment ahead of now.
    l.playAt = Math.max(l.playAt, l.playCtx.currentTime + 0.05);
    src.start(l.playAt);
    l.playAt += buffer.duration;
    setPlayed((p) => p + 1);
  };

  const onJson = (l: Link, msg: Record<string, unknown>) => {
    if (msg.type === 'hello') {
      const rate = (msg.audio_params as { sample_rate?: number } | undefined)?.sample_rate ?? 24000;
      l.decoder = new AudioDecoder({
        output: (data) => play(l, data),
        error: (e) => line('error', `audio decoder: ${e.message}`),
      });
      l.decoder.configure({ codec: 'opus', sampleRate: rate, numberOfChannels: 1 });
      setStatus(`Connected as ${l.deviceId} (answers at ${rate} Hz).`);
      setReady(true);
    } else if (msg.type === 'stt') {
      // A typed turn is timed from the send; a spoken one from its recognized text.
      if (!l.typed) l.askedAt = performance.now();
      l.typed = false;
      l.answered = false;
      line('you', String(msg.text));
    } else if (msg.type === 'llm' && msg.emotion) {
      line('llm', `emotion ${String(msg.emotion)}`);
    } else if (msg.type === 'tts') {
      if (msg.state === 'sentence_start') line('linus', String(msg.text));
      else line('tts', String(msg.state));
    } else if (msg.type === 'system' || msg.type === 'alert' || msg.type === 'error') {
      line(msg.type, String(msg.message ?? msg.event ?? JSON.stringify(msg)));
    }
  };

  const onAudio = (l: Link, frame: Uint8Array) => {
    const decoder = l.decoder;
    if (!decoder || decoder.state !== 'configured') return;
    if (!l.answered && l.askedAt) {
      l.answered = true;
      setLatency(Math.round(performance.now() - l.askedAt));
    }
    const timestamp = l.frames++ * FRAME_MS * 1000;
    decoder.decode(new EncodedAudioChunk({ type: 'key', timestamp, data: frame }));
  };

  const stopMic = async (l: Link) => {
    const m = l.mic;
    if (!m) return;
    l.mic = null;
    setTalking(false);
    if (l.ws.readyState === WebSocket.OPEN) l.ws.send(JSON.stringify({ type: 'listen', state: 'stop' }));
    m.stream.getTracks().forEach((t) => t.stop());
    m.node.disconnect();
    await m.ctx.close();
    // A flush that fails leaves nothing to send: the socket is going or the encoder already closed.
    if (m.encoder.state === 'configured') await m.encoder.flush().catch(() => undefined);
    m.encoder.close();
  };

  const startMic = async (l: Link) => {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: false, autoGainControl: false },
    });
    const ctx = new AudioContext({ sampleRate: UPLINK_RATE });
    const encoder = new AudioEncoder({
      output: (chunk) => {
        const packet = new Uint8Array(chunk.byteLength);
        chunk.copyTo(packet);
        if (l.ws.readyState === WebSocket.OPEN) l.ws.send(packet);
      },
      error: (e) => line('error', `audio encoder: ${e.message}`),
    });
    encoder.configure({
      codec: 'opus',
      sampleRate: UPLINK_RATE,
      numberOfChannels: 1,
      bitrate: 24000,
      opus: { frameDuration: FRAME_MS * 1000 },
    });
    // A ScriptProcessor needs no separate worklet file: the raw samples, encoded as they come.
    const node = ctx.createScriptProcessor(4096, 1, 1);
    let timestamp = 0;
    node.onaudioprocess = (e) => {
      const samples = new Float32Array(e.inputBuffer.getChannelData(0));
      encoder.encode(
        new AudioData({
          format: 'f32-planar',
          sampleRate: ctx.sampleRate,
          numberOfFrames: samples.length,
          numberOfChannels: 1,
          timestamp,
          data: samples,
        }),
      );
      timestamp += Math.round((samples.length / ctx.sampleRate) * 1e6);
    };
    ctx.createMediaStreamSource(stream).connect(node);
    node.connect(ctx.destination);
    l.mic = { stream, ctx, node, encoder };
    l.ws.send(JSON.stringify({ type: 'listen', state: 'start', mode: 'auto' }));
    setTalking(true);
    line('mic', 'listening');
  };

  const disconnect = async () => {
    const l = link.current;
    if (!l) return;
    link.current = null;
    await stopMic(l);
    l.ws.close();
    if (l.decoder && l.decoder.state !== 'closed') l.decoder.close();
    await l.playCtx.close();
  };
  // Leaving the page hangs up (the server sees the device go).
  const hangUp = useRef(disconnect);
  hangUp.current = disconnect;
  useEffect(() => () => void hangUp.current(), []);

  const connect = async () => {
    if (link.current) {
      await disconnect();
      setConnected(false);
      setReady(false);
      setStatus('Not connected.');
      return;
    }
    try {
      const t = await api<{ deviceId: string; clientId: string; token: string; path: string }>('POST', '/api/talk');
      const q = new URLSearchParams({
        'device-id': t.deviceId,
        'client-id': t.clientId,
        authorization: `Bearer ${t.token}`,
      });
      const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${t.path}?${q}`);
      ws.binaryType = 'arraybuffer';
      const l: Link = {
        ws,
        deviceId: t.deviceId,
        decoder: null,
        // Created in the click, so the browser lets it play.
        playCtx: new AudioContext(),
        playAt: 0,
        frames: 0,
        mic: null,
        askedAt: 0,
        answered: false,
        typed: false,
      };
      link.current = l;
      ws.addEventListener('open', () =>
        ws.send(
          JSON.stringify({
            type: 'hello',
            version: 1,
            transport: 'websocket',
            audio_params: { format: 'opus', sample_rate: UPLINK_RATE, channels: 1, frame_duration: FRAME_MS },
          }),
        ),
      );
      ws.addEventListener('message', (e: MessageEvent<string | ArrayBuffer>) => {
        if (typeof e.data === 'string') onJson(l, JSON.parse(e.data) as Record<string, unknown>);
        else onAudio(l, new Uint8Array(e.data));
      });
      ws.addEventListener('close', (e) => {
        setStatus(`Disconnected (${e.code}${e.reason ? ` ${e.reason}` : ''}).`);
        setReady(false);
        setConnected(false);
        if (link.current === l) void disconnect();
      });
      setConnected(true);
      setStatus('Connecting…');
    } catch (err) {
      toastError(err);
    }
  };

  const toggleMic = () => {
    const l = link.current;
    if (!l) return;
    (l.mic ? stopMic(l) : startMic(l)).catch((err) => line('error', `microphone: ${messageOf(err)}`));
  };

  const send = (e: Event) => {
    e.preventDefault();
    const l = link.current;
    const said = text.trim();
    if (!said || !l) return;
    l.askedAt = performance.now();
    l.answered = false;
    l.typed = true;
    l.ws.send(JSON.stringify({ type: 'listen', state: 'detect', text: said }));
    setText('');
  };

  // The server's own figures for this device's last turn (latency by stage), from the devices stream.
  useEvent('devices', (list: Device[]) => {
    const turn = list.find((d) => d.deviceId === link.current?.deviceId)?.lastTurn;
    if (!turn) return;
    const stages = Object.entries(turn.latencyMs)
      .map(([k, v]) => `${k} ${v} ms`)
      .join(' · ');
    setServerLatency(`Server, last turn at ${fmtTime(turn.at)} (${turn.outcome}): ${stages || 'no stage timed'}.`);
  });

  return (
    <section>
      <h1>Talk</h1>
      <p class="muted">This page is a device: what you say or type gets the same answer a badge would.</p>
      <div class="actions">
        <button type="button" onClick={() => void connect()}>
          {connected ? 'Disconnect' : 'Connect'}
        </button>
        <button type="button" disabled={!ready} onClick={toggleMic}>
          {talking ? 'Stop talking' : 'Start talking'}
        </button>
        <button
          type="button"
          class="danger"
          disabled={!ready}
          onClick={() => link.current?.ws.send(JSON.stringify({ type: 'abort', reason: 'user' }))}
        >
          Stop the answer
        </button>
      </div>
      <p class="muted" aria-live="polite">
        {status}
      </p>
      <form class="inline" onSubmit={send}>
        <Field label="Message">
          <input
            ref={textInput}
            name="text"
            placeholder="Say something by typing"
            disabled={!ready}
            value={text}
            onInput={(e) => setText(e.currentTarget.value)}
          />
        </Field>
        <button type="submit" disabled={!ready}>
          Send
        </button>
      </form>
      <p aria-live="polite" data-latency={latency ?? ''}>
        {latency === null
          ? 'Latency: no turn yet.'
          : `Latency: first answer audio ${latency} ms after the text was sent or recognized.`}
      </p>
      <p class="muted" aria-live="polite">
        {serverLatency}
      </p>
      <p class="muted">
        Answer frames played: <span data-played={String(played)}>{played}</span>
      </p>
      <ol class="talk-log" aria-live="polite" ref={logEnd}>
        {lines.map((l) => (
          <li class={l.who}>
            <strong>{l.who}: </strong>
            {l.what}
          </li>
        ))}
      </ol>
    </section>
  );
}
