import { signDeviceToken } from '../protocol/auth-token.js';
import { parseProtocolVersion } from '../protocol/ids.js';
import {
  abortSchema,
  configUpdateSchema,
  goodbyeSchema,
  heartbeatSchema,
  helloSchema,
  iotSchema,
  listenSchema,
  mcpSchema,
} from '../protocol/messages.js';
import type { MessageTable } from './message-table.js';
import type { Session } from './session.js';

/** Repeated `listen` start/stop of the same kind within this window is ignored (fork-contracts §5). */
export const LISTEN_DEBOUNCE_MS = 300;

/** The protocol's own messages; features register theirs next to these. */
export function registerCoreHandlers(table: MessageTable<Session>): void {
  // Heartbeat: answered here and nowhere else (seed #11).
  table.register(['ping', 'keepalive'], {
    schema: heartbeatSchema,
    handle(session) {
      session.send.json({ type: 'pong' });
    },
  });

  table.register('hello', {
    schema: helloSchema,
    handle(session, hello) {
      session.helloCount++;
      const version = parseProtocolVersion(hello.version);
      if (version) session.send.setProtocolVersion(version);
      if (hello.features) session.features = { ...session.features, ...hello.features };
      const ap = hello.audio_params;
      if (ap) {
        session.uplink = {
          sampleRate: ap.sample_rate ?? session.uplink.sampleRate,
          frameDuration: ap.frame_duration ?? session.uplink.frameDuration,
          format: ap.format ?? session.uplink.format,
        };
      }
      const tpl = session.ctx.config.current.xiaozhi;
      // Advertise what downlink audio is really encoded at, never an echo of the client's params (D4).
      session.send.json({
        type: 'hello',
        version: session.protocolVersion,
        ...session.transportHello(),
        session_id: session.sessionId,
        audio_params: { ...tpl.audio_params },
      });
      session.markReady();
      if (session.features.mcp === true && !session.mcp.started) session.mcp.start(visionCapability(session));
    },
  });

  table.register('mcp', {
    schema: mcpSchema,
    handle(session, msg) {
      if (!session.mcp.handle(msg.payload)) session.log.debug({ id: msg.payload.id }, 'unmatched MCP message');
    },
  });

  table.register('iot', {
    schema: iotSchema,
    handle(session, msg) {
      for (const d of msg.descriptors ?? []) session.iot.descriptors.set(d.name, d);
      for (const s of msg.states ?? []) {
        session.iot.states.set(s.name, { ...(session.iot.states.get(s.name) ?? {}), ...s.state });
      }
    },
  });

  table.register('listen', {
    schema: listenSchema,
    handle(session, msg) {
      if (msg.state === 'start' || msg.state === 'stop') {
        // Firmware jitter sends the same start/stop twice in a row; as the fork, the repeat within 300 ms is ignored.
        const kind = `${msg.state}:${msg.mode ?? ''}`;
        const now = Date.now();
        const repeat = session.lastListen.kind === kind && now - session.lastListen.at < LISTEN_DEBOUNCE_MS;
        session.lastListen = { kind, at: now };
        if (repeat) return;
      }
      if (msg.state === 'start') session.listen = { state: 'listening', mode: msg.mode ?? session.listen.mode };
      else if (msg.state === 'stop') session.listen = { ...session.listen, state: 'idle' };
      session.voice?.onListen(session, msg);
    },
  });

  table.register('abort', {
    schema: abortSchema,
    handle(session, msg) {
      session.send.dropQueuedAudio();
      if (session.voice) session.voice.onAbort(session, msg.reason);
      else session.send.json({ type: 'tts', state: 'stop', session_id: session.sessionId });
    },
  });

  // Legacy message: acknowledged as a no-op, as the fork does.
  table.register('config_update', {
    schema: configUpdateSchema,
    handle(session, msg) {
      const keys = msg.config && typeof msg.config === 'object' ? Object.keys(msg.config) : [];
      session.log.info({ keys }, 'config_update ignored (no-op)');
      session.send.json({ type: 'config_update', status: 'ok', noop: true });
    },
  });

  table.register('goodbye', {
    schema: goodbyeSchema,
    handle(session) {
      session.close(1000, 'goodbye');
    },
  });
}

function visionCapability(session: Session): { url: string; token: string } {
  const server = session.ctx.config.current.server;
  const url = server.vision_explain || `http://${session.info.host ?? `127.0.0.1:${server.port}`}/mcp/vision/explain`;
  return { url, token: signDeviceToken(session.ctx.authKey, session.clientId, session.deviceId, Date.now() / 1000) };
}
