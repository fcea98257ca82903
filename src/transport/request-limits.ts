import { STATUS_CODES, maxHeaderSize, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Metrics } from '../observability/metrics.js';
import { sendJson } from './http-util.js';

/** Header lines one request may carry (Apache's LimitRequestFields); a device sends about ten. */
export const MAX_HEADER_COUNT = 100;

/** How long a refused client may stay idle while its error answer is still unread. */
const ANSWER_GRACE_MS = 5_000;

type RefusalReason = 'header_too_large' | 'too_many_headers' | 'body_too_large' | 'bad_request' | 'timeout';

/** A complete HTTP/1.1 error answer for a socket no ServerResponse owns (parser errors, refused upgrades). */
export function rawHttpResponse(status: number, message: string, headers: Record<string, string> = {}): string {
  const body = JSON.stringify({ success: false, error: message });
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
    `${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

/** Over MAX_HEADER_COUNT header lines: the 431 message; else undefined. */
export function tooManyHeaders(req: IncomingMessage): string | undefined {
  const count = req.rawHeaders.length / 2;
  return count > MAX_HEADER_COUNT ? `${count} header lines; at most ${MAX_HEADER_COUNT} are accepted` : undefined;
}

/**
 * Oversized requests get an answer and are counted, instead of a closed socket: the parser's limits (a URL or
 * header block over `maxHeaderSize`, 16 KB) answer 431 from `clientError`, more than MAX_HEADER_COUNT header lines
 * answer 431 before routing, and every 413 (a body over its route's limit, see readBody) is counted.
 * Returns the request listener to install, wrapping `handle`.
 */
export function limitRequests(
  http: Server,
  metrics: Metrics,
  handle: (req: IncomingMessage, res: ServerResponse) => void,
): (req: IncomingMessage, res: ServerResponse) => void {
  // Parse every header line so too many are refused (Node's default silently drops those after the 2,000th);
  // maxHeaderSize still bounds the memory.
  http.maxHeadersCount = 0;
  http.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => answerClientError(err, socket, metrics));
  return (req, res) => {
    const tooMany = tooManyHeaders(req);
    if (tooMany) {
      metrics.httpRefused.labels('too_many_headers').inc();
      sendJson(res, 431, { success: false, error: tooMany }, { connection: 'close' });
      return;
    }
    res.once('finish', () => {
      if (res.statusCode === 413) metrics.httpRefused.labels('body_too_large').inc();
    });
    handle(req, res);
  };
}

/** What the parser refused: status and metric reason; undefined for a peer that went away (nothing to answer). */
function classify(code: string | undefined): { status: number; reason: RefusalReason } | undefined {
  if (code === 'ECONNRESET' || code === 'EPIPE') return undefined;
  if (code === 'HPE_HEADER_OVERFLOW') return { status: 431, reason: 'header_too_large' };
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return { status: 408, reason: 'timeout' };
  if (code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW') return { status: 413, reason: 'body_too_large' };
  return { status: 400, reason: 'bad_request' };
}

function answerClientError(err: NodeJS.ErrnoException, socket: Duplex, metrics: Metrics): void {
  // Ended by an earlier answer: its end callback destroys the socket once the answer is out.
  if (socket.writableEnded) return;
  const kind = classify(err.code);
  // A response of this connection already on the wire cannot be followed by a second status line.
  const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } | null })._httpMessage?.headersSent;
  if (!kind || !socket.writable || inFlight) {
    socket.destroy();
    return;
  }
  metrics.httpRefused.labels(kind.reason).inc();
  const message =
    kind.status === 431
      ? `request line and headers over ${maxHeaderSize} bytes`
      : kind.status === 408
        ? 'request not received in time'
        : `malformed request (${err.code ?? 'parse error'})`;
  socket.end(rawHttpResponse(kind.status, message), () => socket.destroy());
  // A client that never reads the answer must not hold the socket: the idle timer belongs to the socket itself.
  if (socket instanceof Socket) socket.setTimeout(ANSWER_GRACE_MS, () => socket.destroy());
}
