/**
 * An audio worker thread (see audio-workers.ts): applies each batch of operations in order and answers with
 * one message (encodes are answered one by one, at once). Uplink packets are gathered until another operation
 * needs them processed first, so a batch of packets from many sessions goes through the VAD in a few model calls.
 */
import { parentPort, receiveMessageOnPort } from 'node:worker_threads';
import { errorMessage } from '../errors.js';
import type { FromWorker, ToWorker } from './audio-workers.js';
import { ownsBuffer } from './audio-workers.js';
import { createOpusEncoder, type OpusEncoder } from './opus.js';
import { UplinkProcessor, type UplinkPacket } from './uplink.js';

if (!parentPort) throw new Error('audio-worker.ts runs as a worker thread');
const port = parentPort;

// The thread keeps the default priority. Lowered (nice +10), it lost to every other busy process on the machine,
// not only to our main thread: on a loaded 2-core box it got a few % of a core, VAD and encodes fell seconds
// behind, utterances went unanswered and replies stalled (test/bench/faults.test.ts under load).

const uplink = new UplinkProcessor();
const encoders = new Map<number, OpusEncoder>();

function handle(msg: ToWorker): { out: FromWorker; transfer: ArrayBuffer[] } {
  const out: FromWorker = { uplink: [], encoded: [], errors: [] };
  const transfer: ArrayBuffer[] = [];
  let batch: UplinkPacket[] = [];
  const flush = (): void => {
    if (!batch.length) return;
    const packets = batch;
    batch = [];
    try {
      for (const r of uplink.process(packets)) {
        if (!ownsBuffer(r.pcm)) r.pcm = r.pcm.slice();
        transfer.push(r.pcm.buffer as ArrayBuffer);
        out.uplink.push(r);
      }
    } catch (err) {
      for (const id of new Set(packets.map((p) => p.id)))
        out.errors.push({ id, message: `uplink processing failed: ${errorMessage(err)}` });
    }
  };
  for (const op of msg.ops) {
    switch (op.t) {
      case 'uplink':
        batch.push({ id: op.id, packet: op.packet, vad: op.vad });
        break;
      case 'uplink-open':
        flush();
        try {
          uplink.open(op.id, op.opts);
        } catch (err) {
          out.errors.push({ id: op.id, message: errorMessage(err) });
        }
        break;
      case 'uplink-reset':
        flush();
        uplink.reset(op.id);
        break;
      case 'uplink-close':
        flush();
        uplink.close(op.id);
        break;
      case 'encoder-open':
        encoders.get(op.id)?.dispose();
        try {
          encoders.set(op.id, createOpusEncoder(op.rate, op.frameMs, op.opus));
        } catch (err) {
          encoders.delete(op.id);
          out.errors.push({ id: op.id, message: errorMessage(err) });
        }
        break;
      case 'encode': {
        const encoder = encoders.get(op.id);
        if (!encoder) {
          out.encoded.push({ req: op.req, error: `no encoder ${op.id}` });
          break;
        }
        try {
          // A copy per packet: the codec's output may be a view into a shared pool.
          const packets = op.frames.map((f) => new Uint8Array(encoder.encode(f)));
          const buffers = packets.map((p) => p.buffer);
          // A sentence's first frames are answered at once: they must not wait for the batch's VAD work.
          if (op.urgent)
            port.postMessage(
              { uplink: [], encoded: [{ req: op.req, packets }], errors: [] } satisfies FromWorker,
              buffers,
            );
          else {
            out.encoded.push({ req: op.req, packets });
            transfer.push(...buffers);
          }
        } catch (err) {
          out.encoded.push({ req: op.req, error: errorMessage(err) });
        }
        break;
      }
      case 'encoder-close':
        encoders.get(op.id)?.dispose();
        encoders.delete(op.id);
        break;
    }
  }
  flush();
  return { out, transfer };
}

port.on('message', (first: ToWorker) => {
  // Whatever queued up while the last batch ran joins this one: a busy worker answers in fewer, larger messages.
  const msg: ToWorker = { ops: first.ops };
  for (let next = receiveMessageOnPort(port); next; next = receiveMessageOnPort(port))
    msg.ops.push(...(next.message as ToWorker).ops);
  const { out, transfer } = handle(msg);
  if (out.uplink.length || out.encoded.length || out.errors.length) port.postMessage(out, transfer);
});
