import { z } from 'zod';
import { errorMessage } from '../errors.js';

/** Inbound JSON message schemas. Unknown fields are kept: devices and clients add their own. */

/** The sample rates an Opus decoder (and encoder) works at: audio at any other rate cannot be decoded. */
export const OPUS_SAMPLE_RATES = [8000, 12000, 16000, 24000, 48000] as const;
export type OpusSampleRate = (typeof OPUS_SAMPLE_RATES)[number];
export const isOpusSampleRate = (rate: unknown): rate is OpusSampleRate =>
  OPUS_SAMPLE_RATES.includes(rate as OpusSampleRate);

export const audioParamsSchema = z.looseObject({
  format: z.string().optional(),
  // Refused in the hello answer: accepted, every packet at that rate would be dropped without a word to the device.
  sample_rate: z
    .number()
    .refine(isOpusSampleRate, {
      error: (issue) => `${String(issue.input)} is not a rate Opus decodes; use one of ${OPUS_SAMPLE_RATES.join(', ')}`,
    })
    .optional(),
  channels: z.number().int().positive().optional(),
  frame_duration: z.number().int().positive().optional(),
});

export const helloSchema = z.looseObject({
  type: z.literal('hello'),
  version: z.number().int().optional(),
  transport: z.string().optional(),
  features: z.record(z.string(), z.unknown()).optional(),
  audio_params: audioParamsSchema.optional(),
});
export type HelloMessage = z.infer<typeof helloSchema>;

export const listenSchema = z.looseObject({
  type: z.literal('listen'),
  state: z.enum(['start', 'stop', 'detect']),
  mode: z.enum(['auto', 'manual', 'realtime']).optional(),
  text: z.string().optional(),
});
export type ListenMessage = z.infer<typeof listenSchema>;

export const abortSchema = z.looseObject({ type: z.literal('abort'), reason: z.string().optional() });

export const jsonRpcSchema = z.looseObject({
  jsonrpc: z.string().optional(),
  id: z.union([z.number(), z.string(), z.null()]).optional(),
  method: z.string().optional(),
  params: z.unknown().optional(),
  result: z.unknown().optional(),
  error: z.unknown().optional(),
});
export const mcpSchema = z.looseObject({ type: z.literal('mcp'), payload: jsonRpcSchema });
export type McpMessage = z.infer<typeof mcpSchema>;

const iotDescriptorSchema = z.looseObject({ name: z.string() });
const iotStateSchema = z.looseObject({ name: z.string(), state: z.record(z.string(), z.unknown()) });
export const iotSchema = z.looseObject({
  type: z.literal('iot'),
  update: z.boolean().optional(),
  descriptors: z.array(iotDescriptorSchema).optional(),
  states: z.array(iotStateSchema).optional(),
});
export type IotMessage = z.infer<typeof iotSchema>;
export type IotDescriptor = z.infer<typeof iotDescriptorSchema>;

export const heartbeatSchema = z.looseObject({ type: z.enum(['ping', 'keepalive']) });
export const configUpdateSchema = z.looseObject({ type: z.literal('config_update') });
export const goodbyeSchema = z.looseObject({ type: z.literal('goodbye') });

/** Result of reading one text frame, before dispatch on `type`. */
export type TextFrame =
  | { kind: 'message'; type: string; message: Record<string, unknown> }
  | { kind: 'number'; text: string }
  | { kind: 'bad_json'; error: string }
  | { kind: 'no_type' };

export function readTextFrame(text: string): TextFrame {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { kind: 'bad_json', error: errorMessage(err) };
  }
  // The reference echoes a bare JSON number; some clients use that as a cheap probe.
  if (typeof value === 'number') return { kind: 'number', text: text.trim() };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { kind: 'no_type' };
  const type = (value as { type?: unknown }).type;
  if (typeof type !== 'string' || type.length === 0) return { kind: 'no_type' };
  return { kind: 'message', type, message: value as Record<string, unknown> };
}

/** One line naming the first schema problem with its path, for error replies and logs. */
export function describeSchemaError(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid message';
  const path = issue.path.length ? issue.path.join('.') : '(root)';
  return `${path}: ${issue.message}`;
}

/** Codes of the `{"type":"error"}` replies the server sends for bad input. */
export const ErrorCode = {
  BadJson: 'BAD_JSON',
  SchemaInvalid: 'SCHEMA_INVALID',
  NoType: 'NO_TYPE',
  FrameTooLarge: 'FRAME_TOO_LARGE',
  BadFrame: 'BAD_FRAME',
  RateLimited: 'RATE_LIMITED',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];
