import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { Metrics } from '../observability/metrics.js';
import { FakeSocket } from './fake-socket.js';
import { Sender } from './sender.js';

const metricsInUse: Metrics[] = [];
afterEach(() => {
  for (const m of metricsInUse.splice(0)) m.close();
});

/** A sender whose socket takes one small frame before back-pressure starts, with a 40-byte queue. */
function harness(maxQueuedBytes = 40) {
  const socket = new FakeSocket();
  const metrics = new Metrics({ defaultMetrics: false });
  metricsInUse.push(metrics);
  let overflows = 0;
  const sender = new Sender(socket, metrics, {
    highWaterBytes: 1,
    maxQueuedBytes: () => maxQueuedBytes,
    onOverflow: () => overflows++,
  });
  /** 10 bytes of audio (protocol v1 frames are the bare Opus packet) whose last byte names it. */
  const audio = (id: number) => sender.audio(Buffer.alloc(10, id));
  const control = (n: number | string) => sender.json({ type: 'tts', n });
  /** What went out, as labels: `c:<n>` for JSON control, `a:<last byte of the Opus payload>` for audio. */
  const labels = () =>
    socket.frames.map((f) => (f.binary ? `a:${(f.data as Buffer).at(-1)}` : `c:${JSON.parse(String(f.data)).n}`));
  const failures = async (reason: string) =>
    (await metrics.sendFailures.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
  return { socket, sender, audio, control, labels, failures, overflows: () => overflows };
}

describe('Sender', () => {
  it('writes straight through while the socket keeps up', () => {
    const { socket, sender, audio, control, labels } = harness();
    assert.equal(control(1), true);
    socket.flush();
    assert.equal(audio(2), true);
    socket.flush();
    assert.deepEqual(labels(), ['c:1', 'a:2']);
    assert.equal(sender.queuedBytes, 0);
    assert.equal(socket.frames[1]!.binary, true);
  });

  it('under back-pressure drops the oldest audio first and never a control message', async () => {
    const { socket, sender, audio, control, failures, labels } = harness(50);
    control('first'); // in the socket, not flushed: everything after it queues
    const controlBytes = Buffer.byteLength(JSON.stringify({ type: 'tts', n: 'a' }));
    assert.equal(controlBytes, 22);
    assert.equal(audio(1), true);
    assert.equal(control('a'), true);
    assert.equal(audio(2), true);
    assert.equal(sender.queuedBytes, 42);
    // 52 bytes would not fit in 50: the oldest audio (1) makes room, then (2) for the next one; control stays.
    assert.equal(audio(3), true);
    assert.equal(audio(4), true);
    assert.equal(sender.queuedBytes, 42);
    assert.equal(await failures('backpressure_audio'), 2);
    // The socket drains one frame at a time (high water is 1 byte), in queue order.
    while (socket.unflushed) socket.flush(1);
    assert.deepEqual(labels(), ['c:first', 'c:a', 'a:3', 'a:4']);
    assert.equal(sender.queuedBytes, 0);
  });

  it('refuses audio that does not fit even with every queued audio frame dropped', async () => {
    const { socket, audio, control, failures, labels } = harness(40);
    control(0);
    const big = Buffer.byteLength(JSON.stringify({ type: 'tts', n: 'x'.repeat(20) }));
    assert.ok(big > 30);
    control('x'.repeat(20)); // queued control takes most of the 40 bytes
    assert.equal(audio(1), false, 'audio is refused rather than evicting control');
    assert.equal(await failures('backpressure_audio'), 1);
    socket.flush();
    socket.flush();
    assert.deepEqual(labels(), ['c:0', `c:${'x'.repeat(20)}`]);
  });

  it('cuts off a peer that does not even read control messages: overflow once, then nothing is accepted', async () => {
    const { socket, sender, control, failures, overflows } = harness(10);
    control(0);
    let accepted = 0;
    while (control(1) && accepted < 100) accepted++;
    assert.ok(accepted > 0 && accepted < 100, 'control queues up to 4× the audio limit');
    assert.equal(overflows(), 1);
    assert.equal(await failures('overflow'), 1);
    assert.equal(control(2), false, 'a cut-off sender accepts nothing');
    assert.equal(overflows(), 1, 'onOverflow is called once');
    socket.flush();
    assert.equal(socket.frames.length, 1, 'nothing queued is written after the overflow');
    assert.ok(sender.queuedBytes > 0);
    sender.dispose();
    assert.equal(sender.queuedBytes, 0);
  });

  it('jsonWritten settles true once the socket wrote the frame, false when the socket failed it', async () => {
    const { socket, sender } = harness();
    let settled: boolean | undefined;
    const p = sender.jsonWritten({ type: 'peer', n: 1 }).then((ok) => (settled = ok));
    await Promise.resolve();
    assert.equal(settled, undefined, 'accepted is not written');
    socket.flush();
    assert.equal(await p, true);
    const failed = sender.jsonWritten({ type: 'peer', n: 2 });
    socket.flush(1, new Error('EPIPE'));
    assert.equal(await failed, false);
  });

  it('jsonWritten settles false for what is still queued on dispose, and for a closed socket', async () => {
    const { socket, sender, failures } = harness();
    const inSocket = sender.jsonWritten({ type: 'peer', n: 1 });
    const queued = sender.jsonWritten({ type: 'peer', n: 2 });
    assert.equal(sender.queuedBytes > 0, true);
    sender.dispose();
    assert.equal(await queued, false);
    assert.equal(await failures('closed'), 1);
    socket.flush();
    assert.equal(await inSocket, true, 'a frame the socket already held settles with the socket');
    assert.equal(await sender.jsonWritten({ type: 'peer', n: 3 }), false, 'disposed');
    const other = harness();
    other.socket.readyState = 3;
    assert.equal(await other.sender.jsonWritten({ type: 'peer', n: 1 }), false, 'socket closed');
    assert.equal(other.sender.json({ type: 'peer' }), false);
  });

  it('a queue waiting on a socket that closed is dropped, not written', async () => {
    const { socket, sender, control } = harness();
    control(0);
    const queued = sender.jsonWritten({ type: 'peer', n: 1 });
    socket.readyState = 3;
    socket.flush();
    assert.equal(await queued, false);
    assert.equal(socket.frames.length, 1);
    assert.equal(sender.queuedBytes, 0);
  });

  it('a send that throws is a failed write, not an exception for the caller', async () => {
    const { socket, sender, failures } = harness();
    socket.throwOnSend = true;
    const written = sender.jsonWritten({ type: 'peer', n: 1 });
    assert.equal(await written, false);
    assert.equal(await failures('socket_error'), 1);
    socket.throwOnSend = false;
    assert.equal(sender.json({ type: 'peer', n: 2 }), true, 'the in-flight count was given back');
    assert.equal(socket.frames.length, 1);
  });

  it('an unserializable message is refused and counted', async () => {
    const { sender, failures } = harness();
    const cyclic: Record<string, unknown> = { type: 'x' };
    cyclic.self = cyclic;
    assert.equal(sender.json(cyclic as { type: string }), false);
    assert.equal(await sender.jsonWritten(cyclic as { type: string }), false);
    assert.equal(await failures('unserializable'), 2);
  });

  it('dropQueuedAudio (an abort) removes queued audio and keeps queued control', () => {
    const { socket, sender, audio, control, labels } = harness(100);
    control(0);
    audio(1);
    control(1);
    audio(2);
    assert.equal(sender.dropQueuedAudio(), 2);
    while (socket.unflushed) socket.flush(1);
    assert.deepEqual(labels(), ['c:0', 'c:1']);
  });
});
