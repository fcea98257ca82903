import type { ConfigStore } from '../../config/store.js';
import type { Session } from '../../session/session.js';
import type { VoiceHooks } from '../../voice/hooks.js';
import type { ModeController } from '../modes.js';
import { isWorkingModeSwitch, parseWorkingCommand, type WorkingCommand } from './commands.js';
import { WorkflowNotFoundError, type WorkflowService } from './service.js';
import { workflowSettings } from './settings.js';

/**
 * Working mode (C1, fork §2.2/§2.4): entering it puts the device in manual listening and sends its group's
 * snapshot (through the gate); in it, replies are silenced (`working.disable_tts`) and task commands are
 * handled before the LLM. The voice phrases that switch into it run the same flow as `mode start working`.
 */
export interface WorkingModeDeps {
  modes: ModeController;
  config: ConfigStore;
  service: WorkflowService;
}

export function installWorkingMode({ modes, service }: WorkingModeDeps): void {
  modes.onStart('working', async (session) => {
    enterManualListening(session);
    await service.sendSnapshot(session, 'mode_start');
  });
  modes.onEnd('working', (session) => {
    if (!session.closed) session.listen = { ...session.listen, mode: 'auto' };
  });
}

/** `listen start manual` to the device, and the session listens in manual mode (one voice turn is not the end). */
export function enterManualListening(session: Session): void {
  session.listen = { ...session.listen, mode: 'manual' };
  session.send.json({ type: 'listen', state: 'start', mode: 'manual' });
}

/** Hooks working mode into every session's voice pipeline (once per server); the disposer removes the hooks. */
export function installWorkingVoice(voice: VoiceHooks, deps: WorkingModeDeps): () => void {
  const { modes, config, service } = deps;
  const inWorking = (s: Session) => modes.current(s) === 'working';

  const bypass = (s: Session) => inWorking(s) && workflowSettings(config.current).workingDisableTts;

  const modeSwitch = (s: Session, text: string): boolean => {
    // In a meeting every utterance is transcript: talking about "工作模式" must not end it.
    if (modes.current(s) === 'meeting' || !isWorkingModeSwitch(text)) return false;
    s.send.json({ type: 'stt', text, intent: 'mode_switch', target_mode: 'working', session_id: s.sessionId });
    void s.scope.run('workflow:voice-mode-switch', () => modes.start(s, 'working', 'voice'));
    return true;
  };

  const command = (s: Session, text: string): boolean => {
    if (!inWorking(s)) return false;
    const cmd = parseWorkingCommand(text);
    if (!cmd) return false;
    void s.scope.run(`workflow:command-${cmd.intent}`, () => runWorkingCommand(service, s, cmd));
    return true;
  };

  const disposers = [voice.intercept(guarded(modeSwitch)), voice.intercept(guarded(command)), voice.bypassTts(bypass)];
  return () => disposers.forEach((d) => d());
}

/**
 * An interceptor runs inside the pipeline's text path (also on its async ASR path, where a throw would be an
 * unhandled rejection): a failure is logged and the text goes on to the next handler.
 */
function guarded(intercept: (s: Session, text: string) => boolean): (s: Session, text: string) => boolean {
  return (s, text) => {
    try {
      return intercept(s, text);
    } catch (err) {
      s.log.error({ err }, 'workflow voice interceptor failed');
      return false;
    }
  };
}

/**
 * Runs one working-mode voice command for the caller, in its own group, and answers
 * `{"type":"workflow","event":"command","intent":...}` with the outcome:
 * - assign: the Nth open task, or the first open task the caller does not own → owner = the caller;
 * - complete: the Nth open task, or the first open task → done;
 * - refresh: the caller's snapshot.
 * Changes are pushed to the group's devices like any other change.
 */
export async function runWorkingCommand(
  service: WorkflowService,
  session: Session,
  cmd: WorkingCommand,
): Promise<void> {
  const group = service.groupOf(session.deviceId);
  const by = session.deviceId;
  const reply = (extra: Record<string, unknown>) =>
    session.send.json({
      type: 'workflow',
      event: 'command',
      intent: cmd.intent,
      ...(cmd.ordinal ? { n: cmd.ordinal } : {}),
      ...extra,
    });

  if (cmd.intent === 'refresh') {
    reply({ ok: true });
    await service.sendSnapshot(session, 'command');
    return;
  }
  const task =
    cmd.ordinal !== undefined
      ? await service.nthOpenTask(group, cmd.ordinal)
      : await service.nthOpenTask(
          group,
          1,
          cmd.intent === 'assign' ? (t) => !service.isOwner(t.owner, session.deviceId) : undefined,
        );
  if (!task) {
    reply({ ok: false, message: cmd.ordinal !== undefined ? `no open task #${cmd.ordinal}` : 'no open task' });
    return;
  }
  try {
    if (cmd.intent === 'assign') {
      const r = await service.assignTask(group, task.id, service.ownerName(session.deviceId), by);
      reply({
        ok: true,
        id: task.id,
        title: task.title,
        owner: r.owner,
        ...(r.result === 'unchanged' ? { idempotent: true } : {}),
      });
      if (r.result === 'changed' && !r.reached.has(session)) await service.sendSnapshot(session, 'command');
    } else {
      const r = await service.completeTasks(group, [task.id], by);
      if (r.notFound.length) {
        reply({ ok: false, id: task.id, message: `task ${task.id} not found in group ${group}` });
        return;
      }
      reply({ ok: true, id: task.id, title: task.title, ...(r.completed.length ? {} : { idempotent: true }) });
      if (r.completed.length && !r.reached.has(session)) await service.sendSnapshot(session, 'command');
    }
  } catch (err) {
    // Deleted between the pick and the write.
    if (err instanceof WorkflowNotFoundError) reply({ ok: false, id: task.id, message: err.message });
    else throw err;
  }
}
