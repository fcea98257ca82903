/**
 * Abort signals with strong references. `AbortSignal.any()` and `AbortSignal.timeout()` keep their sources only
 * weakly on Node 20: under GC pressure a deadline could be collected and never fire, leaving a provider call
 * without its deadline. These hold their timer and listeners until the signal fires or its sources end.
 */
/**
 * Aborts when any source does. Until then it holds a listener on every source: when a source outlives the call
 * (a session's or a feature's signal), include a controller of the call's own and abort it when the call ends.
 */
export function anySignal(signals: readonly AbortSignal[]): AbortSignal {
  const controller = new AbortController();
  const live = signals.filter(Boolean);
  const fired = live.find((s) => s.aborted);
  if (fired) {
    controller.abort(fired.reason);
    return controller.signal;
  }
  const listeners = live.map((s) => {
    const onAbort = (): void => controller.abort(s.reason);
    s.addEventListener('abort', onAbort, { once: true });
    return () => s.removeEventListener('abort', onAbort);
  });
  controller.signal.addEventListener('abort', () => listeners.forEach((off) => off()), { once: true });
  return controller.signal;
}

/** A signal that aborts with a TimeoutError after `ms` (or when `parent` aborts, if given). */
export function timeoutSignal(ms: number, parent?: AbortSignal): AbortSignal {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException(`timed out after ${ms} ms`, 'TimeoutError')), ms);
  // The timer must not keep a shutting-down process alive; the call it guards does that if needed.
  timer.unref();
  controller.signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
  return parent ? anySignal([parent, controller.signal]) : controller.signal;
}
