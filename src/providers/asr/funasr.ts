import { endianness } from 'node:os';
import WebSocket from 'ws';
import { errorCode } from '../../errors.js';
import { blockNumber, blockString } from '../block.js';
import { abortError } from '../openai-common.js';
import type { ProviderBlock } from '../block.js';
import { ProviderError } from '../types.js';
import type { AsrProvider, AsrResult, AsrStream, CallOptions } from '../types.js';

/**
 * Client of a self-hosted FunASR WebSocket server (C++ `funasr-wss-server(-2pass)` from the FunASR runtime SDK
 * docker image, or Python `runtime/python/websocket/funasr_wss_server.py`). Protocol, as in modelscope/FunASR
 * `runtime/docs/websocket_protocol.md` and both servers' sources: a JSON config message first, then binary
 * 16 kHz s16le PCM, then `{"is_speaking": false}`; results are JSON `{mode, text, wav_name, is_final, timestamp?}`
 * where `mode` is `online` / `2pass-online` (partials) or `offline` / `2pass-offline` (corrected segments).
 * One WebSocket per utterance, like the official clients: the servers keep per-connection state.
 */

type Mode = 'online' | '2pass' | 'offline';
const MODES: Mode[] = ['online', '2pass', 'offline'];
const SAMPLE_RATE = 16000;
/** Grace for in-flight partials when the server is known never to answer the end flag (Python server, online mode). */
const ONLINE_GRACE_MS = 300;

interface Settings {
  alias: string;
  url: string;
  config: Record<string, unknown>;
  mode: Mode;
  frameSamples: number;
  finalTimeoutMs: number;
  connectTimeoutMs: number;
  headers: Record<string, string>;
  tlsVerify: boolean;
}

export function createFunAsr(alias: string, block: ProviderBlock): AsrProvider {
  const where = `ASR.${alias}`;
  const mode = (blockString(block, where, ['mode']) ?? '2pass') as Mode;
  if (!MODES.includes(mode))
    throw new ProviderError(where, 'config', `${where}.mode must be one of ${MODES.join(', ')}`);
  const chunkSize = chunkSizeOf(block.chunk_size, where);
  const chunkInterval = blockNumber(block, where, ['chunk_interval']) ?? 10;
  const hotwords =
    typeof block.hotwords === 'object' && block.hotwords !== null
      ? JSON.stringify(block.hotwords)
      : (blockString(block, where, ['hotwords']) ?? '');
  const apiKey = blockString(block, where, ['api_key']);
  const settings: Settings = {
    alias,
    url: urlOf(block, where),
    mode,
    config: {
      mode,
      chunk_size: chunkSize,
      chunk_interval: chunkInterval,
      wav_name: blockString(block, where, ['wav_name']) ?? 'linus',
      wav_format: 'pcm',
      audio_fs: SAMPLE_RATE,
      is_speaking: true,
      hotwords,
      itn: boolOf(block.itn, true),
    },
    // The Python server assumes each binary message is one `60 * chunk_size[1] / chunk_interval` ms step.
    frameSamples: Math.max(160, Math.round((SAMPLE_RATE / 1000) * ((60 * (chunkSize[1] ?? 10)) / chunkInterval))),
    // Deadline for the answer to the end flag (the call's timeoutMs wins), as the reference waits 5 s per message.
    finalTimeoutMs: blockNumber(block, where, ['timeout_ms']) ?? 5000,
    connectTimeoutMs: blockNumber(block, where, ['connect_timeout_ms']) ?? 5000,
    // Same header as the reference's fun_server client, for gateways in front of FunASR; FunASR itself ignores it.
    headers: apiKey && apiKey !== 'none' ? { Authorization: `Bearer; ${apiKey}` } : {},
    // FunASR's docker image serves wss with a self-signed certificate, and the reference does not verify it either.
    tlsVerify: boolOf(block.tls_verify, false),
  };
  return {
    name: alias,
    streaming: true,
    createStream: (opts) => new FunAsrStream(settings, opts),
    async dispose() {},
  };
}

class FunAsrStream implements AsrStream {
  readonly #s: Settings;
  readonly #opts: CallOptions;
  #ws?: WebSocket;
  #open = false;
  /** Messages written before the socket opened; sent right after the config message. */
  #queue: (Buffer | string)[] = [];
  #frame: Int16Array;
  #fill = 0;
  #offlineText = '';
  /** Partial text since the last corrected segment. */
  #onlineText = '';
  #heard = false;
  /** `is_final` of the partials seen before the end flag; it tells which server this is (see #isEnd). */
  #partialsFinal: boolean | undefined;
  #endSent = false;
  #failure: Error | undefined;
  #done = false;
  #pending: { resolve: (r: AsrResult) => void; reject: (e: Error) => void } | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #onAbort = () => this.abort();

