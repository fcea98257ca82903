import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { Scope } from './scope.js';

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

describe('Scope', () => {
  it('close() clears timers, intervals and listeners, once', async () => {
    const errors: unknown[] = [];
    const s = new Scope('t', (e) => errors.push(e));
    let fired = 0;
    s.timeout(5, () => fired++);
    s.interval(2, () => fired++);
    const em = new EventEmitter();
    s.on(em, 'x', () => fired++);
    assert.equal(em.listenerCount('x'), 1);
    s.close();
    s.close();
    assert.equal(em.listenerCount('x'), 0);
    em.emit('x');
    await tick(15);
    assert.equal(fired, 0);
    assert.equal(s.signal.aborted, true);
    assert.deepEqual(errors, []);
  });

  it('disposes in reverse order and survives a throwing disposer', () => {
    const order: string[] = [];
    const errors: unknown[] = [];
    const s = new Scope('t', (e) => errors.push(e));
    s.add(() => order.push('a'));
    s.add(() => {
      throw new Error('boom');
    });
    s.add(() => order.push('c'));
    s.close();
    assert.deepEqual(order, ['c', 'a']);
    assert.equal(errors.length, 1);
  });

  it('runs a disposer added after close at once: nothing leaks past close', async () => {
    const s = new Scope('t');
    s.close();
    let disposed = false;
    s.add(() => (disposed = true));
    assert.equal(disposed, true);
    let fired = false;
    s.timeout(1, () => (fired = true));
    await tick(5);
    assert.equal(fired, false);
  });

  it('child scopes close with the parent, and a closed child leaves the parent', () => {
    const parent = new Scope('p');
    const a = parent.child('a');
    const b = parent.child('b');
    b.close();
    parent.close();
    assert.equal(a.closed, true);
    assert.equal(parent.child('late').closed, true);
  });

  it('a fired or cancelled timeout is forgotten', async () => {
    const s = new Scope('t');
    let n = 0;
    const cancel = s.timeout(1, () => n++);
    await tick(5);
    cancel();
    const c2 = s.timeout(1, () => n++);
    c2();
    await tick(5);
    assert.equal(n, 1);
    s.close();
  });

  it('run() reports failures, passes the signal, and drain() waits', async () => {
    const errors: unknown[] = [];
    const s = new Scope('t', (e) => errors.push(e));
    let finished = false;
    void s.run('ok', async () => {
      await tick(10);
      finished = true;
    });
    void s.run('bad', async () => {
      throw new Error('task failed');
    });
    await s.drain();
    assert.equal(finished, true);
    assert.equal(errors.length, 1);
    let sawAbort = false;
    const p = s.run(
      'long',
      (signal) =>
        new Promise<void>((resolve) => signal.addEventListener('abort', () => ((sawAbort = true), resolve()))),
    );
    s.close();
    await p;
    assert.equal(sawAbort, true);
    assert.equal(errors.length, 1, 'an aborted task is not an error');
  });
});
