import { receiveRelays } from '../hub/cluster/fanout.js';
import type { Lifecycle } from '../lifecycle.js';
import { CodingFeature } from './coding/index.js';
import type { Feature, FeatureDeps } from './feature.js';
import { MeetingFeature, meetingSummaryFor } from './meeting/index.js';
import { ConsoleFeature } from '../transport/console/index.js';
import { registerPeerApi } from './peer/api.js';
import { PeerFeature } from './peer/index.js';
import type { NormalizedTask } from './peer/message.js';
import { StatsFeature } from './stats.js';
import { WorkflowFeature, type WorkflowService } from './workflow/index.js';

/**
 * A peer `category:"task"` message becomes a task in the TARGET's group, owned by the target
 * (`peer.peer_task_to_workflow`); the normalized id, priority, status and assignees are kept.
 */
function peerTaskToWorkflow(workflow: WorkflowService, deps: FeatureDeps) {
  return async (target: string, task: NormalizedTask, from: string): Promise<void> => {
    const fields = {
      ...task,
      title: task.title ?? task.description ?? 'Task',
      owner: deps.directory.displayName(target),
    };
    // Only the fields the sender gave: absent ones must not overwrite what the task already has.
    const defined = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
    await workflow.upsertTasks(workflow.groupOf(target), [defined], from);
  };
}

/**
 * Starts every team feature in order, each registered with `parts` the moment it exists: a stop, or a start that
 * fails later on, closes them in reverse.
 */
export function startFeatures(deps: FeatureDeps, parts: Lifecycle): void {
  const start = <F extends Feature>(feature: F): F => {
    parts.add(`feature ${feature.name}`, () => feature.close?.());
    return feature;
  };
  const { stores, ctx, directory } = deps;
  // Relays of the other nodes (meeting broadcasts, coding notices) to this node's devices; before the features
  // that send them, so it stops after them.
  if (ctx.cluster)
    parts.add(
      'cluster relays',
      receiveRelays(ctx.cluster, (id) => directory.groupOf(id)),
    );
  start(new MeetingFeature(deps, { store: stores.meetings, outbox: stores.webhooks }));
  const workflow = start(
    new WorkflowFeature(deps, { store: stores.tasks, summaryOf: (id) => meetingSummaryFor(stores.meetings, id) }),
  );
  const peer = start(
    new PeerFeature(deps, { queue: stores.peerQueue, onTask: peerTaskToWorkflow(workflow.service, deps) }),
  );
  registerPeerApi(deps.api, {
    peer,
    registry: deps.ctx.registry,
    cluster: deps.ctx.cluster,
    directory: deps.directory,
  });
  start(new CodingFeature(deps));
  start(new StatsFeature(deps));
  // The console last: it listens to the others, and closes first.
  if (ConsoleFeature.enabled(deps.ctx.config.current))
    start(new ConsoleFeature({ ...deps, workflow: workflow.service }));
}
