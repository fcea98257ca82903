import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseMultipart } from '../../src/transport/multipart.js';

/**
 * A scripted OpenAI-compatible server for tests (a fixture, never a product default): chat completions
 * (SSE and plain), /audio/transcriptions and /audio/speech on 127.0.0.1. It records every request and whether
 * the client went away before the response ended, which is how tests prove that an abort closed the request.
 */

export interface ChatScript {
  /** Text deltas, streamed one per SSE event (joined for a non-streamed answer). */
  chunks?: string[];
  /** Wait before each streamed event. */
  delayMs?: number;
  /** Tool calls, each streamed as a head delta (id, name) and then its arguments in `argPieces` pieces. */
  toolCalls?: { id: string; name: string; arguments: string }[];
  argPieces?: number;
  /** Answer with this HTTP error status instead. */
  status?: number;
  /** Never answer (not even headers). */
  hang?: boolean;
  /** Accept the request and send the stream's headers, then nothing (a model that never produces a token). */
  stall?: boolean;
}

export interface TranscriptionScript {
  text?: string;
  status?: number;
  hang?: boolean;
}

export interface SpeechScript {
  /** Length of the generated tone. */
  durationMs?: number;
  /** Rate of the generated audio (pcm and generated wav). */
  sampleRate?: number;
  /** Bytes per write; odd by default so that samples straddle writes. */
  chunkBytes?: number;
  delayMs?: number;
  status?: number;
  hang?: boolean;
  /** For `response_format: wav`, speak the input with the real `flite` binary instead of a generated tone. */
  flite?: boolean;
}

export interface RecordedRequest {
  path: string;
  /** Parsed JSON body, or the form fields of a multipart upload. */
  body: Record<string, unknown>;
  /** The uploaded file of a multipart request. */
  file?: Buffer;
  /** The client closed the connection before the response was complete. */
  closedEarly: boolean;
  /** Resolves with `closedEarly` once the response is over, one way or the other. */
  closed: Promise<boolean>;
}

/** The deterministic tone the speech endpoint returns: 440 Hz at amplitude 8000. */
export function tone(samples: number, sampleRate: number): Int16Array {
  const out = new Int16Array(samples);
  for (let i = 0; i < samples; i++) out[i] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / sampleRate));
  return out;
}

/** A minimal 16-bit mono RIFF/WAVE file. */
export function wavFile(samples: Int16Array, sampleRate: number): Buffer {
  const data = Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength);
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVEfmt ', 8);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(sampleRate, 24);
  h.writeUInt32LE(sampleRate * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36);
  h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}

