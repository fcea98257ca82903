import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessage } from '../../errors.js';
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

/**
 * Workflow (C3, D20, D21) and working mode (C1): shared task lists per device group, their snapshots, the
 * working-mode voice commands and the HTTP API.
 *
 * Snapshots on register, first hello and `mode start working` share one per-connection gate (1500 ms);
 * with `workflow.test_mode` and `workflow.snapshot_on_register_delay_ms` the register snapshot is one awaited
 * task in the session scope, so closing the session cancels it (seeds #10, #11).
 */
export class WorkflowFeature implements Feature {
  readonly name = 'workflow';
  /** Tasks, groups and snapshots; other features (peer tasks) go through it. */
  readonly service: WorkflowService;
  readonly #deps: FeatureDeps;
  readonly #scope: Scope;

  constructor(deps: FeatureDeps, options: WorkflowFeatureOptions = {}) {
    this.#deps = deps;
    const { ctx, modes, directory } = deps;
    const log = ctx.log.child({ feature: 'workflow' });
    const scope = new Scope('workflow', (err, where) => log.error({ err, where }, 'error in workflow scope'));
    this.#scope = scope;
    const store = options.store ?? new SqliteTaskStore(deps.db);
    const bus = ctx.cluster?.bus;
    const announce = bus
      ? (groups: string[]) =>
          void bus.broadcast({ kind: 'tasks', groups }).catch((err: unknown) => {
            // The tasks are stored; devices on other nodes get them with their next snapshot (register, hello).
            log.warn({ err: errorMessage(err), groups }, '[Workflow] task change not announced to the other nodes');
          })
      : undefined;
    const service = new WorkflowService({
      store,
      registry: ctx.registry,
      directory,
      log,
      ...(announce ? { announce } : {}),
    });
    this.service = service;
    if (bus) {
      scope.add(bus.on('tasks', (m) => void scope.run('cluster-tasks', () => service.fanOut(m.groups))));
      // Task changes announced while this node could not read are lost with the bus's broadcasts: resend.
      scope.add(bus.onGap(() => void scope.run('cluster-resync', () => service.resync([...deps.sessions()]))));
    }
    const working = { modes, config: ctx.config, service };

    registerWorkflowEvents(ctx.messages, service);
    installWorkingMode(working);
    scope.add(installWorkingVoice(deps.voiceHooks, working));
    registerWorkflowApi(deps.api, service, options.summaryOf ?? noMeetings);
    scope.on(ctx.events, 'registered', (session: Session) => this.#onRegistered(session));
    scope.on(ctx.events, 'ready', (session: Session) => this.#onReady(session));
    scope.add(
      directory.onReload(() => {
        void scope.run('regroup', () => service.regroup([...deps.sessions()]));
      }),
    );
  }

  async close(): Promise<void> {
    await this.#scope.drain();
    this.#scope.close();
  }

  #onRegistered(session: Session): void {
    const { service } = this;
    service.attach(session);
    const { testMode, registerDelayMs } = workflowSettings(this.#deps.ctx.config.current);
    if (testMode && registerDelayMs > 0) {
      // One task that really waits, then sends; closing the session aborts the wait and nothing is sent (seed #10).
      void session.scope.run('workflow:register-snapshot', async (signal) => {
        await sleep(registerDelayMs, undefined, { signal });
        await service.sendSnapshot(session, 'register');
      });
    } else {
      void session.scope.run('workflow:register-snapshot', () => service.sendSnapshot(session, 'register'));
    }
  }

  #onReady(session: Session): void {
    // Working mode is device state and survives a handover: the new connection listens manually again.
    if (this.#deps.modes.current(session) === 'working') enterManualListening(session);
    void session.scope.run('workflow:hello-snapshot', () => this.service.sendSnapshot(session, 'hello'));
  }
}
