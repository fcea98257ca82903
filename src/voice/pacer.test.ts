import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Scope } from '../session/scope.js';
import { Pacer } from './pacer.js';

function harness(prebuffer = 3, frameMs = 20) {
  const scope = new Scope('pacer-test');
  const log: { t: number; kind: string; id: number | string }[] = [];
  const t0 = performance.now();
  const pacer = new Pacer({
    scope,
    frameMs,
    prebufferFrames: prebuffer,
    sendAudio: (f) => (log.push({ t: performance.now() - t0, kind: 'audio', id: f.readUInt16BE(0) }), true),
    sendControl: (m) => (log.push({ t: performance.now() - t0, kind: 'control', id: String(m.text) }), true),
  });
  const frame = (i: number) => {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(i);
    return b;
  };
  return { scope, pacer, log, frame, t0 };
}

describe('Pacer (D10)', () => {
  it('sends the pre-buffer at once, then one frame per frame duration', async () => {
    const { pacer, log, frame, scope } = harness(3, 20);
    for (let i = 0; i < 10; i++) pacer.enqueueAudio(frame(i));
    assert.equal(log.length, 3, 'pre-buffer goes out immediately');
    await pacer.whenPlayed();
    const audio = log.filter((l) => l.kind === 'audio');
    assert.deepEqual(
      audio.map((a) => a.id),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    // Frame i (i ≥ 3) is due at (i-2)·20 ms: never early, and the lead never exceeds the pre-buffer.
    for (const [i, a] of audio.entries()) {
      const due = Math.max(0, (i - 2) * 20);
      assert.ok(a.t >= due - 1, `frame ${i} sent at ${a.t.toFixed(1)} before due ${due}`);
    }
    const done = performance.now();
    assert.ok(done - audio[0]!.t >= 10 * 20 - 25, 'whenPlayed waits for the play time of the last frame');
    scope.close();
  });

  it('keeps control messages in order with audio', async () => {
    const { pacer, log, frame, scope } = harness(1, 10);
    pacer.enqueueControl({ type: 'tts', text: 'a' });
    pacer.enqueueAudio(frame(0));
    pacer.enqueueAudio(frame(1));
    pacer.enqueueControl({ type: 'tts', text: 'b' });
    pacer.enqueueAudio(frame(2));
    await pacer.whenPlayed();
    assert.deepEqual(
      log.map((l) => l.id),
      ['a', 0, 1, 'b', 2],
    );
    scope.close();
  });

  it('re-anchors after a gap instead of bursting to catch up', async () => {
    const { pacer, log, frame, scope } = harness(2, 20);
    for (let i = 0; i < 3; i++) pacer.enqueueAudio(frame(i));
    await pacer.whenPlayed();
    await new Promise((r) => setTimeout(r, 150)); // the device ran dry
    const before = log.length;
    for (let i = 3; i < 9; i++) pacer.enqueueAudio(frame(i));
    assert.equal(log.length - before, 2, 'only a fresh pre-buffer goes out at once');
    await pacer.whenPlayed();
    scope.close();
  });

  it('clear() drops the queue and releases waiters; a closed scope stops it', async () => {
    const { pacer, log, frame, scope } = harness(1, 50);
    for (let i = 0; i < 20; i++) pacer.enqueueAudio(frame(i));
    const played = pacer.whenPlayed();
    pacer.clear();
    await played;
    const n = log.length;
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(log.length, n, 'nothing is sent after clear');
    pacer.enqueueAudio(frame(99));
    scope.close();
    pacer.enqueueAudio(frame(100));
    await new Promise((r) => setTimeout(r, 120));
    assert.ok(log.length <= n + 2);
  });
});