/** A port on 127.0.0.1 that nothing listens on (connection refused). */
export async function refusedPort(): Promise<number> {
  const srv = http.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class FakeOpenAi {
  chat: ChatScript = { chunks: ['Hello', ' from', ' the', ' fake', ' LLM', '.'] };
  transcription: TranscriptionScript = { text: 'hello world' };
  speech: SpeechScript = {};
  readonly requests: RecordedRequest[] = [];
  readonly #server: http.Server;

  private constructor() {
    this.#server = http.createServer((req, res) => void this.#handle(req, res));
  }

  static async start(): Promise<FakeOpenAi> {
    const fake = new FakeOpenAi();
    await new Promise<void>((r) => fake.#server.listen(0, '127.0.0.1', r));
    return fake;
  }

  /** The base URL a provider block takes (`base_url`). */
  get baseUrl(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/v1`;
  }

  /** The request with this index once it has arrived (requests.length before the call = the call's index). */
  async request(index: number, timeoutMs = 3000): Promise<RecordedRequest> {
    for (const until = Date.now() + timeoutMs; Date.now() < until; await sleep(5)) {
      const r = this.requests[index];
      if (r) return r;
    }
    throw new Error(`request #${index} never arrived`);
  }

  last(path?: string): RecordedRequest {
    const found = this.requests.filter((r) => !path || r.path === path).at(-1);
    if (!found) throw new Error(`no request${path ? ` to ${path}` : ''} recorded`);
    return found;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    // Recorded on arrival, so that a client that goes away during the upload is seen too.
    const path = (req.url ?? '').split('?')[0] ?? '';
    const rec = { path, body: {}, closedEarly: false } as RecordedRequest;
    rec.closed = new Promise((resolve) =>
      res.on('close', () => {
        rec.closedEarly = !res.writableFinished;
        resolve(rec.closedEarly);
      }),
    );
    this.requests.push(rec);
    const parts: Buffer[] = [];
    try {
      for await (const c of req) parts.push(c as Buffer);
    } catch {
      return; // the client aborted the upload
    }
    const raw = Buffer.concat(parts);
    if ((req.headers['content-type'] ?? '').startsWith('multipart/form-data')) {
      const parts = parseMultipart(raw, req.headers['content-type'] ?? '') ?? [];
      rec.body = Object.fromEntries(
        parts.filter((p) => p.filename === undefined).map((p) => [p.name, p.data.toString()]),
      );
      rec.file = parts.find((p) => p.filename !== undefined)?.data;
    } else if (raw.length) {
      rec.body = JSON.parse(raw.toString()) as Record<string, unknown>;
    }
    if (path === '/v1/chat/completions') return this.#chat(rec, res);
    if (path === '/v1/audio/transcriptions') return this.#transcribe(res);
    if (path === '/v1/audio/speech') return this.#speak(rec, res);
    res.writeHead(404).end('{"error":{"message":"not found"}}');
  }

  async #chat(rec: RecordedRequest, res: http.ServerResponse): Promise<void> {
    const s = this.chat;
    if (s.hang) return;
    if (s.status) return void error(res, s.status);
    const model = rec.body.model;
    const chunks = s.chunks ?? [];
    const calls = s.toolCalls ?? [];
    if (!rec.body.stream) {
      if (s.delayMs) await sleep(s.delayMs);
      const tool_calls = calls.length
        ? calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }))
        : undefined;
      const message = { role: 'assistant', content: chunks.join(''), tool_calls };
      res.setHeader('content-type', 'application/json');
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
    if (s.stall) return void res.flushHeaders();
    const deltas: Record<string, unknown>[] = chunks.map((c) => ({ content: c }));
    calls.forEach((c, index) => {
      deltas.push({ tool_calls: [{ index, id: c.id, type: 'function', function: { name: c.name, arguments: '' } }] });
      const n = Math.max(1, s.argPieces ?? 3);
      const size = Math.ceil(c.arguments.length / n);
      for (let i = 0; i < c.arguments.length; i += size) {
        deltas.push({ tool_calls: [{ index, function: { arguments: c.arguments.slice(i, i + size) } }] });
      }
    });
    const event = (delta: Record<string, unknown>, finish: string | null) =>
      `data: ${JSON.stringify({ id: 'x', object: 'chat.completion.chunk', created: 0, model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    for (const [i, delta] of deltas.entries()) {
      if (s.delayMs) await sleep(s.delayMs);
      if (res.destroyed) return;
      res.write(event(i === 0 ? { role: 'assistant', ...delta } : delta, null));
    }
    if (res.destroyed) return;
    res.write(event({}, calls.length ? 'tool_calls' : 'stop'));
    res.end('data: [DONE]\n\n');
  }

  async #transcribe(res: http.ServerResponse): Promise<void> {
    const s = this.transcription;
    if (s.hang) return;
    if (s.status) return void error(res, s.status);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ text: s.text ?? '' }));
  }

  async #speak(rec: RecordedRequest, res: http.ServerResponse): Promise<void> {
    const s = this.speech;
    if (s.hang) return;
    if (s.status) return void error(res, s.status);
    const rate = s.sampleRate ?? 24000;
    const samples = tone(Math.round(((s.durationMs ?? 500) * rate) / 1000), rate);
    let body: Buffer;
    if (rec.body.response_format === 'wav') {
      body = s.flite ? await fliteWav(String(rec.body.input)) : wavFile(samples, rate);
    } else {
      body = Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength);
    }
    res.writeHead(200, { 'content-type': rec.body.response_format === 'wav' ? 'audio/wav' : 'audio/pcm' });
    const step = s.chunkBytes ?? 4801;
    for (let i = 0; i < body.length; i += step) {
      if (s.delayMs) await sleep(s.delayMs);
      if (res.destroyed) return;
      res.write(body.subarray(i, i + step));
    }
    res.end();
  }
}

function error(res: http.ServerResponse, status: number): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { message: `scripted error ${status}`, type: 'server_error' } }));
}

/** flite cannot write to a pipe when Node spawns it (ecosystem.md §0.5), so it writes a temp file. */
async function fliteWav(text: string): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'fake-tts-'));
  try {
    await promisify(execFile)('flite', ['-voice', 'slt', '-t', text, '-o', join(dir, 'out.wav')]);
    return await readFile(join(dir, 'out.wav'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
