import { normalizeId } from '../../protocol/ids.js';
import { pagination, validId, type ApiRoutes } from '../../transport/api.js';
import { HttpError } from '../../transport/http-util.js';
import { WorkflowInputError, WorkflowNotFoundError, type WorkflowService } from './service.js';
import { taskToWire } from './types.js';
import {
  importFromMeetingBody,
  taskAssignBody,
  taskChanged,
  taskCreateBody,
  taskCreated,
  taskFields,
  taskGroupBody,
  tasksImported,
} from './http-schemas.js';
import { MAX_TITLE_LENGTH, normalizeGroupKey } from './validate.js';

/**
 * What import-from-meeting needs to know about a meeting. The meeting feature provides the lookup; `deviceId`
 * (the meeting's device) lets an import without `groupKey` land in that device's group.
 */
export interface MeetingSummaryForImport {
  title: string;
  actions: string[];
  nextSteps: string[];
  deviceId?: string;
}

/** The seam to the meeting feature: a meeting's summary by id, undefined when there is no such meeting. */
export type MeetingSummaryLookup = (meetingId: string) => Promise<MeetingSummaryForImport | undefined>;

/** Until the meeting feature is wired in, no meeting exists. */
export const noMeetings: MeetingSummaryLookup = async () => undefined;

const FULL_MAC = /^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$/i;

/**
 * `?groupKey=` as the fork accepted it: a group key, or a device's full id (then that device's group);
 * else `?deviceId=`.
 */
function groupFromQuery(url: URL, service: WorkflowService, required = true): string | undefined {
  const rawGroup = url.searchParams.get('groupKey');
  const rawDevice = url.searchParams.get('deviceId') ?? url.searchParams.get('device_id');
  if (rawGroup !== null) {
    const key = normalizeGroupKey(rawGroup);
    if (!key) throw new HttpError(400, 'invalid groupKey');
    return FULL_MAC.test(key) ? service.groupOf(validId(normalizeId(key), 'groupKey')) : key;
  }
  if (rawDevice !== null) return service.groupOf(validId(normalizeId(rawDevice), 'deviceId'));
  if (required) throw new HttpError(400, 'groupKey or deviceId is required');
  return undefined;
}

/** Service input errors as HTTP answers: bad input 400, unknown task 404. */
async function asHttp<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof WorkflowInputError) throw new HttpError(400, err.message);
    if (err instanceof WorkflowNotFoundError) throw new HttpError(404, err.message);
    throw err;
  }
}

/**
 * Task writes over HTTP (admin rights; the console's board uses them). Every one goes through the same service
 * calls as a device's `workflow` events, so the group's devices get the new snapshot exactly as then.
 *   POST   /supie/workflow/tasks                {groupKey, title, priority?, owner?, ...}  → created id
 *   PUT    /supie/workflow/tasks/:id            {groupKey, title?, priority?, status?, owner?, ...}
 *   POST   /supie/workflow/tasks/:id/complete   {groupKey}
 *   POST   /supie/workflow/tasks/:id/assign     {groupKey, owner}
 *   DELETE /supie/workflow/tasks/:id?groupKey=
 */
