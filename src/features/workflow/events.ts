import { z } from 'zod';
import type { MessageTable } from '../../session/message-table.js';
import type { Session } from '../../session/session.js';
import { WorkflowInputError, WorkflowNotFoundError, type ChangeOutcome, type WorkflowService } from './service.js';
import { StoreUnavailableError } from '../../store/unavailable.js';
import { checkOptionalGroupKey } from './validate.js';

/**
 * The `{"type":"workflow","event":...}` messages of the fork (§2.4): update (field-level upsert; empty = pull),
 * list, complete, delete, assign. The table's schema only checks the envelope: the event's own checks happen
 * here, so a bad event is answered in the fork's shape
 * `{"type":"workflow","status":"error","code":"SCHEMA_INVALID","message":...}` rather than a generic error.
 */
const envelope = z.looseObject({ type: z.literal('workflow') });

export const WORKFLOW_EVENTS = ['update', 'list', 'complete', 'delete', 'assign'] as const;

export function registerWorkflowEvents(messages: MessageTable<Session>, service: WorkflowService): void {
  messages.register('workflow', {
    schema: envelope,
    handle(session, msg) {
      const event = typeof msg.event === 'string' ? msg.event : '';
      void session.scope.run(`workflow:${event || 'unknown'}`, () => handleEvent(service, session, event, msg));
    },
  });
}

async function handleEvent(
  service: WorkflowService,
  session: Session,
  event: string,
  msg: Record<string, unknown>,
): Promise<void> {
  const ack = (extra: Record<string, unknown> = {}) =>
    session.send.json({ type: 'workflow', status: 'ok', event, ...extra });
  const error = (code: string, message: string) => {
    // Malformed input is a bad frame like any other (counted); not-found and internal errors are not.
    if (code === 'SCHEMA_INVALID') session.ctx.metrics.badFrames.labels('schema').inc();
    session.send.json({ type: 'workflow', status: 'error', code, message, ...(event ? { event } : {}) });
  };
  /** The caller gets its own group's snapshot after a change, unless the change push already reached it. */
  const answer = async (outcome: ChangeOutcome) => {
    if (!outcome.reached.has(session)) await service.sendSnapshot(session, 'pull');
  };

  try {
    const group = checkOptionalGroupKey(msg.groupKey);
    if (!group.ok) {
      error('SCHEMA_INVALID', group.message);
      return;
    }
    const target = group.value ?? service.groupOf(session.deviceId);
    switch (event) {
      case 'list':
        ack();
        await service.sendSnapshot(session, 'list');
        return;
      case 'update': {
        if (msg.tasks === undefined || (Array.isArray(msg.tasks) && msg.tasks.length === 0)) {
          ack();
          await service.sendSnapshot(session, 'pull');
          return;
        }
        if (!Array.isArray(msg.tasks)) throw new WorkflowInputError('tasks must be array');
        const r = await service.upsertTasks(target, msg.tasks, session.deviceId, { requireId: true });
        ack({
          ...(r.changedGroups.length ? {} : { idempotent: true }),
          ...(r.created.length ? { created: r.created } : {}),
        });
        await answer(r);
        return;
      }
      case 'complete': {
        const r = await service.completeTasks(target, msg.ids, session.deviceId);
        ack({
          ...(r.completed.length ? {} : { idempotent: true }),
          ...(r.notFound.length ? { notFound: r.notFound } : {}),
        });
        if (r.completed.length) await answer(r);
        return;
      }
      case 'delete': {
        const r = await service.deleteTasks(target, msg.ids, session.deviceId);
        ack({
          ...(r.deleted.length ? {} : { idempotent: true }),
          ...(r.notFound.length ? { notFound: r.notFound } : {}),
        });
        if (r.deleted.length) await answer(r);
        return;
      }
      case 'assign': {
        const owner = msg.owner === undefined || msg.owner === null ? service.ownerName(session.deviceId) : msg.owner;
        const r = await service.assignTask(target, msg.id, owner, session.deviceId);
        ack({ ...(r.result === 'unchanged' ? { idempotent: true } : {}), id: msg.id, owner: r.owner });
        if (r.result === 'changed') await answer(r);
        return;
      }
      default:
        error('SCHEMA_INVALID', `event must be one of ${WORKFLOW_EVENTS.join('|')}`);
    }
  } catch (err) {
    if (err instanceof WorkflowInputError || err instanceof WorkflowNotFoundError) {
      error(err.code, err.message);
      return;
    }
    session.log.error({ err, event }, 'workflow event failed');
    // An unreachable store is named (the device may retry); anything else stays an internal error.
    error('INTERNAL_ERROR', err instanceof StoreUnavailableError ? err.message : 'internal error');
  }
}
