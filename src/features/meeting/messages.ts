import { z } from 'zod';

/**
 * Inbound `{"type":"meeting"}` messages (fork-contracts §2.3) and the wording of their schema errors, which name
 * the missing fields: `{"type":"meeting","status":"error","code":"SCHEMA_INVALID","message":...}`.
 */

export const snippetItemSchema = z.looseObject({
  tag: z.string().max(64).optional(),
  text: z.string(),
  speakerId: z.string().max(128).optional(),
});

const snippetSchema = z.looseObject({
  type: z.literal('meeting'),
  phase: z.literal('snippet'),
  items: z.array(snippetItemSchema).min(1),
});

const finalizeSchema = z.looseObject({ type: z.literal('meeting'), phase: z.literal('finalize') });

export const meetingMessageSchema = z.discriminatedUnion('phase', [snippetSchema, finalizeSchema]);
export type MeetingMessage = z.infer<typeof meetingMessageSchema>;
export type SnippetItem = z.infer<typeof snippetItemSchema>;

/** What the message table checks before the handler: only the type; the handler answers in the fork's error shape. */
export const meetingEnvelopeSchema = z.looseObject({ type: z.literal('meeting') });

const ITEM_SHAPE = 'items must be array of {tag?,text,speakerId?}';

function pathText(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (s, p) => (typeof p === 'number' ? `${s}[${p}]` : s ? `${s}.${String(p)}` : String(p)),
    '',
  );
}

/** One message naming what is missing or wrong, e.g. `items must be array of {tag?,text,speakerId?}: missing items[0].text`. */
export function describeMeetingError(error: z.ZodError): string {
  const details: string[] = [];
  let aboutItems = false;
  for (const issue of error.issues.slice(0, 5)) {
    const path = pathText(issue.path);
    if (path === 'phase' || path === '') {
      details.push('phase must be "snippet" or "finalize"');
      continue;
    }
    if (path.startsWith('items')) aboutItems = true;
    if (issue.code === 'too_small' && path === 'items') details.push('items is empty');
    else if (/received undefined/.test(issue.message)) details.push(`missing ${path}`);
    else details.push(`${path}: ${issue.message}`);
  }
  const text = [...new Set(details)].join('; ') || 'invalid meeting message';
  return aboutItems ? `${ITEM_SHAPE}: ${text}` : text;
}

export type ParsedMeetingMessage = { ok: true; message: MeetingMessage } | { ok: false; error: string };

export function parseMeetingMessage(raw: unknown): ParsedMeetingMessage {
  const r = meetingMessageSchema.safeParse(raw);
  return r.success ? { ok: true, message: r.data } : { ok: false, error: describeMeetingError(r.error) };
}
