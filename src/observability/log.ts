import { createWriteStream } from 'node:fs';
import { dirname } from 'node:path';
import type { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { makeDirs } from '../dirs.js';
import { errorCode, errorMessage } from '../errors.js';
import { until } from '../lifecycle.js';

export type { Logger } from 'pino';

/** Keys whose values never reach a log line. */
const REDACT_PATHS = [
  'authorization',
  'token',
  'secret',
  'password',
  'api_key',
  'apiKey',
  'auth_key',
  '*.authorization',
  '*.token',
  '*.secret',
  '*.password',
  '*.api_key',
  '*.apiKey',
  '*.auth_key',
  'headers.authorization',
  'req.headers.authorization',
  'content.secret',
];

export interface LogOptions {
  level: string;
  /** Longer message strings keep their head and tail. */
  maxMessageLength: number;
  /** File to append to; empty = stdout. */
  file?: string;
}

/** Cuts a long string to its head and tail so that one huge payload cannot flood the log. */
export function truncateForLog(text: string, max: number): string {
  if (text.length <= max) return text;
  const keep = Math.max(0, max - 40);
  const head = Math.ceil(keep * 0.7);
  const tail = keep - head;
  return `${text.slice(0, head)} …[${text.length - keep} chars cut]… ${tail > 0 ? text.slice(-tail) : ''}`;
}

/** A stalled reader holds at most this much of our output; later lines are dropped (and counted) until it reads. */
const MAX_PENDING_BYTES = 8 * 1024 * 1024;

/**
 * Where log lines go: stdout or the log file, written without ever waiting on the reader. pino's own destination
 * (sonic-boom) is not used: at exit it flushes synchronously and retries a failed write forever, so with the
 * reader of our stdout gone (EPIPE: `linus serve | head`, a dead log shipper) the process hung in `process.exit`,
 * deaf even to a second signal. Here a sink that fails stops taking lines, one that stalls holds at most
 * MAX_PENDING_BYTES, and a stop waits for the output only until its deadline; what is left then is lost.
 */
class LogSink {
  #pending = 0;
  #dropped = 0;
  #done = false;
  #idle: (() => void)[] = [];

  constructor(
    readonly out: Writable,
    readonly what: string,
  ) {
    // Kept for good, also after close: a write still in flight may fail later, and an unheard error would crash us.
    out.on('error', (err) => this.#fail(err));
  }

  /** pino's destination interface: one serialized line. */
  write(line: string): void {
    if (this.#done) return;
    if (this.out.writableLength > MAX_PENDING_BYTES) {
      this.#dropped++;
      return;
    }
    if (this.#dropped > 0) {
      const note = {
        level: 40,
        time: Date.now(),
        pid: process.pid,
        msg: `${this.#dropped} log lines dropped: the log reader did not keep up`,
      };
      this.#dropped = 0;
      this.#send(`${JSON.stringify(note)}\n`);
    }
    this.#send(line);
  }

  /** pino's `logger.flush(cb)`: calls back once every line so far is out (or the sink has failed). */
  flush(cb: () => void = () => {}): void {
    if (this.#pending === 0 || this.#done) process.nextTick(cb);
    else this.#idle.push(cb);
  }

  /** Waits for the lines so far until `deadline`, then takes no more; a file is closed, stdout is left open. */
  async close(deadline: AbortSignal): Promise<void> {
    await until(new Promise<void>((resolve) => this.flush(resolve)), deadline);
    this.#stop();
    if (this.out !== process.stdout) this.out.destroy();
  }

  #send(line: string): void {
    this.#pending++;
    this.out.write(line, (err) => {
      this.#pending--;
      if (err) this.#fail(err);
      else if (this.#pending === 0) this.#wake();
    });
  }

  #fail(err: Error): void {
    if (this.#done) return;
    this.#stop();
    // The log itself is gone, so the operator hears it on stderr, once; when stderr is gone too
    // (`linus serve 2>&1 | head`), nobody is left to tell, and its error must not crash the server.
    if (!process.stderr.listeners('error').includes(ignore)) process.stderr.on('error', ignore);
    process.stderr.write(
      `linus: writing the log to ${this.what} failed (${errorCode(err) ?? errorMessage(err)}); logging stops\n`,
    );
  }

  #stop(): void {
    this.#done = true;
    this.#wake();
  }

  #wake(): void {
    for (const cb of this.#idle.splice(0)) cb();
  }
}

function ignore(): void {}

const sinks = new WeakMap<Logger, LogSink>();

export function createLogger(opts: LogOptions): Logger {
  const level = opts.level === 'warning' ? 'warn' : opts.level;
  const max = opts.maxMessageLength;
  let sink: LogSink;
  if (opts.file) {
    makeDirs(dirname(opts.file));
    sink = new LogSink(createWriteStream(opts.file, { flags: 'a' }), opts.file);
  } else {
    sink = new LogSink(process.stdout, 'stdout');
  }
  const log = pino(
    {
      level,
      base: { pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: '***' },
      hooks: {
        logMethod(args, method) {
          const cut = args.map((a: unknown) => (typeof a === 'string' ? truncateForLog(a, max) : a));
          return method.apply(this, cut as Parameters<typeof method>);
        },
      },
    },
    sink,
  );
  sinks.set(log, sink);
  return log;
}

/**
 * Ends the output of a logger made by `createLogger`: lines written so far get until `deadline` to leave, later
 * ones are dropped. Whatever the reader does, this returns by the deadline and leaves nothing to flush at exit.
 */
export function closeLogger(log: Logger, deadline: AbortSignal): Promise<void> {
  return sinks.get(log)?.close(deadline) ?? Promise.resolve();
}

/** A logger that drops everything (library use, quiet tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
