/**
 * An audio worker thread (see audio-workers.ts): applies each batch of records in order and answers with one
 * message (a sentence's first frames are answered on their own, at once). Uplink packets are gathered until
 * another record needs them processed first, so a batch of packets from many sessions goes through the VAD in a
 * few model calls. Records are read and written with src/voice/audio-wire.ts.
 */
import { parentPort, receiveMessageOnPort } from 'node:worker_threads';
import { errorMessage } from '../errors.js';
import type { FromWorker, ToWorker } from './audio-workers.js';
import {
  FLAG_DECODE_ERROR,
  FLAG_END_OF_UTTERANCE,
  FLAG_SPEAKING,
  FROM_WORKER,
  TO_WORKER,
  WireReader,
  WireWriter,
} from './audio-wire.js';
import { createOpusEncoder, type OpusEncoder } from './opus.js';
import { UplinkProcessor, type UplinkPacket } from './uplink.js';

if (!parentPort) throw new Error('audio-worker.ts runs as a worker thread');
const port = parentPort;

// The thread keeps the default priority. Lowered (nice +10), it lost to every other busy process on the machine,
// not only to our main thread: on a loaded 2-core box it got a few % of a core, VAD and encodes fell seconds
// behind, utterances went unanswered and replies stalled (test/bench/faults.test.ts under load).

const uplink = new UplinkProcessor();
const encoders = new Map<number, OpusEncoder>();
const reply = new WireWriter();
const urgentReply = new WireWriter();

/** Sends what `w` holds; `answers` > 0 is sent even when empty: the main thread holds its next batch until then. */
function post(
  w: WireWriter,
  answers: number,
  errors: FromWorker['errors'] = [],
  encodeErrors: FromWorker['encodeErrors'] = [],
): void {
  if (!answers && !w.length && !errors.length && !encodeErrors.length) return;
  const { buffer, length } = w.take();
  port.postMessage({ answers, bin: buffer, length, errors, encodeErrors } satisfies FromWorker, [buffer]);
}

function writeEncoded(w: WireWriter, req: number, packets: Uint8Array[]): void {
  w.u8(FROM_WORKER.encoded);
  w.u32(req);
  w.u32(packets.length);
  for (const p of packets) w.bytes(p);
}

function handle(batches: ToWorker[]): void {
  const errors: FromWorker['errors'] = [];
  const encodeErrors: FromWorker['encodeErrors'] = [];
  // Packets are views into their batch's buffer: every batch stays readable until the end of this call.
  let packets: UplinkPacket[] = [];
  const flush = (): void => {
    if (!packets.length) return;
    const batch = packets;
    packets = [];
    try {
      for (const r of uplink.process(batch)) {
        reply.u8(FROM_WORKER.uplinkResult);
        reply.u32(r.id);
        reply.u8(
          (r.decodeError ? FLAG_DECODE_ERROR : 0) |
            (r.speaking ? FLAG_SPEAKING : 0) |
            (r.endOfUtterance ? FLAG_END_OF_UTTERANCE : 0),
        );
        reply.u32(r.epoch);
        reply.u32(r.pcm.length);
        reply.samples(r.pcm);
      }
    } catch (err) {
      for (const id of new Set(batch.map((p) => p.id)))
        errors.push({ id, message: `uplink processing failed: ${errorMessage(err)}` });
    }
  };
  for (const msg of batches) {
    const r = new WireReader(msg.bin, msg.length);
    let opens = 0;
    while (!r.done) {
      const kind = r.u8();
      switch (kind) {
        case TO_WORKER.uplink: {
          const id = r.u32();
          const vad = r.u8() === 1;
          packets.push({ id, vad, packet: r.bytes() });
          break;
        }
        case TO_WORKER.open: {
          const op = msg.opens[opens++];
          if (!op) throw new Error('audio batch: an open record without its entry');
          if (op.t === 'uplink-open') {
            flush();
            try {
              uplink.open(op.id, op.opts);
            } catch (err) {
              errors.push({ id: op.id, message: errorMessage(err) });
            }
          } else {
            encoders.get(op.id)?.dispose();
            try {
              encoders.set(op.id, createOpusEncoder(op.rate, op.frameMs, op.opus));
            } catch (err) {
              encoders.delete(op.id);
              errors.push({ id: op.id, message: errorMessage(err) });
            }
          }
          break;
        }
        case TO_WORKER.uplinkReset:
          flush();
          uplink.reset(r.u32());
          break;
        case TO_WORKER.uplinkClose:
          flush();
          uplink.close(r.u32());
          break;
        case TO_WORKER.encoderClose: {
          const id = r.u32();
          encoders.get(id)?.dispose();
          encoders.delete(id);
          break;
        }
        case TO_WORKER.encode: {
          const id = r.u32();
          const req = r.u32();
          const urgent = r.u8() === 1;
          const frames: Int16Array[] = [];
          for (let n = r.u32(); n > 0; n--) frames.push(r.samples(r.u32()));
          const encoder = encoders.get(id);
          if (!encoder) {
            encodeErrors.push({ req, error: `no encoder ${id}` });
            break;
          }
          let out: Uint8Array[];
          try {
            // A copy per packet: the codec's output may be a view into memory the next encode overwrites (wasm).
            out = frames.map((f) => new Uint8Array(encoder.encode(f)));
          } catch (err) {
            encodeErrors.push({ req, error: errorMessage(err) });
            break;
          }
          // A sentence's first frames are answered at once: they must not wait for the batch's VAD work.
          if (urgent) {
            writeEncoded(urgentReply, req, out);
            post(urgentReply, 0);
          } else writeEncoded(reply, req, out);
          break;
        }
        default:
          throw new Error(`audio batch: unknown record kind ${kind}`);
      }
    }
  }
  flush();
  post(reply, batches.length, errors, encodeErrors);
}

port.on('message', (first: ToWorker) => {
  // Whatever queued up while the last batch ran joins this one: a busy worker answers in fewer, larger messages.
  const batches = [first];
  for (let next = receiveMessageOnPort(port); next; next = receiveMessageOnPort(port))
    batches.push(next.message as ToWorker);
  handle(batches);
});
