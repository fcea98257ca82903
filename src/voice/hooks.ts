import type { Session } from '../session/session.js';

/** Lets a feature take recognized or typed text before it becomes a chat turn; true = handled. */
export type TextInterceptor = (session: Session, text: string, source: 'voice' | 'typed') => boolean;

/** True = replies are silenced for this session now (meeting.disable_tts, working.disable_tts). */
export type TtsBypass = (session: Session) => boolean;

/**
 * Feature hooks into every session's voice pipeline, registered once per server (not per session, so an idle
 * connection carries none of them). Hooks get the session and decide from its mode and the current config.
 */
export class VoiceHooks {
  readonly interceptors: TextInterceptor[] = [];
  readonly ttsBypass: TtsBypass[] = [];

  intercept(fn: TextInterceptor): () => void {
    this.interceptors.push(fn);
    return () => remove(this.interceptors, fn);
  }

  bypassTts(fn: TtsBypass): () => void {
    this.ttsBypass.push(fn);
    return () => remove(this.ttsBypass, fn);
  }
}

function remove<T>(list: T[], item: T): void {
  const i = list.indexOf(item);
  if (i >= 0) list.splice(i, 1);
}
