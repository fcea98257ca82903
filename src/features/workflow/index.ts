import { setTimeout as sleep } from 'node:timers/promises';
import { Scope } from '../../session/scope.js';
import type { Session } from '../../session/session.js';
import type { Feature, FeatureDeps } from '../feature.js';
import { noMeetings, registerWorkflowApi, type MeetingSummaryLookup } from './api.js';
import { registerWorkflowEvents } from './events.js';
import { WorkflowService } from './service.js';
import { workflowSettings } from './settings.js';
import { SqliteTaskStore, type TaskStore } from './store.js';
import { installWorkingVoice, enterManualListening, installWorkingMode } from './working.js';

export type { MeetingSummaryForImport, MeetingSummaryLookup } from './api.js';
export type { SnapshotSource } from './gate.js';
export { WorkflowInputError, WorkflowNotFoundError, WorkflowService, type WorkflowSnapshot } from './service.js';
export type { TaskStore } from './store.js';
export type { Task, UpsertResult } from './types.js';

export interface WorkflowFeatureOptions {
  /** Seam to the meeting feature for POST /supie/workflow/import-from-meeting; default: no meeting exists (404). */
  summaryOf?: MeetingSummaryLookup;
  /** Another task store (PostgreSQL...); default: SQLite in `deps.db`. */
  store?: TaskStore;
}

export interface WorkflowFeature extends Feature {
  readonly service: WorkflowService;
  /**
   * Field-level upsert of tasks into `groupKey` (a task's own `groupKey` wins), then pushes the new snapshot to
   * every online device of each changed group. Tasks without an id get one. `by` names the writer in logs.
   * Throws WorkflowInputError (fork wording) on bad input.
   */
  upsertTasks: WorkflowService['upsertTasks'];
  /** Pushes each group's snapshot to the online devices of that group (unicast, own group only). */
  broadcastGroups: WorkflowService['broadcastGroups'];
  /** Workflow group of a device (D20). */
  groupOf(deviceId: string): string;
}

/**
 * Workflow (C3, D20, D21) and working mode (C1): shared task lists per device group, their snapshots, the
 * working-mode voice commands and the HTTP API.
 *
 * Snapshots on register, first hello and `mode start working` share one per-connection gate (1500 ms);
 * with `workflow.test_mode` and `workflow.snapshot_on_register_delay_ms` the register snapshot is one awaited
 * task in the session scope, so closing the session cancels it (seeds #10, #11).
 */
export function createWorkflowFeature(deps: FeatureDeps, options: WorkflowFeatureOptions = {}): WorkflowFeature {
  const { ctx, modes, directory } = deps;
  const log = ctx.log.child({ feature: 'workflow' });
  const scope = new Scope('workflow', (err, where) => log.error({ err, where }, 'error in workflow scope'));
  const store = options.store ?? new SqliteTaskStore(deps.db);
  const service = new WorkflowService({ store, registry: ctx.registry, directory, log });
  const working = { modes, config: ctx.config, service };

  registerWorkflowEvents(ctx.messages, service);
  installWorkingMode(working);
  scope.add(installWorkingVoice(deps.voiceHooks, working));
  registerWorkflowApi(deps.api, service, options.summaryOf ?? noMeetings);

  const onRegistered = (session: Session): void => {
    service.attach(session);
    const { testMode, registerDelayMs } = workflowSettings(ctx.config.current);
    if (testMode && registerDelayMs > 0) {
      // One task that really waits, then sends; closing the session aborts the wait and nothing is sent (seed #10).
      void session.scope.run('workflow:register-snapshot', async (signal) => {
        await sleep(registerDelayMs, undefined, { signal });
        await service.sendSnapshot(session, 'register');
      });
    } else {
      void session.scope.run('workflow:register-snapshot', () => service.sendSnapshot(session, 'register'));
    }
  };

  const onReady = (session: Session): void => {
    // Working mode is device state and survives a handover: the new connection listens manually again.
    if (modes.current(session) === 'working') enterManualListening(session);
    void session.scope.run('workflow:hello-snapshot', () => service.sendSnapshot(session, 'hello'));
  };

  ctx.events.on('registered', onRegistered);
  ctx.events.on('ready', onReady);
  scope.add(() => {
    ctx.events.off('registered', onRegistered);
    ctx.events.off('ready', onReady);
  });
  scope.add(
    directory.onReload(() => {
      void scope.run('regroup', () => service.regroup([...deps.sessions()]));
    }),
  );

  return {
    name: 'workflow',
    service,
    upsertTasks: (groupKey, tasks, by, opts) => service.upsertTasks(groupKey, tasks, by, opts),
    broadcastGroups: (groups, source) => service.broadcastGroups(groups, source),
    groupOf: (deviceId) => service.groupOf(deviceId),
    async close() {
      await scope.drain();
      scope.close();
    },
  };
}
