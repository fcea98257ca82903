import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errorMessage } from './errors.js';
import { Lifecycle, until, type LifecycleOptions } from './lifecycle.js';

function lifecycle(opts: Partial<LifecycleOptions> = {}): { parts: Lifecycle; errors: string[] } {
  const errors: string[] = [];
  const parts = new Lifecycle({
    budgetMs: () => 60_000,
    onError: (err, part) => errors.push(`${part}: ${errorMessage(err)}`),
    ...opts,
  });
  return { parts, errors };
}

const never = new Promise<void>(() => {});

describe('Lifecycle', () => {
  it('closes the parts in reverse order of their start, each once, awaiting async closes', async () => {
    const { parts, errors } = lifecycle();
    const order: string[] = [];
    const store = parts.start(
      'store',
      () => ({ open: true }),
      (s) => {
        s.open = false;
        order.push('store');
      },
    );
    parts.add('threads', async () => {
      await new Promise((r) => setImmediate(r));
      order.push('threads');
    });
    parts.add('listener', () => void order.push('listener'));
    assert.equal(parts.stopping, false);
    const first = parts.close('test');
    assert.equal(parts.stopping, true);
    assert.equal(parts.close('again'), first, 'a second close is the same stop');
    await first;
    assert.deepEqual(order, ['listener', 'threads', 'store']);
    assert.equal(store.open, false);
    assert.deepEqual(errors, []);
  });

  it('a close that throws or rejects is reported by part name and the closes after it still run', async () => {
    const { parts, errors } = lifecycle();
    const closed: string[] = [];
    parts.add('store', () => void closed.push('store'));
    parts.add('features', () => Promise.reject(new Error('flush failed')));
    parts.add('timers', () => {
      throw new Error('boom');
    });
    await parts.close('test');
    assert.deepEqual(errors, ['timers: boom', 'features: flush failed']);
    assert.deepEqual(closed, ['store']);
  });

  it('a part whose start throws registers nothing; the parts before it close (a failed start)', async () => {
    const { parts } = lifecycle();
    const closed: string[] = [];
    parts.add('store', () => void closed.push('store'));
    assert.throws(
      () =>
        parts.start(
          'listener',
          () => {
            throw new Error('port in use');
          },
          () => void closed.push('listener'),
        ),
      /port in use/,
    );
    await parts.close('start failed');
    assert.deepEqual(closed, ['store']);
  });

  it('every close gets the reason, and no part can start once the stop has begun', async () => {
    const { parts } = lifecycle();
    const reasons: string[] = [];
    parts.add('a', ({ reason }) => void reasons.push(reason));
    await parts.close('SIGTERM');
    assert.deepEqual(reasons, ['SIGTERM']);
    assert.throws(() => parts.add('late', () => {}), /started while stopping/);
  });

  it('the deadline aborts when the budget is spent: a close waiting on work that never ends returns', async () => {
    const { parts } = lifecycle({ budgetMs: () => 0 });
    let aborted: AbortSignal | undefined;
    parts.add('store', ({ deadline }) => {
      aborted = deadline;
    });
    parts.add('connections', ({ deadline }) => until(never, deadline));
    await parts.close('test');
    assert.equal(aborted?.aborted, true, 'the parts after the wait see the spent budget');
  });

  it('the deadline stays clear when the stop ends in time, and its timer does not outlive the stop', async () => {
    const { parts } = lifecycle();
    let deadline: AbortSignal | undefined;
    parts.add('a', (stop) => {
      deadline = stop.deadline;
    });
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    await parts.close('test');
    assert.equal(deadline?.aborted, false);
    assert.equal(timers(), before);
  });
});

describe('until', () => {
  it('resolves with the work, whether it succeeds or fails', async () => {
    const deadline = new AbortController().signal;
    await until(Promise.resolve(1), deadline);
    await until(Promise.reject(new Error('owner reports it')), deadline);
  });

  it('resolves when the deadline aborts first, and at once on a spent deadline', async () => {
    const controller = new AbortController();
    const waiting = until(never, controller.signal);
    controller.abort();
    await waiting;
    await until(never, controller.signal);
  });
});
