import { z } from 'zod';
import type { Session } from '../session/session.js';
import type { MessageTable } from '../session/message-table.js';

/** Device modes of the fork (C1). `chat` is the default, no-mode state. */
export const MODES = ['meeting', 'working', 'coding'] as const;
export type Mode = (typeof MODES)[number];

/** A device's kept `mode` value (its record, or the shared device state), if it is a mode. */
export function modeOf(value: unknown): Mode | undefined {
  return MODES.includes(value as Mode) ? (value as Mode) : undefined;
}

const modeSchema = z.looseObject({ type: z.literal('mode'), state: z.enum(['start', 'end']), mode: z.enum(MODES) });

export type ModeHook = (session: Session, source: 'device' | 'voice') => void | Promise<void>;

/**
 * Mode state belongs to the device (its DeviceRecord), so it survives a handover. Start of the active mode is
 * idempotent (ack only); features hang their side effects on `onStart`/`onEnd`.
 */
export class ModeController {
  #start = new Map<Mode, ModeHook[]>();
  #end = new Map<Mode, ModeHook[]>();

  constructor(messages: MessageTable<Session>) {
    messages.register('mode', {
      schema: modeSchema,
      handle: (session, msg) => {
        if (msg.state === 'start') void this.start(session, msg.mode, 'device');
        else void this.end(session, msg.mode, 'device');
      },
    });
  }

  onStart(mode: Mode, hook: ModeHook): void {
    this.#start.set(mode, [...(this.#start.get(mode) ?? []), hook]);
  }

  onEnd(mode: Mode, hook: ModeHook): void {
    this.#end.set(mode, [...(this.#end.get(mode) ?? []), hook]);
  }

  current(session: Session): Mode | undefined {
    return modeOf(session.record?.state.get('mode'));
  }

  async start(session: Session, mode: Mode, source: 'device' | 'voice'): Promise<void> {
    const record = session.record;
    if (record?.state.get('mode') === mode) {
      session.send.json({ type: 'mode', status: 'ok', state: 'start', mode, idempotent: true });
      return;
    }
    const previous = this.current(session);
    if (previous) await this.end(session, previous, source, false);
    record?.state.set('mode', mode);
    session.send.json({ type: 'mode', status: 'ok', state: 'start', mode });
    await this.#run(this.#start.get(mode), session, source, `start ${mode}`);
  }

  async end(session: Session, mode: Mode, source: 'device' | 'voice', ack = true): Promise<void> {
    const record = session.record;
    const active = record?.state.get('mode') === mode;
    if (active) record?.state.delete('mode');
    if (ack)
      session.send.json({ type: 'mode', status: 'ok', state: 'end', mode, ...(active ? {} : { idempotent: true }) });
    // End hooks run even when the mode was not active on this connection: `mode end meeting` is a finalize
    // the device may send after a reconnect.
    await this.#run(this.#end.get(mode), session, source, `end ${mode}`);
  }

  async #run(hooks: ModeHook[] | undefined, session: Session, source: 'device' | 'voice', what: string): Promise<void> {
    for (const hook of hooks ?? []) {
      try {
        await hook(session, source);
      } catch (err) {
        session.log.error({ err, what }, 'mode hook failed');
      }
    }
  }
}
