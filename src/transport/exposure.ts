import type { LinusConfig } from '../config/schema.js';
import { isLoopback } from './http-util.js';

/**
 * The start-up line for a server that other machines can reach: what it serves them without a secret, and the
 * key that closes each. Undefined when it listens on loopback only, or nothing is open.
 */
export function exposureNotice(config: LinusConfig, host: string, port: number): string | undefined {
  if (host === 'localhost' || isLoopback(host)) return undefined;
  const { auth, meeting_api_token: apiToken, allow_open_api_on_network: apiOpen } = config.server;
  const open: string[] = [];
  if (!auth.enabled) open.push('devices connect without a token (server.auth.enabled: true closes it)');
  if (!apiToken && apiOpen)
    open.push('the meeting API answers anyone without a token (server.meeting_api_token closes it)');
  if (!open.length) return undefined;
  const api =
    !apiToken && !apiOpen ? '; the meeting API answers this machine only until server.meeting_api_token is set' : '';
  return `open to the network on ${host}:${port}: ${open.join('; ')}${api}. To keep Linus to this machine, listen on 127.0.0.1 (server.ip or --host).`;
}
