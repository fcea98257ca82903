/**
 * Fake OpenAI-compatible providers for the talking-device profiles (bench/lib/voice-load.ts), as a process of its own (so that its CPU is not the
 * server's): /v1/audio/transcriptions, /v1/chat/completions (SSE stream or plain) and /v1/audio/speech (raw
 * 24 kHz s16le PCM, streamed) on 127.0.0.1. The reply audio is real speech (flite, resampled to 24 kHz), cut to
 * 1.5–3 s per request, so the server's Opus encoder works on speech, not on a tone; a tone if flite is missing.
 *   --delay zero        answers at once (the server's own latency is all that is left)
 *   --delay realistic   ASR 300 ms; LLM first token 400 ms, then a token every 30 ms; TTS first audio 200 ms,
 *                       then 100 ms of audio every 25 ms (4× real time)
 *   --keep-alive-ms N   idle keep-alive of its HTTP connections (120000)
 * Faults (off by default), drawn per request from a seeded generator, on the endpoints named by --fault-paths:
 *   --error-rate R      this share of requests gets HTTP 500
 *   --hang-rate R       this share never gets an answer (half before the response starts, half after its first
 *                       chunk of a streamed body) until the client gives up and closes
 * It says `listening` with its port over IPC, answers `counts` with the requests served (plus `error <path>` and
 * `hang <path>` for the faults injected), takes `faults` to change the rates, and ends on SIGTERM or when its
 * parent goes away.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createResampler } from '../src/voice/resample.js';
import { readWav } from '../src/voice/wav.js';
import type { FromFake, ToFake } from './voice-shared.js';

const { values: flags } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    delay: { type: 'string', default: 'zero' },
    transcript: { type: 'string', default: 'what time is it' },
    reply: {
      type: 'string',
      default: 'It is ten past three in the afternoon. Is there anything else I can help you with today?',
    },
    'min-audio-ms': { type: 'string', default: '1500' },
    'max-audio-ms': { type: 'string', default: '3000' },
    'keep-alive-ms': { type: 'string', default: '120000' },
    'error-rate': { type: 'string', default: '0' },
    'hang-rate': { type: 'string', default: '0' },
    'fault-paths': { type: 'string', default: 'asr,llm,tts' },
    'fault-seed': { type: 'string', default: '1' },
  },
});

interface Delays {
  asrMs: number;
  llmFirstMs: number;
  llmChunkMs: number;
  ttsFirstMs: number;
  /** Time between two 100 ms pieces of audio. */
  ttsChunkMs: number;
}
const DELAYS: Record<string, Delays> = {
  zero: { asrMs: 0, llmFirstMs: 0, llmChunkMs: 0, ttsFirstMs: 0, ttsChunkMs: 0 },
  realistic: { asrMs: 300, llmFirstMs: 400, llmChunkMs: 30, ttsFirstMs: 200, ttsChunkMs: 25 },
};
const delays = DELAYS[flags.delay];
if (!delays) throw new Error(`--delay must be zero or realistic, got ${flags.delay}`);

const RATE = 24000;
const CHUNK_BYTES = (RATE / 10) * 2; // 100 ms
const MIN_MS = Number(flags['min-audio-ms']);
const MAX_MS = Number(flags['max-audio-ms']);

