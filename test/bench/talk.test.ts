import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { LevelResult } from '../../bench/lib/voice-load.js';
import { explainRun, figure, nonFinite, runBench } from './run-bench.js';

/** `linus bench talk --smoke`: 2 devices, one turn each, through real sockets; correctness only, never timing. */
it('talk: every turn completes and ends with tts stop; figures, series and histograms are there', async () => {
  const run = await runBench(['talk', '--smoke', '--source', '--json']);
  const r = run.result;
  assert.equal(run.code, 0, explainRun(run));
  assert.ok(r.ok, explainRun(run));
  assert.equal(r.profile, 'talk');
  assert.equal(figure(r, '2 devices: devices connected').value, 2, explainRun(run));
  assert.equal(figure(r, '2 devices: turns completed').value, 100, explainRun(run));
  // Completed = tts stop received after at least one audio frame, for each of the 2 devices' turn.
  const level = (r.details as { levels: Array<{ chosen: LevelResult }> }).levels[0]!.chosen;
  assert.deepEqual(level.turns.outcomes, { completed: 2 }, explainRun(run));
  assert.equal(level.client.decodeErrors, 0);
  assert.deepEqual(nonFinite(r), [], explainRun(run));
  for (const prefix of [
    '2 devices: server-added latency p50',
    '2 devices: downlink frame intervals',
    '2 devices: event-loop lag p99',
    '2 devices: server RSS',
    '2 devices: generator CPU',
  ]) {
    assert.equal(typeof figure(r, prefix).value, 'number', prefix);
  }
  const series = new Map((r.series ?? []).map((s) => [s.name, s]));
  assert.ok(
    [...series.keys()].some((n) => n.startsWith('late downlink frame intervals')),
    'a late-frame series',
  );
  assert.ok((series.get('server RSS')?.points.length ?? 0) > 0, 'RSS points');
  assert.ok(
    (r.histograms?.[0]?.buckets.reduce((s, b) => s + b.count, 0) ?? 0) === 2,
    'one latency observation per turn',
  );
});

/** `linus bench talk --smoke --transport mqtt`: the same level over WebSocket and then OTA → MQTT → UDP devices. */
it('talk --transport mqtt: both transports complete their turns and MQTT is compared with WebSocket', async () => {
  const run = await runBench(['talk', '--smoke', '--source', '--json', '--transport', 'mqtt']);
  const r = run.result;
  assert.equal(run.code, 0, explainRun(run));
  assert.ok(r.ok, explainRun(run));
  assert.equal(figure(r, '2 devices: turns completed').value, 100, explainRun(run));
  assert.equal(figure(r, '2 devices over MQTT + UDP: devices connected').value, 2, explainRun(run));
  assert.equal(figure(r, '2 devices over MQTT + UDP: turns completed').value, 100, explainRun(run));
  const levels = (r.details as { levels: Array<{ transport: string; chosen: LevelResult }> }).levels;
  const mqtt = levels.find((l) => l.transport === 'mqtt')!.chosen;
  assert.deepEqual(mqtt.turns.outcomes, { completed: 2 }, explainRun(run));
  assert.equal(mqtt.client.decodeErrors, 0);
  assert.ok(mqtt.client.framesPerTurn > 0, 'reply audio arrived over UDP');
  for (const name of [
    'downlink frame intervals > 65 ms',
    'server-added latency p50 (VAD end → first frame)',
    'server CPU per device turn',
  ]) {
    const f = figure(r, `2 devices, MQTT vs WebSocket: ${name}`);
    assert.equal(typeof f.value, 'number', name);
    assert.match(String(f.target), /WebSocket .* \+ 10 %/);
  }
  assert.deepEqual(nonFinite(r), [], explainRun(run));
});

/** `--duty 100`: push-to-talk devices (listen start manual … listen stop); the cost figures of issue #13. */
it('talk --duty: push-to-talk turns complete; CPU per device-second of voice, split by thread', async () => {
  const run = await runBench(['talk', '--smoke', '--source', '--json', '--duty', '100']);
  const r = run.result;
  assert.equal(run.code, 0, explainRun(run));
  assert.ok(r.ok, explainRun(run));
  const level = (r.details as { levels: Array<{ chosen: LevelResult }> }).levels[0]!.chosen;
  assert.deepEqual(level.turns.outcomes, { completed: 2 }, explainRun(run));
  // Manual mode: the server's turn starts at listen stop, so every turn has its "VAD end" and a first frame after it.
  assert.equal(level.client.vadEndToFirstFrameMs.n, 2, explainRun(run));
  const total = figure(r, '2 devices: server CPU per device-second of voice (duty 100 %)').value as number;
  const main = figure(r, '2 devices:   of which main thread').value as number;
  const other = figure(r, '2 devices:   of which other threads').value as number;
  assert.ok(total > 0, explainRun(run));
  assert.ok(Math.abs(main + other - total) < 1e-6 * Math.max(1, total), `${main} + ${other} vs ${total}`);
  // Both shares are measured, not one derived as the rest: the main thread runs the sessions, the audio workers
  // encode the replies, so each used CPU.
  assert.ok(main > 0, `main thread ${main} ms`);
  assert.ok(other > 0, `other threads ${other} ms`);
  assert.equal(typeof figure(r, '2 devices: client: listen stop → first reply frame p99').value, 'number');
  assert.deepEqual(nonFinite(r), [], explainRun(run));
});
