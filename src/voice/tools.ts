import { errorMessage } from '../errors.js';
import type { ToolCall, ToolSpec } from '../providers/types.js';
import type { Session } from '../session/session.js';

/**
 * What a tool call does to the turn: `reqllm` feeds the result back to the LLM; `respond` speaks text
 * directly (the reference's RESPONSE action) and, for the exit intent, closes the session after `tts stop`.
 */
export type ToolOutcome = { action: 'reqllm'; result: string } | { action: 'respond'; text: string; exit?: boolean };

export interface ToolEntry {
  spec: ToolSpec;
  run(args: Record<string, unknown>, signal: AbortSignal): Promise<ToolOutcome>;
}

/** LLM-safe tool name, as the reference sanitizes MCP names (`self.audio_speaker.set_volume` → `self_audio_speaker_set_volume`). */
export function sanitizeToolName(name: string): string {
  return name.replace(/[^a-zA-Z0-9_\-\u4e00-\u9fff]/g, '_').slice(0, 64);
}

function formatNow(timezoneOffsetHours: number, now = new Date()): string {
  const local = new Date(now.getTime() + timezoneOffsetHours * 3_600_000);
  const days = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
  const sign = timezoneOffsetHours >= 0 ? '+' : '-';
  return `${local.toISOString().slice(0, 16).replace('T', ' ')} (${days[local.getUTCDay()]}, UTC${sign}${Math.abs(timezoneOffsetHours)})`;
}

/** Tools by their LLM-safe name. */
export type Tools = Map<string, ToolEntry>;

/** Tools a turn offers the LLM: the device's MCP tools, legacy IoT methods, and the server's own. */
export function toolsFor(session: Session): Tools {
  const tools = new Map<string, ToolEntry>();
  const config = session.ctx.config.current;

  tools.set('handle_exit_intent', {
    spec: {
      name: 'handle_exit_intent',
      description: 'Call when the user wants to end the conversation or says goodbye.',
      parameters: {
        type: 'object',
        properties: { say_goodbye: { type: 'string', description: 'A short, friendly goodbye to speak' } },
        required: ['say_goodbye'],
      },
    },
    run: async (args) => ({
      action: 'respond',
      text: typeof args.say_goodbye === 'string' && args.say_goodbye ? args.say_goodbye : 'Goodbye!',
      exit: true,
    }),
  });
  tools.set('get_time', {
    spec: {
      name: 'get_time',
      description: 'Current local date, weekday and time.',
      parameters: { type: 'object', properties: {} },
    },
    run: async () => ({ action: 'reqllm', result: formatNow(config.server.timezone_offset) }),
  });

  const timeoutMs = config.tool_call_timeout * 1000;
  for (const t of session.mcp.tools) {
    const name = sanitizeToolName(t.name);
    if (tools.has(name)) continue;
    tools.set(name, {
      spec: {
        name,
        description: t.description ?? t.name,
        parameters: (t.inputSchema as Record<string, unknown>) ?? { type: 'object', properties: {} },
      },
      run: async (args, signal) => {
        const result = (await session.mcp.callTool(t.name, args, timeoutMs, signal)) as {
          content?: { type?: string; text?: string }[];
          isError?: boolean;
        };
        const text = result?.content?.find((c) => c.type === 'text')?.text ?? JSON.stringify(result ?? null);
        return { action: 'reqllm', result: result?.isError ? `error: ${text}` : text };
      },
    });
  }

  for (const [thing, d] of session.iot.descriptors) {
    const methods = (d.methods ?? {}) as Record<
      string,
      { description?: string; parameters?: Record<string, { description?: string; type?: string }> }
    >;
    for (const [method, m] of Object.entries(methods)) {
      const name = sanitizeToolName(`iot_${thing}_${method}`);
      const properties = Object.fromEntries(
        Object.entries(m.parameters ?? {}).map(([p, def]) => [
          p,
          {
            type: def.type === 'boolean' || def.type === 'number' ? def.type : 'string',
            description: def.description ?? p,
          },
        ]),
      );
      tools.set(name, {
        spec: {
          name,
          description: `${String(d.description ?? thing)}: ${m.description ?? method}`,
          parameters: { type: 'object', properties },
        },
        run: async (args) => {
          const sent = session.send.json({ type: 'iot', commands: [{ name: thing, method, parameters: args }] });
          return {
            action: 'reqllm',
            result: sent ? `${thing}.${method} sent to the device` : 'the device is not connected',
          };
        },
      });
    }
  }
  return tools;
}

/** Runs one call; bad arguments and failures come back as results the LLM can read, never as exceptions. */
export async function runTool(tools: Tools, call: ToolCall, signal: AbortSignal): Promise<ToolOutcome> {
  const tool = tools.get(call.name);
  if (!tool) return { action: 'reqllm', result: `error: no tool named ${call.name}` };
  let args: Record<string, unknown> = {};
  try {
    const parsed: unknown = call.arguments ? JSON.parse(call.arguments) : {};
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) args = parsed as Record<string, unknown>;
  } catch {
    // The model is told, so it can retry the call with valid arguments.
    return { action: 'reqllm', result: 'error: arguments were not valid JSON' };
  }
  try {
    return await tool.run(args, signal);
  } catch (err) {
    if (signal.aborted) throw err;
    return { action: 'reqllm', result: `error: ${errorMessage(err)}` };
  }
}
