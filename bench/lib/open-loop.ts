import { sleep } from './children.js';

/**
 * Open loop: `send(i)` for i = 0 .. total-1 on schedule at `rate` per second, whatever the answers (a tick every
 * 2 ms sends what is due, so a slow server meets the load it would meet in the field instead of slowing it down).
 * `tick` is called after each tick with the count sent so far. Resolves with that count and the seconds taken.
 */
export async function openLoop(o: {
  rate: number;
  total: number;
  send: (i: number) => void;
  tick?: (sent: number) => void;
  signal?: AbortSignal;
}): Promise<{ sent: number; seconds: number }> {
  let sent = 0;
  const t0 = performance.now();
  while (sent < o.total && !o.signal?.aborted) {
    const due = Math.min(o.total, Math.floor(((performance.now() - t0) * o.rate) / 1000));
    for (; sent < due; sent++) o.send(sent);
    o.tick?.(sent);
    await sleep(2);
  }
  return { sent, seconds: (performance.now() - t0) / 1000 };
}
