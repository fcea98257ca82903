import { errorMessage } from '../errors.js';
import { timeoutSignal } from '../signals.js';

/**
 * Client of the reference's manager API (`manager-api.url` + `manager-api.secret`): the whole server config
 * from `POST {url}/config/server-base`, answered as `{code, msg, data}` with code 0 meaning OK.
 * Retries 408/429/5xx and network errors with backoff; every request has a deadline.
 */
export class ManagerApiError extends Error {
  override name = 'ManagerApiError';
}

export interface ManagerApiOptions {
  url: string;
  secret: string;
  /** Attempts in all (default 3), with `backoffMs` doubling between them. */
  attempts?: number;
  backoffMs?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
}

const RETRYABLE = new Set([408, 429, 500, 502, 503, 504]);

export async function managerPost(path: string, body: unknown, opts: ManagerApiOptions): Promise<unknown> {
  const attempts = Math.max(1, opts.attempts ?? 3);
  let lastError: Error = new ManagerApiError('no attempt made');
  for (let i = 0; i < attempts; i++) {
    if (i > 0) await delay((opts.backoffMs ?? 1000) * 2 ** (i - 1), opts.signal);
    try {
      const signal = timeoutSignal(opts.timeoutMs ?? 30_000, opts.signal);
      const res = await fetch(`${opts.url.replace(/\/+$/, '')}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${opts.secret}`, 'content-type': 'application/json' },
        body: JSON.stringify(body ?? {}),
        signal,
      });
      if (!res.ok) {
        lastError = new ManagerApiError(`manager API ${path} answered HTTP ${res.status}`);
        if (RETRYABLE.has(res.status)) continue;
        throw lastError;
      }
      const envelope = (await res.json()) as { code?: unknown; msg?: unknown; data?: unknown };
      if (envelope.code !== 0)
        throw new ManagerApiError(
          `manager API ${path} answered code ${String(envelope.code)}: ${String(envelope.msg ?? '')}`,
        );
      return envelope.data;
    } catch (err) {
      if (err instanceof ManagerApiError && !/HTTP (408|429|5\d\d)/.test(err.message)) throw err;
      if (opts.signal?.aborted) throw new ManagerApiError('manager API request aborted');
      lastError =
        err instanceof ManagerApiError
          ? err
          : new ManagerApiError(`manager API ${path} unreachable: ${errorMessage(err)}`);
    }
  }
  throw lastError;
}

/** Fetches the server config; the local `server.{ip,port,http_port,vision_explain,auth_key}` win, as in the reference. */
export async function fetchServerConfig(
  local: Record<string, unknown>,
  opts: ManagerApiOptions,
): Promise<Record<string, unknown>> {
  const data = await managerPost('/config/server-base', {}, opts);
  if (!data || typeof data !== 'object' || Array.isArray(data))
    throw new ManagerApiError('manager API /config/server-base returned no config object');
  const remote = data as Record<string, unknown>;
  const localServer = (local.server ?? {}) as Record<string, unknown>;
  const kept = Object.fromEntries(
    ['ip', 'port', 'http_port', 'vision_explain', 'auth_key']
      .filter((k) => localServer[k] !== undefined)
      .map((k) => [k, localServer[k]]),
  );
  return {
    ...remote,
    server: { ...((remote.server ?? {}) as Record<string, unknown>), ...kept },
    'manager-api': local['manager-api'],
  };
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), reject(new ManagerApiError('aborted'))), { once: true });
  });
}
