/**
 * `linus bench talk --transport mqtt`: every level runs twice on the same server, over WebSocket and then over
 * MQTT + UDP (bench/voice-link.ts), and the MQTT figures are set against the WebSocket ones. Target (issue #15):
 * MQTT within 10 % of WebSocket on late downlink frames, VAD end → first frame and server CPU per device turn.
 */
import type { VoiceTransport } from '../voice-link.js';
import type { Figure } from './profile.js';
import type { LevelResult } from './voice-load.js';

export const TRANSPORT_TARGET_PCT = 10;

/**
 * Absolute slack under which a difference is noise, not a transport cost: 10 % of a value near zero is below what
 * one run can resolve (a late-frame share of 0.1 % is one frame in a thousand; latency buckets are ms wide).
 */
const SLACK = { latePct: 0.2, latencyMs: 1, cpuPerTurnMs: 1 };

/** The server's own MQTT broker and UDP port, on free ports (a Mosquitto may hold 1883 on the bench machine). */
export const MQTT_SERVER_CONFIG = { server: { mqtt: { enabled: true, port: 0 }, udp: { port: 0 } } };

/** The transports a level runs over for `--transport`. */
export function levelTransports(flag: VoiceTransport): VoiceTransport[] {
  return flag === 'mqtt' ? ['websocket', 'mqtt'] : ['websocket'];
}

/** How a level's figure names say the transport: WebSocket keeps the names it always had. */
export function transportLabel(transport: VoiceTransport | undefined): string {
  return transport === 'mqtt' ? ' over MQTT + UDP' : '';
}

/**
 * Server CPU per completed turn (ms), the mean over every round of a level: CPU for the same work, whatever the
 * length of the window, and averaged because on a shared box one round's figure moves by ±20 %.
 */
export function cpuMsPerTurn(rounds: LevelResult[]): number {
  const per = rounds
    .filter((r) => r.turns.completed > 0)
    .map((r) => ((r.server.cpuPct / 100) * r.windowSeconds * 1000) / r.turns.completed);
  return per.length ? per.reduce((a, b) => a + b, 0) / per.length : NaN;
}

/** One transport's runs of a level: the round reported and every round run. */
export interface TransportRuns {
  chosen: LevelResult;
  rounds: LevelResult[];
}

/** MQTT against WebSocket at one level: each figure is the MQTT value, its target the WebSocket value + 10 %. */
export function transportFigures(devices: number, wsRuns: TransportRuns, mqttRuns: TransportRuns): Figure[] {
  const [ws, mqtt] = [wsRuns.chosen, mqttRuns.chosen];
  const p = `${devices} devices, MQTT vs WebSocket: `;
  const within = (name: string, unit: string, m: number, w: number, slack: number): Figure => {
    const bound = Math.max(w * (1 + TRANSPORT_TARGET_PCT / 100), w + slack);
    const shown = unit === '%' ? `${w.toFixed(2)} %` : `${w.toFixed(unit === 'ms' ? 1 : 2)} ${unit}`;
    return {
      name: `${p}${name}`,
      value: m,
      unit,
      target: `≤ WebSocket ${shown} + ${TRANSPORT_TARGET_PCT} %`,
      ...(Number.isFinite(m) && Number.isFinite(w) ? { met: m <= bound } : {}),
    };
  };
  return [
    within(
      'downlink frame intervals > 65 ms',
      '%',
      mqtt.client.lateIntervalsPct,
      ws.client.lateIntervalsPct,
      SLACK.latePct,
    ),
    within(
      'server-added latency p50 (VAD end → first frame)',
      'ms',
      mqtt.server.stages.total!.p50,
      ws.server.stages.total!.p50,
      SLACK.latencyMs,
    ),
    within(
      'client: VAD-end frame sent → first reply frame p50',
      'ms',
      mqtt.client.vadEndToFirstFrameMs.p50,
      ws.client.vadEndToFirstFrameMs.p50,
      SLACK.latencyMs,
    ),
    within(
      `server CPU per device turn (mean of ${mqttRuns.rounds.length} vs ${wsRuns.rounds.length} rounds)`,
      'ms',
      cpuMsPerTurn(mqttRuns.rounds),
      cpuMsPerTurn(wsRuns.rounds),
      SLACK.cpuPerTurnMs,
    ),
  ];
}