function registerTaskWrites(api: ApiRoutes, service: WorkflowService): void {
  const BY = 'http';
  const groupOf = (body: Record<string, unknown>, url: URL): string => {
    const key = normalizeGroupKey(body.groupKey ?? url.searchParams.get('groupKey') ?? '');
    if (!key) throw new HttpError(400, 'groupKey is required');
    return key;
  };
  api.add(
    'POST',
    '/supie/workflow/tasks',
    async (_req, _params, url, body) => {
      const { groupKey: _ignored, ...task } = body;
      const groupKey = groupOf(body, url);
      const r = await asHttp(() => service.upsertTasks(groupKey, [task], BY));
      return { id: r.ids[0], created: r.created.length > 0, groupKey };
    },
    { admin: true, body: taskCreateBody, response: taskCreated },
  );
  api.add(
    'PUT',
    '/supie/workflow/tasks/:id',
    async (_req, params, url, body) => {
      const { groupKey: _ignored, ...fields } = body;
      const groupKey = groupOf(body, url);
      const id = (params.id ?? '').trim();
      if (!(await service.store.get(groupKey, id)))
        throw new HttpError(404, `task ${id} not found in group ${groupKey}`);
      const r = await asHttp(() => service.upsertTasks(groupKey, [{ ...fields, id }], BY, { requireId: true }));
      return { id, changed: r.changedGroups.length > 0, groupKey };
    },
    { admin: true, body: taskFields, response: taskChanged },
  );
  api.add(
    'POST',
    '/supie/workflow/tasks/:id/complete',
    async (_req, params, url, body) => {
      const groupKey = groupOf(body, url);
      const r = await asHttp(() => service.completeTasks(groupKey, [params.id ?? ''], BY));
      if (r.notFound.length) throw new HttpError(404, `task ${params.id} not found in group ${groupKey}`);
      return { completed: r.completed, alreadyDone: r.alreadyDone, groupKey };
    },
    { admin: true, body: taskGroupBody },
  );
  api.add(
    'POST',
    '/supie/workflow/tasks/:id/assign',
    async (_req, params, url, body) => {
      const groupKey = groupOf(body, url);
      const r = await asHttp(() => service.assignTask(groupKey, params.id ?? '', body.owner, BY));
      return { owner: r.owner, changed: r.result === 'changed', groupKey };
    },
    { admin: true, body: taskAssignBody },
  );
  api.add(
    'DELETE',
    '/supie/workflow/tasks/:id',
    async (_req, params, url) => {
      const groupKey = groupOf({}, url);
      const r = await asHttp(() => service.deleteTasks(groupKey, [params.id ?? ''], BY));
      if (r.notFound.length) throw new HttpError(404, `task ${params.id} not found in group ${groupKey}`);
      return { deleted: r.deleted, groupKey };
    },
    { admin: true },
  );
}

/**
 * GET /supie/workflow, POST /supie/workflow/import-from-meeting (D21) and the task writes, on the shared API
 * conventions.
 */
export function registerWorkflowApi(api: ApiRoutes, service: WorkflowService, summaryOf: MeetingSummaryLookup): void {
  registerTaskWrites(api, service);
  api.add('GET', '/supie/workflow', async (_req, _params, url) => {
    const groupKey = groupFromQuery(url, service)!;
    const { limit, offset } = pagination(url, { limit: 100, max: 500 });
    const page = await service.listTasks(groupKey, { limit, offset });
    return { items: page.items.map(taskToWire), groupKey, total: page.total, limit, offset };
  });

  api.add(
    'POST',
    '/supie/workflow/import-from-meeting',
    async (_req, _params, url, b) => {
      // The fork's tests passed the parameters in the query string and called the id `sessionId`.
      const pick = (...keys: string[]) => {
        for (const k of keys) {
          const v = b[k] ?? url.searchParams.get(k);
          if (v !== undefined && v !== null && v !== '') return v;
        }
        return undefined;
      };
      const rawId = pick('meetingId', 'sessionId');
      if (rawId === undefined) throw new HttpError(400, 'meetingId is required');
      if (typeof rawId !== 'string') throw new HttpError(400, 'invalid meetingId');
      const meetingId = validId(rawId, 'meetingId');
      const rawGroup = pick('groupKey');
      let groupKey: string | undefined;
      if (rawGroup !== undefined) {
        groupKey = normalizeGroupKey(rawGroup);
        if (!groupKey) throw new HttpError(400, 'invalid groupKey');
      }

      const summary = await summaryOf(meetingId);
      if (!summary) throw new HttpError(404, 'meeting not found');
      if (!groupKey) {
        const device = normalizeId(summary.deviceId);
        if (!device) throw new HttpError(400, 'groupKey is required (the meeting names no device)');
        groupKey = service.groupOf(device);
      }

      const tasks: Record<string, unknown>[] = [];
      const add = (items: unknown, kind: 'action' | 'nextStep', letter: 'A' | 'N') => {
        if (!Array.isArray(items)) return;
        items.forEach((text, i) => {
          if (typeof text !== 'string' || text.trim() === '') return;
          tasks.push({
            id: `MEET-${meetingId}-${letter}${i + 1}`,
            title: text.trim().slice(0, MAX_TITLE_LENGTH),
            source: 'meeting',
            meetingId,
            meetingTitle: typeof summary.title === 'string' ? summary.title : '',
            kind,
          });
        });
      };
      add(summary.actions, 'action', 'A');
      add(summary.nextSteps, 'nextStep', 'N');
      const r = await service.upsertTasks(groupKey, tasks, `meeting:${meetingId}`);
      return { imported: tasks.length, ids: r.ids, created: r.created.length, groupKey };
    },
    { body: importFromMeetingBody, response: tasksImported },
  );
}
