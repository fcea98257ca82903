import { z } from 'zod';
import type { ReloadResult } from '../config/reload.js';
import { secretEquals } from '../protocol/auth-token.js';
import { budgetKey, tooManyFailures, type SecretThrottle } from '../transport/secret-throttle.js';
import type { MessageTable } from './message-table.js';
import type { Session } from './session.js';

/**
 * `{"type":"server","action":"update_config"|"restart","content":{"secret",...}}` (D13). Honoured when
 * `content.secret` equals `server.admin_secret` or `manager-api.secret`. `update_config` reloads the config
 * source (file or manager API) with an optional validated `content.patch` overlay; `restart` answers first,
 * then drains and restarts. Replies as the reference: `{"type":"server","status","message","content":{"action"}}`.
 */
const schema = z.looseObject({
  type: z.literal('server'),
  action: z.enum(['update_config', 'restart']),
  content: z
    .looseObject({ secret: z.string().optional(), patch: z.record(z.string(), z.unknown()).optional() })
    .optional(),
});

export interface ServerActions {
  reload(patch?: Record<string, unknown>): Promise<ReloadResult>;
  restart(): void;
  /** A wrong secret counts against the connection's address like a wrong admin secret over HTTP. */
  throttle: SecretThrottle;
}

export function registerServerActions(table: MessageTable<Session>, actions: ServerActions): void {
  table.register('server', {
    schema,
    handle(session, msg) {
      const reply = (status: 'success' | 'error', message: string, extra: Record<string, unknown> = {}) =>
        session.send.json({ type: 'server', status, message, content: { action: msg.action }, ...extra });
      const config = session.ctx.config.current;
      const secrets = [config.server.admin_secret, config['manager-api'].secret].filter(Boolean);
      if (!secrets.length) return void reply('error', 'server actions are disabled: set server.admin_secret');
      const address = budgetKey(session.info.remoteAddress);
      const wait = actions.throttle.retryAfterMs(address, 'admin');
      if (wait > 0) return void reply('error', tooManyFailures(wait).message);
      if (!secrets.some((s) => secretEquals(msg.content?.secret, s))) {
        if (msg.content?.secret) actions.throttle.failed(address, 'admin');
        session.log.warn({ action: msg.action }, 'server action with a wrong secret refused');
        return void reply('error', 'wrong secret');
      }
      if (msg.action === 'restart') {
        reply('success', 'restarting');
        actions.restart();
        return;
      }
      void actions
        .reload(msg.content?.patch)
        .then((r) =>
          r.ok
            ? reply('success', 'config updated', { changed: r.changed, restartRequired: r.restartRequired })
            : reply('error', r.error),
        );
    },
  });
}
