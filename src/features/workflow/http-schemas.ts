import { z } from 'zod';
import { MAX_PRIORITY, MIN_PRIORITY, TASK_STATUSES } from './types.js';
import { MAX_GROUP_KEY_LENGTH, MAX_ID_LENGTH, MAX_OWNER_LENGTH, MAX_TITLE_LENGTH } from './validate.js';

/**
 * The task routes' bodies and answers (D21 wrapper aside), from the limits in validate.ts: checked before the
 * handler runs (a wrong type or length is a 400 naming the key) and listed in /api/openapi.json. The service
 * still checks what only it can (an id's characters, a known group, an owner's name); other fields of a task are
 * kept as sent (`extra`), so the objects are loose.
 */
const groupKey = z.string().max(MAX_GROUP_KEY_LENGTH).describe('the group; else ?groupKey=');
const owner = z.string().max(MAX_OWNER_LENGTH).nullable().describe('alias|device-id or a name; null or "" clears it');

export const taskFields = z.looseObject({
  groupKey: groupKey.optional(),
  title: z.string().max(MAX_TITLE_LENGTH).optional(),
  priority: z.int().min(MIN_PRIORITY).max(MAX_PRIORITY).optional().describe('0 is the most urgent; default 2'),
  status: z
    .string()
    .optional()
    .describe(`${TASK_STATUSES.join(' | ')} (any case)`),
  owner: owner.optional(),
});

export const taskCreateBody = taskFields.extend({
  id: z.string().max(MAX_ID_LENGTH).optional().describe('a stable id of your own; default: a new one'),
});

export const taskGroupBody = z.looseObject({ groupKey: groupKey.optional() });

export const taskAssignBody = z.looseObject({ groupKey: groupKey.optional(), owner });

export const importFromMeetingBody = z.looseObject({
  meetingId: z.string().optional().describe('required here or in the query (also as sessionId)'),
  groupKey: groupKey.optional().describe("default: the group of the meeting's device"),
});

export const taskCreated = z.object({ id: z.string(), created: z.boolean(), groupKey: z.string() });
export const taskChanged = z.object({ id: z.string(), changed: z.boolean(), groupKey: z.string() });
export const tasksImported = z.object({
  imported: z.int(),
  ids: z.array(z.string()),
  created: z.int(),
  groupKey: z.string(),
});
