import { request } from 'node:http';
import type { Json } from './device.js';
import type { TestServer } from './server.js';

export interface HttpReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The body parsed as JSON; `{}` when it is not JSON (callers that expect JSON fail on their field checks). */
  json: Json;
}

export interface HttpOptions {
  headers?: Record<string, string>;
  /** A string is sent as is; anything else as JSON. */
  body?: unknown;
  /** Another local address to send from: to the server, a client on another machine. */
  from?: string;
}

/** One HTTP request over a real socket (node:http, so any header, the Host included, can be set). */
export function httpRequest(
  server: TestServer,
  method: string,
  path: string,
  opts: HttpOptions = {},
): Promise<HttpReply> {
  const body =
    opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: server.port,
        method,
        path,
        headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers },
        agent: false,
        ...(opts.from ? { localAddress: opts.from } : {}),
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          let json: Json = {};
          try {
            json = JSON.parse(text) as Json;
          } catch {
            // not JSON: the status and field checks of the caller say what went wrong
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
