// Talk: this browser is a device over the real protocol. Microphone → Opus (WebCodecs AudioEncoder) → WebSocket;
// the answer's Opus frames → AudioDecoder → speakers. A text box for typed turns; every event shown.
import { api, canWrite, field, fmtTime, h, on, toast } from './core.js';

const UPLINK_RATE = 16000;
const FRAME_MS = 60;

/** The page with only a heading and one line (when talking is not possible here). */
const notice = (cls, text) => ({
  title: 'Talk',
  node: h('section', {}, h('h1', {}, 'Talk'), h('p', { class: cls }, text)),
});

export async function talkPage() {
  if (!canWrite())
    return notice('muted', 'Talking uses the providers like a device does: log in with server.admin_secret.');
  if (typeof AudioEncoder === 'undefined' || typeof AudioDecoder === 'undefined')
    return notice('error', 'This browser has no WebCodecs audio (AudioEncoder/AudioDecoder); use Chromium.');

  const status = h('p', { class: 'muted', 'aria-live': 'polite' }, 'Not connected.');
  const log = h('ol', { class: 'talk-log', 'aria-live': 'polite' });
  const latency = h('p', { 'aria-live': 'polite', 'data-latency': '' }, 'Latency: no turn yet.');
  const played = h('span', { 'data-played': '0' }, '0');
  const connectBtn = h('button', { type: 'button' }, 'Connect');
  const micBtn = h('button', { type: 'button', disabled: true }, 'Start talking');
  const abortBtn = h('button', { type: 'button', class: 'danger', disabled: true }, 'Stop the answer');
  const text = h('input', { name: 'text', placeholder: 'Say something by typing', disabled: true });
  const sendBtn = h('button', { type: 'submit', disabled: true }, 'Send');

  let ws = null;
  let deviceId = '';
  let decoder = null;
  let playCtx = null;
  let playAt = 0;
  let frames = 0;
  let mic = null;
  /** performance.now() of the user's last input (typed send, or the recognized text), for the answer latency. */
  let askedAt = 0;
  let answered = false;
  let typed = false;

  const line = (who, what) => {
    log.append(h('li', { class: who }, h('strong', {}, `${who}: `), what));
    log.lastElementChild.scrollIntoView({ block: 'nearest' });
  };

  const play = (data) => {
    const n = data.numberOfFrames;
    const samples = new Float32Array(n);
    data.copyTo(samples, { planeIndex: 0, format: 'f32-planar' });
    const buffer = playCtx.createBuffer(1, n, data.sampleRate);
    data.close();
    buffer.copyToChannel(samples, 0);
    const src = playCtx.createBufferSource();
    src.buffer = buffer;
    src.connect(playCtx.destination);
    // Frames are queued back to back; a gap (the next sentence late) restarts a moment ahead of now.
    playAt = Math.max(playAt, playCtx.currentTime + 0.05);
    src.start(playAt);
    playAt += buffer.duration;
    frames++;
    played.textContent = String(frames);
    played.dataset.played = String(frames);
  };

  const onJson = (msg) => {
    if (msg.type === 'hello') {
      const rate = msg.audio_params?.sample_rate ?? 24000;
      decoder = new AudioDecoder({ output: play, error: (e) => line('error', `audio decoder: ${e.message}`) });
      decoder.configure({ codec: 'opus', sampleRate: rate, numberOfChannels: 1 });
      status.textContent = `Connected as ${deviceId} (answers at ${rate} Hz).`;
      for (const el of [micBtn, abortBtn, text, sendBtn]) el.disabled = false;
      text.focus();
    } else if (msg.type === 'stt') {
      // A typed turn is timed from the send; a spoken one from its recognized text.
      if (!typed) askedAt = performance.now();
      typed = false;
      answered = false;
      line('you', msg.text);
    } else if (msg.type === 'llm' && msg.emotion) {
      line('llm', `emotion ${msg.emotion}`);
    } else if (msg.type === 'tts') {
      if (msg.state === 'sentence_start') line('linus', msg.text);
      else line('tts', msg.state);
    } else if (msg.type === 'system' || msg.type === 'alert' || msg.type === 'error') {
      line(msg.type, msg.message ?? msg.event ?? JSON.stringify(msg));
    }
  };

  const onAudio = (data) => {
    if (!decoder || decoder.state !== 'configured') return;
    if (!answered && askedAt) {
      answered = true;
      const ms = Math.round(performance.now() - askedAt);
      latency.dataset.latency = String(ms);
      latency.textContent = `Latency: first answer audio ${ms} ms after the text was sent or recognized.`;
    }
    decoder.decode(new EncodedAudioChunk({ type: 'key', timestamp: frames * FRAME_MS * 1000, data }));
  };

  const stopMic = async () => {
    if (!mic) return;
    const m = mic;
    mic = null;
    micBtn.textContent = 'Start talking';
    if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'listen', state: 'stop' }));
    m.stream.getTracks().forEach((t) => t.stop());
    m.node.disconnect();
    await m.ctx.close();
    if (m.encoder.state === 'configured') await m.encoder.flush().catch(() => undefined);
    m.encoder.close();
  };

  const startMic = async () => {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: false, autoGainControl: false },
    });
    const ctx = new AudioContext({ sampleRate: UPLINK_RATE });
    const encoder = new AudioEncoder({
      output: (chunk) => {
        const packet = new Uint8Array(chunk.byteLength);
        chunk.copyTo(packet);
        if (ws?.readyState === WebSocket.OPEN) ws.send(packet);
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
    mic = { stream, ctx, node, encoder };
    ws.send(JSON.stringify({ type: 'listen', state: 'start', mode: 'auto' }));
    micBtn.textContent = 'Stop talking';
    line('mic', 'listening');
  };

  const disconnect = async () => {
    await stopMic();
    ws?.close();
    ws = null;
    if (decoder && decoder.state !== 'closed') decoder.close();
    decoder = null;
    await playCtx?.close();
    playCtx = null;
  };

  connectBtn.addEventListener('click', async () => {
    if (ws) {
      await disconnect();
      connectBtn.textContent = 'Connect';
      status.textContent = 'Not connected.';
      for (const el of [micBtn, abortBtn, text, sendBtn]) el.disabled = true;
      return;
    }
    try {
      const t = await api('POST', '/api/talk');
      deviceId = t.deviceId;
      // Created in the click, so the browser lets it play.
      playCtx = new AudioContext();
      playAt = 0;
      const q = new URLSearchParams({
        'device-id': t.deviceId,
        'client-id': t.clientId,
        authorization: `Bearer ${t.token}`,
      });
      ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${t.path}?${q}`);
      ws.binaryType = 'arraybuffer';
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
      ws.addEventListener('message', (e) => {
        if (typeof e.data === 'string') onJson(JSON.parse(e.data));
        else onAudio(new Uint8Array(e.data));
      });
      ws.addEventListener('close', (e) => {
        status.textContent = `Disconnected (${e.code}${e.reason ? ` ${e.reason}` : ''}).`;
        for (const el of [micBtn, abortBtn, text, sendBtn]) el.disabled = true;
        connectBtn.textContent = 'Connect';
        ws = null;
      });
      connectBtn.textContent = 'Disconnect';
      status.textContent = 'Connecting…';
    } catch (err) {
      toast(err.message, 'error');
    }
  });
  micBtn.addEventListener('click', () =>
    (mic ? stopMic() : startMic()).catch((err) => line('error', `microphone: ${err.message}`)),
  );
  abortBtn.addEventListener('click', () => ws?.send(JSON.stringify({ type: 'abort', reason: 'user' })));
  const form = h(
    'form',
    {
      class: 'inline',
      onsubmit: (e) => {
        e.preventDefault();
        const said = text.value.trim();
        if (!said || !ws) return;
        askedAt = performance.now();
        answered = false;
        typed = true;
        ws.send(JSON.stringify({ type: 'listen', state: 'detect', text: said }));
        text.value = '';
      },
    },
    field('Message', text),
    sendBtn,
  );
  // The server's own figures for this device's last turn (latency by stage), from the devices stream.
  const serverLatency = h('p', { class: 'muted', 'aria-live': 'polite' });
  const offDevices = on('devices', (list) => {
    const me = list.find((d) => d.deviceId === deviceId);
    const turn = me?.lastTurn;
    if (!turn) return;
    const stages = Object.entries(turn.latencyMs)
      .map(([k, v]) => `${k} ${v} ms`)
      .join(' · ');
    serverLatency.textContent = `Server, last turn at ${fmtTime(turn.at)} (${turn.outcome}): ${stages || 'no stage timed'}.`;
  });
  return {
    title: 'Talk',
    node: h(
      'section',
      {},
      h('h1', {}, 'Talk'),
      h('p', { class: 'muted' }, 'This page is a device: what you say or type gets the same answer a badge would.'),
      h('div', { class: 'actions' }, connectBtn, micBtn, abortBtn),
      status,
      form,
      latency,
      serverLatency,
      h('p', { class: 'muted' }, 'Answer frames played: ', played),
      log,
    ),
    cleanup: [offDevices, () => void disconnect()],
  };
}
