import type { SenderSocket } from './sender.js';

/**
 * What a session needs from its device link. It is the shape of the `ws` WebSocket, so a WebSocket is one as it
 * is; other transports (MQTT + UDP) present the same shape through an adapter, and the session, the voice pipeline
 * and the features never learn which one carries a device.
 *
 * Events: `message` (data: Buffer, isBinary: boolean), `pong`, `close`, `error` (err: Error).
 */
export interface DeviceSocket extends SenderSocket {
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  off(event: string, listener: (...args: unknown[]) => void): unknown;
  close(code?: number, reason?: string): void;
  terminate(): void;
  ping(): void;
  /** Fields of the server hello that belong to the transport; absent = `transport: "websocket"`. */
  helloFields?(): Record<string, unknown>;
}

export { SOCKET_OPEN } from './sender.js';
