import type { z } from 'zod';
import type { Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import { describeSchemaError, ErrorCode } from '../protocol/messages.js';

/**
 * What dispatch needs of the connection a message came from: where to count, log and answer one it refuses.
 * A `Session` is one; the table names no session type itself, so session.ts can hold a table without a loop.
 */
export interface MessageSource {
  readonly ctx: { readonly metrics: Metrics };
  readonly log: Logger;
  replyError(code: ErrorCode, message: string, extra?: Record<string, unknown>): void;
}

export interface MessageHandler<C, S extends z.ZodType = z.ZodType> {
  schema: S;
  handle(session: C, message: z.infer<S>): void;
}

/**
 * The one message table of a server: inbound `type` → schema + handler. A message whose type is not here is
 * counted and ignored in `dispatch`, the only place that happens. Features add their types with `register`.
 */
export class MessageTable<C extends MessageSource> {
  readonly #table = new Map<string, MessageHandler<C>>();

  register<S extends z.ZodType>(types: string | string[], handler: MessageHandler<C, S>): void {
    for (const t of Array.isArray(types) ? types : [types]) {
      if (this.#table.has(t)) throw new Error(`message type ${t} is already handled`);
      this.#table.set(t, handler as unknown as MessageHandler<C>);
    }
  }

  dispatch(session: C, type: string, message: Record<string, unknown>): void {
    const handler = this.#table.get(type);
    if (!handler) {
      session.ctx.metrics.unknownMessages.inc();
      session.log.info({ type }, 'unknown message type ignored');
      return;
    }
    const parsed = handler.schema.safeParse(message);
    if (!parsed.success) {
      session.ctx.metrics.badFrames.labels('schema').inc();
      const detail = describeSchemaError(parsed.error);
      session.log.info({ type, detail }, 'invalid message');
      session.replyError(ErrorCode.SchemaInvalid, `invalid ${type} message: ${detail}`, { for: type });
      return;
    }
    try {
      handler.handle(session, parsed.data);
    } catch (err) {
      session.log.error({ err, type }, 'message handler failed');
    }
  }
}
