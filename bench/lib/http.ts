/**
 * GET without a pooled connection (`agent: false`, Connection: close): a bench's own requests (/health, /metrics)
 * must not leave keep-alive sockets in the server under test, where they would count as its open fds and handles.
 */
import http from 'node:http';

/** The body as text; rejects on a network error or when no answer comes within timeoutMs. */
export function httpGet(url: string, timeoutMs = 10_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers: { connection: 'close' }, timeout: timeoutMs }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}