/** At least MAX_MS of 24 kHz speech: flite says the reply (repeated if short), resampled from its 16 kHz. */
function speechAudio(): Buffer {
  const need = Math.ceil((MAX_MS / 1000) * RATE);
  let samples: Int16Array;
  const dir = mkdtempSync(join(tmpdir(), 'linus-bench-tts-'));
  try {
    execFileSync('flite', ['-voice', 'slt', '-t', flags.reply, '-o', join(dir, 'reply.wav')]);
    const wav = readWav(readFileSync(join(dir, 'reply.wav')));
    const rs = createResampler(wav.sampleRate, RATE);
    const a = rs.push(wav.samples);
    const b = rs.flush();
    rs.dispose();
    samples = new Int16Array(a.length + b.length);
    samples.set(a);
    samples.set(b, a.length);
  } catch {
    samples = new Int16Array(need).map((_, i) => Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / RATE)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const out = new Int16Array(need);
  for (let at = 0; at < need; at += samples.length)
    out.set(samples.subarray(0, Math.min(samples.length, need - at)), at);
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}
const AUDIO = speechAudio();

/** Deterministic lengths in [MIN_MS, MAX_MS] (xorshift32), so two runs ask the same work of the server. */
let seed = 2463534242;
function nextAudioBytes(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  const ms = MIN_MS + ((seed >>> 0) / 4294967296) * (MAX_MS - MIN_MS);
  return Math.round((ms / 1000) * RATE) * 2;
}

// ---------------------------------------------------------------- fault injection

const PATHS: Record<string, string> = {
  asr: '/v1/audio/transcriptions',
  llm: '/v1/chat/completions',
  tts: '/v1/audio/speech',
};
const faultPaths = new Set(
  flags['fault-paths'].split(',').map((k) => {
    const path = PATHS[k.trim()];
    if (!path) throw new Error(`--fault-paths takes asr, llm, tts; got ${k}`);
    return path;
  }),
);
const rate = (name: string, v: string): number => {
  const n = Number(v);
  if (!(n >= 0 && n <= 1)) throw new Error(`--${name} must be in 0..1, got ${v}`);
  return n;
};
let errorRate = rate('error-rate', flags['error-rate']);
let hangRate = rate('hang-rate', flags['hang-rate']);
if (errorRate + hangRate > 1) throw new Error('--error-rate + --hang-rate must be at most 1');

/**
 * Deterministic draws (xorshift32), one sequence per endpoint: the n-th request of an endpoint gets the same fault
 * in every run with the same seed, however requests of different endpoints interleave.
 */
const streams = new Map<string, { seed: number; hangs: number }>();
function stream(path: string): { seed: number; hangs: number } {
  let s = streams.get(path);
  if (!s) {
    let seed = Number(flags['fault-seed']) >>> 0 || 1;
    for (const c of path) seed = (Math.imul(seed, 31) + c.charCodeAt(0)) >>> 0;
    streams.set(path, (s = { seed: seed || 1, hangs: 0 }));
  }
  return s;
}
function faultDraw(s: { seed: number }): number {
  s.seed ^= s.seed << 13;
  s.seed ^= s.seed >>> 17;
  s.seed ^= s.seed << 5;
  return (s.seed >>> 0) / 4294967296;
}

type Fault = 'none' | 'error' | 'hang-start' | 'hang-mid';
function pickFault(path: string): Fault {
  if (!faultPaths.has(path) || errorRate + hangRate === 0) return 'none';
  const s = stream(path);
  const d = faultDraw(s);
  const fault: Fault =
    d < errorRate ? 'error' : d < errorRate + hangRate ? (s.hangs++ % 2 === 0 ? 'hang-start' : 'hang-mid') : 'none';
  if (fault !== 'none') {
    const key = `${fault === 'error' ? 'error' : 'hang'} ${path}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return fault;
}

/** The answer to a hung request: nothing, ever; the client's deadline closes the connection. */
const never = (): Promise<void> => new Promise<void>(() => {});

/** The reply streamed word by word, as LLM tokens come. */
const TOKENS = flags.reply.split(/(?<= )/);

const counts: Record<string, number> = {};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const path = (req.url ?? '').split('?')[0] ?? '';
  counts[path] = (counts[path] ?? 0) + 1;
  const parts: Buffer[] = [];
  try {
    for await (const c of req) parts.push(c as Buffer);
  } catch {
    return; // the client went away during the upload
  }
  const fault = pickFault(path);
  if (fault === 'error') {
    res.writeHead(500, { 'content-type': 'application/json' });
    return void res.end('{"error":{"message":"injected fault","type":"server_error"}}');
  }
  // A JSON answer (ASR, a non-streamed chat) has no middle to hang in: it hangs before it starts.
  if (fault === 'hang-start' || (fault === 'hang-mid' && path === '/v1/audio/transcriptions')) return never();
  const hangMid = fault === 'hang-mid';
  if (path === '/v1/audio/transcriptions') {
    if (delays!.asrMs) await sleep(delays!.asrMs);
    res.writeHead(200, { 'content-type': 'application/json' });
    return void res.end(JSON.stringify({ text: flags.transcript }));
  }
  if (path === '/v1/chat/completions') {
    const body = JSON.parse(Buffer.concat(parts).toString() || '{}') as { stream?: boolean; model?: string };
    if (hangMid && !body.stream) return never();
    return chat(res, body.model ?? 'bench', !!body.stream, hangMid);
  }
  if (path === '/v1/audio/speech') return speech(res, hangMid);
  res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"not found"}}');
}

async function chat(res: http.ServerResponse, model: string, stream: boolean, hangMid = false): Promise<void> {
  if (delays!.llmFirstMs) await sleep(delays!.llmFirstMs);
  if (!stream) {
    res.writeHead(200, { 'content-type': 'application/json' });
    const message = { role: 'assistant', content: flags.reply };
    return void res.end(
      JSON.stringify({
        id: 'x',
        object: 'chat.completion',
        created: 0,
        model,
        choices: [{ index: 0, message, finish_reason: 'stop' }],
      }),
    );
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const event = (delta: Record<string, unknown>, finish: string | null): string =>
    `data: ${JSON.stringify({ id: 'x', object: 'chat.completion.chunk', created: 0, model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
  for (const [i, token] of TOKENS.entries()) {
    if (i > 0 && delays!.llmChunkMs) await sleep(delays!.llmChunkMs);
    if (res.destroyed) return;
    res.write(event(i === 0 ? { role: 'assistant', content: token } : { content: token }, null));
    if (hangMid) return never();
  }
  if (res.destroyed) return;
  res.write(event({}, 'stop'));
  res.end('data: [DONE]\n\n');
}

async function speech(res: http.ServerResponse, hangMid = false): Promise<void> {
  const bytes = nextAudioBytes();
  if (delays!.ttsFirstMs) await sleep(delays!.ttsFirstMs);
  res.writeHead(200, { 'content-type': 'audio/pcm' });
  for (let at = 0; at < bytes; at += CHUNK_BYTES) {
    if (at > 0 && delays!.ttsChunkMs) await sleep(delays!.ttsChunkMs);
    if (res.destroyed) return;
    res.write(AUDIO.subarray(at, Math.min(bytes, at + CHUNK_BYTES)));
    if (hangMid) return never();
  }
  res.end();
}

const server = http.createServer((req, res) => void handle(req, res).catch(() => res.destroy()));
// Longer than the server's idle pooled connections live, so a reused connection is never closed under it. A soak
// shortens it: the server's HTTP client (undici) follows the Keep-Alive hint and closes idle pooled sockets a second
// before, so that they are gone when the soak counts the server's file descriptors after the load.
server.keepAliveTimeout = Number(flags['keep-alive-ms']);
server.headersTimeout = server.keepAliveTimeout + 10_000;
server.listen(Number(flags.port), '127.0.0.1', () => {
  const msg: FromFake = { kind: 'listening', port: (server.address() as AddressInfo).port };
  process.send?.(msg);
});
process.on('message', (m: ToFake) => {
  if (m.kind === 'counts') process.send?.({ kind: 'counts', counts } satisfies FromFake);
  if (m.kind === 'faults') {
    errorRate = rate('error-rate', String(m.errorRate));
    hangRate = rate('hang-rate', String(m.hangRate));
    process.send?.({ kind: 'faults', errorRate, hangRate } satisfies FromFake);
  }
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