  constructor(settings: Settings, opts: CallOptions) {
    this.#s = settings;
    this.#opts = opts;
    this.#frame = new Int16Array(settings.frameSamples);
    if (opts.signal.aborted) {
      this.#done = true;
      return;
    }
    opts.signal.addEventListener('abort', this.#onAbort, { once: true });
    this.#connect();
  }

  write(samples: Int16Array): void {
    if (this.#done || this.#endSent) return;
    let at = 0;
    while (at < samples.length) {
      const n = Math.min(samples.length - at, this.#frame.length - this.#fill);
      this.#frame.set(samples.subarray(at, at + n), this.#fill);
      this.#fill += n;
      at += n;
      if (this.#fill === this.#frame.length) this.#flushFrame();
    }
  }

  finish(): Promise<AsrResult> {
    if (this.#done) return Promise.reject(this.#failure ?? abortError());
    if (this.#endSent) return Promise.reject(new Error(`${this.#s.alias}: finish() called twice`));
    return new Promise<AsrResult>((resolve, reject) => {
      this.#pending = { resolve, reject };
      if (this.#failure) return this.#endWithoutFinal(this.#failure);
      this.#flushFrame();
      this.#send(JSON.stringify({ is_speaking: false }));
      this.#endSent = true;
      const python = this.#partialsFinal === true;
      const wait =
        this.#s.mode === 'online' && python ? ONLINE_GRACE_MS : (this.#opts.timeoutMs ?? this.#s.finalTimeoutMs);
      this.#timer = setTimeout(
        () => this.#endWithoutFinal(new ProviderError(this.#s.alias, 'timeout', `no final result within ${wait} ms`)),
        wait,
      );
    });
  }

  abort(): void {
    this.#finishWith(false, () => this.#pending?.reject(abortError()));
  }

  #connect(): void {
    const ws = new WebSocket(this.#s.url, {
      handshakeTimeout: this.#s.connectTimeoutMs,
      headers: this.#s.headers,
      rejectUnauthorized: this.#s.tlsVerify,
      perMessageDeflate: false,
    });
    this.#ws = ws;
    ws.on('open', () => {
      if (this.#done) return;
      this.#open = true;
      ws.send(JSON.stringify(this.#s.config));
      for (const m of this.#queue) ws.send(m);
      this.#queue = [];
    });
    ws.on('message', (data, isBinary) => {
      if (!this.#done && !isBinary) this.#onResult(data.toString());
    });
    ws.on('error', (err) => this.#fail(wsError(this.#s.alias, err)));
    ws.on('close', (code) =>
      this.#fail(new ProviderError(this.#s.alias, 'network', `connection closed (${code}) before the final result`)),
    );
  }

  #onResult(raw: string): void {
    let msg: { mode?: unknown; text?: unknown; is_final?: unknown };
    try {
      msg = JSON.parse(raw) as typeof msg;
    } catch {
      return; // not a result; the servers send nothing else, so a stray message is ignored
    }
    if (typeof msg !== 'object' || msg === null) return;
    this.#heard = true;
    // SenseVoice models prefix tags such as <|zh|><|NEUTRAL|><|Speech|>.
    const text = typeof msg.text === 'string' ? msg.text.replace(/<\|[^|]*\|>/g, '') : '';
    const corrected = msg.mode === 'offline' || msg.mode === '2pass-offline';
    if (corrected) {
      this.#offlineText = joinText(this.#offlineText, text);
      this.#onlineText = '';
    } else {
      this.#onlineText = joinText(this.#onlineText, text);
    }
    if (!this.#endSent && typeof msg.is_final === 'boolean') this.#partialsFinal ??= msg.is_final;
    if (this.#endSent && this.#isEnd(msg.is_final === true, corrected)) {
      this.#finishWith(true, () => this.#pending?.resolve({ text: this.#text() }));
    }
  }

  /**
   * Whether a result received after the end flag is the answer to it. The two servers disagree on `is_final`:
   * the C++ server sends partials and mid-utterance segments with `is_final: false` and its answer with `true`;
   * the Python server copies `is_speaking` into it, so partials carry `true` and its answer is an
   * `offline`/`2pass-offline` result with `false`. Partials seen before the end flag tell which one this is,
   * so that a partial still in flight is not taken for the answer.
   */
  #isEnd(isFinal: boolean, corrected: boolean): boolean {
    if (this.#partialsFinal === true) return corrected && !isFinal;
    if (this.#partialsFinal === false) return isFinal;
    return isFinal || corrected;
  }

  #text(): string {
    return joinText(this.#offlineText, this.#onlineText).trim();
  }

  #flushFrame(): void {
    if (!this.#fill) return;
    const pcm = this.#frame.subarray(0, this.#fill);
    // Copied: the frame buffer is reused.
    const bytes = Buffer.from(pcm.buffer.slice(pcm.byteOffset, pcm.byteOffset + pcm.byteLength));
    if (endianness() === 'BE') bytes.swap16(); // the servers take little-endian PCM
    this.#send(bytes);
    this.#fill = 0;
  }

  #send(m: Buffer | string): void {
    if (this.#done) return;
    if (this.#open && this.#ws?.readyState === WebSocket.OPEN) this.#ws.send(m);
    else if (!this.#open) this.#queue.push(m);
  }

  /** The socket failed or closed before the answer: keep the first cause, and end a waiting finish(). */
  #fail(err: Error): void {
    this.#open = false;
    if (this.#done) return;
    this.#failure ??= err;
    if (this.#pending) this.#endWithoutFinal(this.#failure);
  }

  /** No answer to the end flag: the text heard so far is the best there is; with none, it is an error. */
  #endWithoutFinal(err: Error): void {
    this.#finishWith(false, () =>
      this.#heard ? this.#pending?.resolve({ text: this.#text() }) : this.#pending?.reject(err),
    );
  }

  /** Ends the stream once: a clean close after the answer, otherwise the socket is cut at once. */
  #finishWith(answered: boolean, settle: () => void): void {
    if (this.#done) return;
    this.#done = true;
    clearTimeout(this.#timer);
    this.#opts.signal.removeEventListener('abort', this.#onAbort);
    this.#queue = [];
    if (answered && this.#ws?.readyState === WebSocket.OPEN) this.#ws.close(1000);
    else this.#ws?.terminate();
    settle();
    this.#pending = undefined;
  }
}

/** Joins result pieces; Latin words from separate results need a space, CJK text does not. */
function joinText(a: string, b: string): string {
  if (!a || !b) return a + b;
  return /[A-Za-z0-9.,!?;:]$/.test(a) && /^[A-Za-z0-9]/.test(b) ? `${a} ${b}` : a + b;
}

function wsError(alias: string, err: Error): ProviderError {
  const status = /Unexpected server response: (\d+)/.exec(err.message)?.[1];
  if (status) return new ProviderError(alias, 'http', `HTTP ${status} on the WebSocket upgrade`, { cause: err });
  if (/handshake has timed out/i.test(err.message))
    return new ProviderError(alias, 'timeout', err.message, { cause: err });
  const code = errorCode(err);
  return new ProviderError(
    alias,
    'network',
    `${err.message}${code && !err.message.includes(code) ? ` (${code})` : ''}`,
    { cause: err },
  );
}

/** `url` (ws:// or wss://), else the reference's `host` + `port` + `is_ssl` (default true, as FunASR's docker serves wss). */
function urlOf(block: ProviderBlock, where: string): string {
  const url = blockString(block, where, ['url', 'api_url', 'base_url']);
  if (url) {
    const u = url.replace(/^http(s?):\/\//, 'ws$1://');
    if (!/^wss?:\/\//.test(u)) throw new ProviderError(where, 'config', `${where}.url must start with ws:// or wss://`);
    return u;
  }
  const host = blockString(block, where, ['host']) ?? 'localhost';
  const port = blockNumber(block, where, ['port']) ?? 10095;
  return `${boolOf(block.is_ssl, true) ? 'wss' : 'ws'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function chunkSizeOf(v: unknown, where: string): number[] {
  if (v === undefined || v === null || v === '') return [5, 10, 5];
  const parts = Array.isArray(v) ? v.map(Number) : String(v).split(',').map(Number);
  // The C++ server drops the connection config unless chunk_size has three numbers with a non-zero middle.
  if (parts.length !== 3 || !parts.every(Number.isInteger) || parts[1] === 0) {
    throw new ProviderError(where, 'config', `${where}.chunk_size must be three integers such as [5, 10, 5]`);
  }
  return parts;
}

function boolOf(v: unknown, dflt: boolean): boolean {
  if (v === undefined || v === null || v === '') return dflt;
  return v === true || (typeof v === 'string' && ['true', '1', 'yes', 'on'].includes(v.toLowerCase())) || v === 1;
}
