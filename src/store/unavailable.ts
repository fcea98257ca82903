/**
 * The store could not be reached (PostgreSQL down, the connection cut or timed out): nothing was read or written.
 * One type for every such failure, so that each edge answers it one way: the HTTP API with 503, a device with its
 * usual error reply, never an acknowledgement.
 */
export class StoreUnavailableError extends Error {
  constructor(cause: string, options?: { cause?: unknown }) {
    super(`store is unreachable: ${cause}`, options);
    this.name = 'StoreUnavailableError';
  }
}
