// The API client: `{success, data}` unwrapped, the CSRF token on writes, 429s retried after Retry-After.

/** Who is looking: `via` is 'login' after a log-in, 'loopback' when the server lets this machine read unasked. */
export interface ConsoleSession {
  role: 'admin' | 'read';
  csrf?: string;
  mode: string;
  via: 'login' | 'loopback' | string;
}

let session: ConsoleSession | null = null;
/** Called when a read answers 401 (the session expired or the server restarted): the shell shows the log-in. */
let onUnauthorized: () => void = () => undefined;

export function setSession(s: ConsoleSession | null): void {
  session = s;
}

export function whenUnauthorized(fn: () => void): void {
  onUnauthorized = fn;
}

export const canWrite = (): boolean => session?.role === 'admin';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are JSON whose shape each page knows
export async function api<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (session?.csrf && method !== 'GET') headers['x-csrf-token'] = session.csrf;
    const res = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status === 429 && attempt < 3) {
      await sleep(1000 * Number(res.headers.get('retry-after') || 1));
      continue;
    }
    const json = (await res.json().catch(() => ({ success: false, error: `HTTP ${res.status}` }))) as {
      success?: boolean;
      error?: string;
      data?: T;
    };
    if (!res.ok || json.success === false) {
      if (res.status === 401 && method === 'GET') onUnauthorized();
      throw new ApiError(res.status, json.error || `HTTP ${res.status}`, json.data);
    }
    return json.data as T;
  }
}

/** The message of anything thrown. */
export const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));
