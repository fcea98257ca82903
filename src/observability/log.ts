import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { pino, type Logger } from 'pino';

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

export function createLogger(opts: LogOptions): Logger {
  const level = opts.level === 'warning' ? 'warn' : opts.level;
  const max = opts.maxMessageLength;
  let destination: pino.DestinationStream | undefined;
  if (opts.file) {
    mkdirSync(dirname(opts.file), { recursive: true });
    destination = pino.destination({ dest: opts.file, append: true, mkdir: true, sync: false });
  }
  return pino(
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
    destination,
  );
}

/** A logger that drops everything (library use, quiet tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
