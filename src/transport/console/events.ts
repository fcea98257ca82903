import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Scope } from '../../session/scope.js';

/** A client that stopped reading is dropped once this much is waiting for it. */
const MAX_BUFFERED = 1 << 20;
const KEEPALIVE_MS = 15_000;

/**
 * The console's one push channel: Server-Sent Events to every open console page. An event is serialized once
 * for all clients; a comment line every 15 s keeps idle connections through proxies. Every stream is ended
 * when the owning scope closes.
 */
export class EventStream {
  readonly #clients = new Set<ServerResponse>();

  constructor(scope: Scope) {
    scope.interval(KEEPALIVE_MS, () => this.#write(': keepalive\n\n'));
    scope.add(() => this.end());
  }

  /** Ends every stream (a page reconnects by itself when the server is back). */
  end(): void {
    for (const res of this.#clients) res.end();
    this.#clients.clear();
  }

  get size(): number {
    return this.#clients.size;
  }

  /** Takes the response over as a stream; `first` are the events every new client starts with. */
  open(req: IncomingMessage, res: ServerResponse, first: { event: string; data: unknown }[]): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      // Never reused: once the stream ends (shutdown), the socket goes too instead of idling until its timeout.
      connection: 'close',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    for (const e of first) res.write(frame(e.event, e.data));
    this.#clients.add(res);
    const drop = () => this.#clients.delete(res);
    req.on('close', drop);
    res.on('close', drop);
  }

  send(event: string, data: unknown): void {
    if (this.#clients.size) this.#write(frame(event, data));
  }

  #write(text: string): void {
    for (const res of this.#clients) {
      if (res.writableLength > MAX_BUFFERED) {
        this.#clients.delete(res);
        res.destroy();
        continue;
      }
      res.write(text);
    }
  }
}

function frame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
