// The live event stream (one EventSource for the whole console) and a hook to listen to it.
import { useEffect, useRef } from 'preact/hooks';

export type EventName = 'devices' | 'tasks' | 'health' | 'meeting';
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each event's data is JSON its listeners know
type Listener = (data: any) => void;

const listeners = new Map<EventName, Set<Listener>>();
let source: EventSource | null = null;

/** Calls `fn(data)` for each pushed event of that name; returns an unsubscribe function. */
export function on(event: EventName, fn: Listener): () => void {
  let set = listeners.get(event);
  if (!set) listeners.set(event, (set = new Set()));
  set.add(fn);
  return () => set.delete(fn);
}

/** Listens while the component is mounted; always calls the latest `fn` (it may close over fresh state). */
export function useEvent(event: EventName, fn: Listener): void {
  const latest = useRef(fn);
  latest.current = fn;
  useEffect(() => on(event, (data) => latest.current(data)), [event]);
}

export function connectEvents(): void {
  source?.close();
  source = new EventSource('/api/events');
  for (const name of ['devices', 'tasks', 'health', 'meeting'] as const) {
    source.addEventListener(name, (e) => {
      const data: unknown = JSON.parse((e as MessageEvent<string>).data);
      for (const fn of listeners.get(name) ?? []) fn(data);
    });
  }
  source.addEventListener('open', () => document.body.classList.remove('offline'));
  source.addEventListener('error', () => document.body.classList.add('offline'));
}

export function disconnectEvents(): void {
  source?.close();
  source = null;
}
