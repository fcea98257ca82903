import { EventEmitter } from 'node:events';
import type { Metrics } from '../../observability/metrics.js';
import { decodeFrame, encodeFrame } from '../../protocol/framing.js';
import { SOCKET_OPEN, type DeviceSocket } from '../../session/socket.js';
import { makeNonce, newUdpKey, openUdpPacket, sealUdpPacket, UDP_ENCRYPTION, type UdpHeader } from './udp-packet.js';

const CLOSED = 3;

/** ~60 s of 60 ms packets lost in a row: beyond that the jump is not loss but a forgery. */
const MAX_SEQUENCE_JUMP = 1000;

export interface UdpPeer {
  address: string;
  port: number;
}

/** What a channel needs from the transport that owns it. */
export interface ChannelLink {
  /** Publishes one JSON message to the device's MQTT connection. */
  publish(json: string, cb: (err?: Error) => void): void;
  sendUdp(packet: Buffer, to: UdpPeer, cb: (err?: Error) => void): void;
  /** Where the device sends its datagrams (the server hello's `udp.server` / `udp.port`). */
  udp: { server: string; port: number };
  /** Called once when the channel closes, so the transport forgets its ssrc. */
  released(channel: UdpChannel): void;
  metrics: Metrics;
}

/**
 * One audio channel of an MQTT + UDP device (hello … goodbye), presented to the session as the WebSocket it
 * expects: JSON comes and goes over MQTT, audio over UDP with the firmware's header and AES-128-CTR. Audio frames
 * cross the boundary in v2 framing (the session pins it, as for a gateway link), so the timestamp travels both ways.
 */
export class UdpChannel extends EventEmitter implements DeviceSocket {
  readyState = SOCKET_OPEN;
  readonly ssrc: number;
  readonly #key = newUdpKey();
  readonly #nonce: Buffer;
  readonly #link: ChannelLink;
  /** The session this channel carries; sent back in `goodbye` so the firmware matches it. */
  sessionId = '';
  #peer: UdpPeer | undefined;
  #remoteSequence = 0;
  #localSequence = 0;

  constructor(ssrc: number, link: ChannelLink) {
    super();
    this.ssrc = ssrc;
    this.#nonce = makeNonce(ssrc);
    this.#link = link;
  }

  helloFields(): Record<string, unknown> {
    return {
      transport: 'udp',
      udp: {
        server: this.#link.udp.server,
        port: this.#link.udp.port,
        encryption: UDP_ENCRYPTION,
        key: this.#key.toString('hex'),
        nonce: this.#nonce.toString('hex'),
      },
    };
  }

  /** Where audio goes now: learnt from the device's datagrams (nothing can reach it before the first one). */
  get peer(): UdpPeer | undefined {
    return this.#peer;
  }

  /** A JSON message the device published. */
  receiveJson(payload: Buffer): void {
    if (this.readyState === SOCKET_OPEN) this.emit('message', payload, false);
  }

  /**
   * A datagram whose ssrc names this channel. Stale or repeated sequence numbers are refused (the reason is
   * returned for counting); a newer one is taken, and its source becomes the peer, which follows NAT rebinding.
   * After the first packet a jump far ahead is refused too: the device counts up by one per packet, so only a
   * forged packet (the ssrc is visible on the wire, the payload is not authenticated) leaps thousands ahead, and
   * taking it would lock the real device out and move its audio to the forger's address. The first packet sets
   * the start freely: firmware forks that do not reset their counter on a new hello start anywhere.
   */
  receiveUdp(packet: Buffer, header: UdpHeader, from: UdpPeer): string | undefined {
    if (this.readyState !== SOCKET_OPEN) return 'udp_closed_session';
    if (header.sequence <= this.#remoteSequence) return 'udp_stale_sequence';
    if (this.#remoteSequence !== 0 && header.sequence - this.#remoteSequence > MAX_SEQUENCE_JUMP)
      return 'udp_sequence_jump';
    this.#remoteSequence = header.sequence;
    if (!this.#peer || this.#peer.address !== from.address || this.#peer.port !== from.port)
      this.#peer = { address: from.address, port: from.port };
    this.emit('message', encodeFrame(2, openUdpPacket(this.#key, packet), header.timestamp), true);
    return undefined;
  }

  send(data: Buffer | string, options: { binary: boolean }, cb: (err?: Error) => void): void {
    if (this.readyState !== SOCKET_OPEN) {
      cb(new Error('channel closed'));
      return;
    }
    if (!options.binary) {
      this.#link.publish(typeof data === 'string' ? data : data.toString('utf8'), cb);
      return;
    }
    const frame = decodeFrame(2, Buffer.isBuffer(data) ? data : Buffer.from(data), { gateway: true });
    if (!frame.ok) {
      cb(new Error(`unframed audio: ${frame.reason}`));
      return;
    }
    if (!this.#peer) {
      this.#link.metrics.sendFailures.labels('udp_no_peer').inc();
      cb();
      return;
    }
    const { payload, timestamp } = frame.frame;
    this.#link.sendUdp(
      sealUdpPacket(this.#key, this.#nonce, payload, timestamp, ++this.#localSequence),
      this.#peer,
      cb,
    );
  }

  /** The server ends the channel: the device is told with `goodbye`, as the firmware expects. */
  close(code = 1000, reason = ''): void {
    if (this.readyState !== SOCKET_OPEN) return;
    this.#link.publish(JSON.stringify({ type: 'goodbye', session_id: this.sessionId }), () => {});
    this.end(code, reason);
  }

  /** Ends the channel without a goodbye: the device said goodbye, sent a new hello, or its MQTT link is gone. */
  end(code = 1000, reason = ''): void {
    if (this.readyState !== SOCKET_OPEN) return;
    this.readyState = CLOSED;
    this.#link.released(this);
    this.emit('close', code, reason);
  }

  terminate(): void {
    this.end(1006, 'terminated');
  }

  /** Liveness of an MQTT device is the broker's keepalive (a dead client is dropped, ending this channel). */
  ping(): void {
    this.emit('pong');
  }
}
