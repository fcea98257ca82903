import { ProviderError } from './providers/types.js';

/**
 * Reading a caught value by its type, not its shape: a `catch` gets `unknown`, and a cast such as
 * `(err as Error).message` is `undefined` for a thrown string and hides a wrong guess from the compiler.
 */

/** The text of any thrown value: an Error's message, anything else as a string. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The `code` of a Node system error (`ENOENT`, `EADDRINUSE`) or a library error (`WS_ERR_*`); undefined if none. */
export function errorCode(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/** A provider failure's kind, for the metric label; `error` for anything that is not a `ProviderError`. */
export function providerErrorKind(err: unknown): ProviderError['kind'] | 'error' {
  return err instanceof ProviderError ? err.kind : 'error';
}
