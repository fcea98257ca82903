import { randomUUID } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import type { PrivateConfig } from '../config/private-config.js';
import type { ConfigStore } from '../config/store.js';
import { errorCode } from '../errors.js';
import type { DeviceConnection, DeviceRecord, DeviceRegistry } from '../hub/registry.js';
import type { ClusterHub } from '../hub/cluster/index.js';
import type { Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import { decodeFrame, type AudioFrame, type ProtocolVersion } from '../protocol/framing.js';
import type { HandshakeIds } from '../protocol/ids.js';
import { ErrorCode, readTextFrame, type ListenMessage } from '../protocol/messages.js';
import type { MessageTable } from './message-table.js';
import { IdleMonitor } from './idle.js';
import { McpClient } from './mcp-client.js';
import { RateWindow } from '../rate.js';
import { Scope } from './scope.js';
import { Sender } from './sender.js';
import { SOCKET_OPEN, type DeviceSocket } from './socket.js';

/** Everything a session needs from the server; nothing reaches sideways past this. */
export interface ServerContext {
  config: ConfigStore;
  metrics: Metrics;
  log: Logger;
  registry: DeviceRegistry;
  /** Key for tokens the server issues (device tokens, the vision token). */
  authKey: string;
  /** Work that outlives a session but not the server (memory saves): shutdown drains it before the store closes. */
  background: Scope;
  /** This server's message table: the protocol's handlers and every feature's. */
  messages: MessageTable<Session>;
  /** Session lifecycle, for features: registered (route taken), ready (first hello), closed. */
  events: EventEmitter<SessionEvents>;
  /** Cluster mode only: the Redis routes and bus shared with the other nodes (D17). */
  cluster?: ClusterHub;
}

/** How a voice turn ended and its latency by stage (ms): asr, llm, tts, send, total, server. */
export interface TurnReport {
  outcome: string;
  at: number;
  latencyMs: Record<string, number>;
}

export interface SessionEvents {
  registered: [session: Session];
  ready: [session: Session];
  closed: [session: Session];
  /** A voice turn ended (the same figures as linus_turn_stage_seconds). */
  turn: [session: Session, report: TurnReport];
  /** The server stopped accepting and is closing connections (long-lived HTTP streams end now). */
  draining: [];
  /** A meeting's transcript grew or its summary was stored. */
  meeting: [meetingId: string, change: 'transcript' | 'summary'];
}

export interface ConnectionInfo {
  ids: HandshakeIds;
  /** Host header of the upgrade request, to build URLs the device can reach us at. */
  host?: string;
  remoteAddress?: string;
  path: string;
}

export type ListenMode = 'auto' | 'manual' | 'realtime';

/** Where the voice pipeline attaches to a session: uplink audio, listen state changes, aborts. */
export interface SessionVoice {
  onAudio(session: Session, frame: AudioFrame): void;
  onListen(session: Session, message: ListenMessage): void;
  /** Must end with `tts stop` on the wire, whatever is in flight. */
  onAbort(session: Session, reason: string | undefined): void;
}

export type SessionState = 'connected' | 'ready' | 'closed';

/** The bad-frame reason of an error from the `ws` frame parser (its codes are `WS_ERR_*`); undefined for others. */
export function wsFrameError(err: Error): 'invalid_utf8' | 'over_hard_limit' | 'ws_protocol' | undefined {
  const code = errorCode(err);
  if (!code?.startsWith('WS_ERR_')) return undefined;
  if (code === 'WS_ERR_INVALID_UTF8') return 'invalid_utf8';
  if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') return 'over_hard_limit';
  return 'ws_protocol';
}

/**
 * One device connection: its scope (every timer, listener and task it starts), its single send path,
 * its handshake facts and protocol state. Closing happens in `close()` only, once.
 */
export class Session implements DeviceConnection {
  readonly connectionId = randomUUID();
  /** The `session_id` of the server hello; stable for the life of the connection (hello is idempotent). */
  readonly sessionId = randomUUID();
  readonly connectedAt = Date.now();
  readonly deviceId: string;
  readonly clientId: string;
  readonly scope: Scope;
  readonly send: Sender;
  #mcp: McpClient | undefined;
  #log: Logger | undefined;
  readonly info: ConnectionInfo;
  readonly ctx: ServerContext;
  #iot: { descriptors: Map<string, Record<string, unknown>>; states: Map<string, Record<string, unknown>> } | undefined;

  state: SessionState = 'connected';
  helloCount = 0;
  features: Record<string, unknown> = {};
  /** Uplink audio parameters from the client hello (defaults until then: 16 kHz, 60 ms). */
  uplink = { sampleRate: 16000, frameDuration: 60, format: 'opus' };
  listen: { state: 'idle' | 'listening'; mode: ListenMode } = { state: 'idle', mode: 'auto' };
  /** The last listen start/stop (kind = state:mode) and when, for the repeat debounce. */
  lastListen: { kind: string; at: number } = { kind: '', at: 0 };
  /** True while the server is speaking to the device; pauses the idle clock. */
  speaking = false;
  voice: SessionVoice | undefined;
  record: DeviceRecord | undefined;
  framesIn = 0;
  /** The device's own provider choices and prompt from the manager API, when it has any. */
  privateConfig: PrivateConfig | undefined;
  /** Set by transport: WS-level liveness for the ping sweep. */
  alive = true;

  readonly #ws: DeviceSocket;
  readonly #idle: IdleMonitor;
  #closeReason = '';
  #cancelHelloTimeout: (() => void) | undefined;
  readonly #rate = new RateWindow();
  #lastErrorReply: Map<string, number> | undefined;

  constructor(ws: DeviceSocket, info: ConnectionInfo, ctx: ServerContext) {
    this.#ws = ws;
    this.info = info;
    this.ctx = ctx;
    this.deviceId = info.ids.deviceId;
    this.clientId = info.ids.clientId;
    this.scope = new Scope('session', (err, where) => this.log.error({ err, where }, 'error in session scope'));
    this.send = new Sender(ws, ctx.metrics, {
      maxQueuedBytes: () => ctx.config.current.server.send_buffer_bytes,
      onOverflow: () => this.close(1013, 'peer is not reading'),
    });
    if (info.ids.protocolVersion) this.send.setProtocolVersion(info.ids.protocolVersion);
    if (info.ids.fromGateway) this.send.useGatewayFraming();
    this.#idle = new IdleMonitor({
      idleMs: () => this.idleLimitMs(),
      warningMs: () => ctx.config.current.server.idle_warning_ms,
      paused: () => this.speaking,
      onWarning: () =>
        this.notify('timeout_warning', 'The connection will close soon for inactivity; send anything to keep it open.'),
      onIdle: () => {
        ctx.metrics.idleCloses.labels('no_activity').inc();
        this.notify('idle_close', 'Closing the connection after a long idle period.');
        this.close(1000, 'idle');
      },
    });
  }

  // Built on first use: an idle connection carries no logger child, MCP client or IoT maps (memory per connection).
  get log(): Logger {
    this.#log ??= this.ctx.log.child({ device: this.deviceId, conn: this.connectionId.slice(0, 8) });
    return this.#log;
  }

  get mcp(): McpClient {
    this.#mcp ??= new McpClient(
      this.scope,
      (payload) => this.send.json({ type: 'mcp', payload }),
      (tools) => this.log.info({ tools: tools.length }, 'device MCP tools listed'),
    );
    return this.#mcp;
  }

  /** Legacy IoT descriptors and their latest states, by thing name. */
  get iot(): { descriptors: Map<string, Record<string, unknown>>; states: Map<string, Record<string, unknown>> } {
    this.#iot ??= { descriptors: new Map(), states: new Map() };
    return this.#iot;
  }

  /** Wires the socket and takes the device route. Called once, right after the upgrade. */
  start(): void {
    const { metrics, config } = this.ctx;
    metrics.connections.inc();
    metrics.connectionsTotal.inc();
    this.scope.on(this.#ws, 'message', (data: Buffer, isBinary: boolean) => this.#onFrame(data, isBinary));
    this.scope.on(this.#ws, 'pong', () => (this.alive = true));
    this.scope.on(this.#ws, 'close', () => this.close(1000, 'peer closed'));
    this.scope.on(this.#ws, 'error', (err: Error) => {
      // A frame the WebSocket parser refused (not UTF-8, over the hard limit, a framing error) ends the
      // connection before #onFrame sees it: it is counted here like every other bad frame.
      const reason = wsFrameError(err);
      if (reason) metrics.badFrames.labels(reason).inc();
      this.log.warn({ err: err.message }, 'socket error');
      this.close(1011, 'socket error');
    });
    const helloTimeout = config.current.server.hello_timeout_ms;
    if (helloTimeout > 0) {
      // Cancelled by the first frame, so a live connection does not keep a timer for it.
      this.#cancelHelloTimeout = this.scope.timeout(helloTimeout, () => {
        this.ctx.metrics.idleCloses.labels('no_hello').inc();
        this.close(1008, 'no hello');
      });
    }
    const { record, replaced } = this.ctx.registry.register(this);
    this.record = record;
    if (replaced) metrics.handovers.inc();
    metrics.devices.set(this.ctx.registry.size);
    if (this.ctx.log.isLevelEnabled('info'))
      this.log.info(
        {
          client: this.clientId,
          source: this.info.ids.source,
          path: this.info.path,
          protocol: this.send.protocolVersion,
          ...(this.info.ids.fromGateway ? { framing: 'gateway' } : {}),
          replaced: !!replaced,
        },
        'device connected',
      );
    if (this.info.ids.source === 'auto') this.log.warn('no device id in query or headers; using a generated id');
    this.#emit('registered');
  }

  /** Lifecycle events go to features; a failing listener is logged, never breaks the session. */
  #emit(event: keyof SessionEvents): void {
    try {
      this.ctx.events.emit(event, this);
    } catch (err) {
      this.log.error({ err, event }, 'session event listener failed');
    }
  }

  /** Called by the hello handler the first time a hello arrives. */
  markReady(): void {
    if (this.state !== 'connected') return;
    this.state = 'ready';
    const loaded = this.record?.loaded;
    if (!loaded) {
      this.#emit('ready');
      return;
    }
    // Cluster mode: features act on `ready` by the device's mode (working → manual listening), so they wait
    // for its kept state; the load ends within the Redis command timeout and never fails.
    void this.scope.run('device-state', async () => {
      await loaded;
      if (!this.closed) this.#emit('ready');
    });
  }

  /** Called by the server's sweep: timeout warning, then idle close (A7). */
  checkIdle(now: number): void {
    if (this.state !== 'closed') this.#idle.check(now);
  }

  /** Current binary framing version. */
  get protocolVersion(): ProtocolVersion {
    return this.send.protocolVersion;
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  /** Mode-dependent idle limit: ×3 in meeting and working modes (A7). */
  idleLimitMs(): number {
    const base = this.ctx.config.current.close_connection_no_voice_time * 1000;
    const mode = this.record?.state.get('mode');
    return mode === 'meeting' || mode === 'working' ? base * 3 : base;
  }

  /** The hub's way to hand this device a JSON message (same single send path). */
  deliver(message: { type: string } & Record<string, unknown>): boolean {
    return this.send.json(message);
  }

  deliverWritten(message: { type: string } & Record<string, unknown>): Promise<boolean> {
    return this.send.jsonWritten(message);
  }

  deliverText(json: string, type: string): boolean {
    return this.send.text(json, type);
  }

  /** `{"type":"system","event":...}` notice. */
  notify(event: string, message: string): boolean {
    return this.send.json({ type: 'system', event, message });
  }

  /** A throttled `{"type":"error"}` reply: at most one per code per second, so bad input cannot amplify. */
  replyError(code: ErrorCode, message: string, extra: Record<string, unknown> = {}): void {
    const now = Date.now();
    this.#lastErrorReply ??= new Map();
    if (now - (this.#lastErrorReply.get(code) ?? 0) < 1000) return;
    this.#lastErrorReply.set(code, now);
    this.send.json({ type: 'error', code, message, ...extra });
  }

  /** Called by the registry when a newer connection of this device took the route over. */
  replacedBy(newer: DeviceConnection): void {
    const delay = this.ctx.config.current.server.handover_close_ms;
    this.log.info({ newer: newer.connectionId.slice(0, 8), delay }, 'replaced by a newer connection');
    this.send.json({
      type: 'system',
      event: 'replaced',
      message: `A new connection of this device took over; this one closes in ${delay} ms.`,
    });
    this.scope.timeout(delay, () => this.close(1000, 'replaced'));
  }

  /** Idempotent: closes the scope (timers, listeners, tasks), the socket and the route. */
  close(code = 1000, reason = ''): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.#closeReason = reason;
    this.scope.close();
    this.send.dispose();
    const { registry, metrics } = this.ctx;
    registry.unregister(this);
    metrics.devices.set(registry.size);
    metrics.connections.dec();
    if (this.#ws.readyState === SOCKET_OPEN) {
      try {
        this.#ws.close(code, reason.slice(0, 120));
      } catch {
        // A close frame that cannot be sent: the socket is cut instead, and the close is logged below.
        this.#ws.terminate();
      }
    }
    if (this.ctx.log.isLevelEnabled('info')) this.log.info({ code, reason }, 'device disconnected');
    this.#emit('closed');
  }

  get closeReason(): string {
    return this.#closeReason;
  }

  /** Cuts the socket without a closing handshake (dead peer). */
  terminate(): void {
    this.#ws.terminate();
    this.close(1006, 'dead peer');
  }

  /** Sends a WS-level ping; returns false when the peer missed the previous one. */
  ping(): boolean {
    if (!this.alive) return false;
    this.alive = false;
    try {
      this.#ws.ping();
    } catch {
      // A socket that cannot take a ping is as dead as one that missed it: the sweep terminates it.
      return false;
    }
    return true;
  }

  #onFrame(data: Buffer, isBinary: boolean): void {
    if (this.state === 'closed') return;
    const { metrics, config } = this.ctx;
    const limits = config.current.server;
    if (this.framesIn++ === 0 && this.#cancelHelloTimeout) {
      this.#cancelHelloTimeout();
      this.#cancelHelloTimeout = undefined;
    }
    this.alive = true;
    this.#idle.touch();
    if (!this.#rate.admit(limits.max_messages_per_second)) {
      metrics.badFrames.labels('rate_limited').inc();
      this.replyError(
        ErrorCode.RateLimited,
        `more than ${limits.max_messages_per_second} frames per second; frame dropped`,
      );
      return;
    }
    if (data.length > limits.max_frame_bytes) {
      metrics.badFrames.labels('too_large').inc();
      this.replyError(
        ErrorCode.FrameTooLarge,
        `frame of ${data.length} bytes exceeds server.max_frame_bytes (${limits.max_frame_bytes}); dropped`,
      );
      return;
    }
    if (isBinary) this.#onBinary(data);
    else this.#onText(data);
  }

  #onBinary(data: Buffer): void {
    const { metrics } = this.ctx;
    metrics.countIn('binary', data.length);
    const decoded = decodeFrame(this.send.protocolVersion, data, { gateway: this.send.gatewayFraming });
    if (!decoded.ok) {
      metrics.badFrames.labels(`binary_${decoded.reason}`).inc();
      if (decoded.reason !== 'empty') {
        this.replyError(
          ErrorCode.BadFrame,
          `binary frame rejected (${decoded.reason}) for protocol v${this.send.protocolVersion}`,
        );
      }
      return;
    }
    // Audio before hello is accepted and decoded with the default parameters (D4).
    this.voice?.onAudio(this, decoded.frame);
  }

  #onText(data: Buffer): void {
    const { metrics } = this.ctx;
    const text = data.toString('utf8');
    const frame = readTextFrame(text);
    switch (frame.kind) {
      case 'bad_json':
        metrics.countIn('invalid', data.length);
        metrics.badFrames.labels('bad_json').inc();
        this.log.debug({ error: frame.error, text }, 'bad JSON frame');
        this.replyError(ErrorCode.BadJson, `not valid JSON: ${frame.error}`);
        return;
      case 'number':
        metrics.countIn('number', data.length);
        this.send.text(frame.text, 'number');
        return;
      case 'no_type':
        metrics.countIn('invalid', data.length);
        metrics.badFrames.labels('no_type').inc();
        this.replyError(ErrorCode.NoType, 'a message must be a JSON object with a string "type"');
        return;
      case 'message':
        metrics.countIn(frame.type, data.length);
        this.ctx.messages.dispatch(this, frame.type, frame.message);
        return;
    }
  }

  /** The transport's part of the server hello (`transport`, and for UDP its `udp` block). */
  transportHello(): Record<string, unknown> {
    return this.#ws.helloFields?.() ?? { transport: 'websocket' };
  }

  /** Lets the send-side code know whether the socket is still usable. */
  get writable(): boolean {
    return this.state !== 'closed' && this.#ws.readyState === SOCKET_OPEN;
  }
}
