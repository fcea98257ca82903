// Small pieces every page uses: labelled fields, tables, the toast, page loading and the title.
import type { ComponentChildren, JSX } from 'preact';
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { messageOf } from './api.js';

/** A labelled form field: `<label>Text <input></label>`, so every control has its visible name. */
export function Field({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    <label class="field">
      <span>{label}</span>
      {children}
    </label>
  );
}

/**
 * A table; on a narrow screen (style.css) each row becomes a card of "header: value" lines, so nothing is
 * cut off at 390 px. The header of each cell is written onto it (data-label) after every render.
 */
export function Table({
  headers,
  caption,
  children,
}: {
  headers: string[];
  caption?: string;
  children: ComponentChildren;
}) {
  const table = useRef<HTMLTableElement>(null);
  useLayoutEffect(() => {
    for (const row of table.current?.tBodies[0]?.rows ?? [])
      for (const [i, cell] of [...row.cells].entries()) cell.dataset.label = headers[i] ?? '';
  });
  return (
    <div class="table-wrap">
      <table ref={table}>
        {caption ? <caption>{caption}</caption> : null}
        <thead>
          <tr>
            {headers.map((t) => (
              <th scope="col">{t}</th>
            ))}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}

// ------------------------------------------------------------------ toast

type Toast = { text: string; kind: 'info' | 'error'; id: number };
let showToast: (t: Toast) => void = () => undefined;
let toastId = 0;

/** A short message in the corner (a live region, so screen readers say it too). */
export function toast(text: string, kind: Toast['kind'] = 'info'): void {
  showToast({ text, kind, id: ++toastId });
}

export const toastError = (err: unknown): void => toast(messageOf(err), 'error');

export function ToastArea() {
  const [t, setT] = useState<Toast | null>(null);
  const [shown, setShown] = useState(false);
  useEffect(() => {
    showToast = (next) => {
      setT(next);
      setShown(true);
    };
    return () => (showToast = () => undefined);
  }, []);
  useEffect(() => {
    if (!t) return;
    const timer = setTimeout(() => setShown(false), 4000);
    return () => clearTimeout(timer);
  }, [t]);
  return (
    // Emptied when it goes: a faded-out message left in the page would still be read out and found by search.
    <div id="toast" role="status" aria-live="polite" class={shown && t ? `show ${t.kind}` : ''}>
      {shown ? t?.text : null}
    </div>
  );
}

// ------------------------------------------------------------------ loading

export interface Loaded<T> {
  data: T | undefined;
  error: string | undefined;
  /** Loads again; a failure once the page is shown is a toast, not a lost page. */
  reload: () => Promise<void>;
  setData: (update: (old: T | undefined) => T | undefined) => void;
}

/** Runs `load` when the component mounts (and when `deps` change); the latest answer wins. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[] = []): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const latest = useRef(load);
  latest.current = load;
  const generation = useRef(0);
  const shown = useRef(false);
  const reload = useCallback(async () => {
    const mine = ++generation.current;
    try {
      const value = await latest.current();
      if (mine !== generation.current) return;
      shown.current = true;
      setData(() => value);
      setError(undefined);
    } catch (err) {
      if (mine !== generation.current) return;
      if (shown.current) toastError(err);
      else setError(messageOf(err));
    }
  }, []);
  useEffect(() => {
    void reload();
    // Answers still on their way are dropped when the page goes (the counter itself, not a copy of its value).
    const counter = generation;
    return () => void counter.current++;
    // eslint-disable-next-line react-hooks/exhaustive-deps -- the caller names what the load depends on
  }, deps);
  return { data, error, reload, setData: (update) => setData(update) };
}

/** The page once its data is there; "Loading…" until then, or what went wrong. */
export function Page<T>({ loaded, children }: { loaded: Loaded<T>; children: (data: T) => JSX.Element }) {
  if (loaded.error)
    return (
      <p class="error" role="alert">
        Could not load this page: {loaded.error}
      </p>
    );
  if (loaded.data === undefined) return <p class="muted">Loading…</p>;
  return children(loaded.data);
}

/** Sets the window title while the page is shown. */
export function useTitle(title: string): void {
  useEffect(() => {
    document.title = `${title} · Linus console`;
  }, [title]);
}
