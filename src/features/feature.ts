import type { ReloadResult } from '../config/reload.js';
import type { DeviceDirectory } from '../hub/directory.js';
import type { ProviderRegistry } from '../providers/registry.js';
import type { ServerContext, Session } from '../session/session.js';
import type { Db } from '../store/sqlite.js';
import type { ApiRoutes } from '../transport/api.js';
import type { HttpRoutes } from '../transport/http-app.js';
import type { VoiceHooks } from '../voice/hooks.js';
import type { VoicePipeline } from '../voice/pipeline.js';
import type { WebhookOutbox } from './meeting/outbox.js';
import type { MeetingStore } from './meeting/store.js';
import type { ModeController } from './modes.js';
import type { PeerQueue } from './peer/queue.js';
import type { TaskStore } from './workflow/store.js';

/** The stores the features share, SQLite or PostgreSQL by the server's mode (store/compose.ts). */
export interface FeatureStores {
  meetings: MeetingStore;
  webhooks: WebhookOutbox;
  tasks: TaskStore;
  peerQueue: PeerQueue;
}

/**
 * What a feature (meeting, workflow, peer, coding, stats) gets from the server. A feature registers its
 * message types on `ctx.messages`, its routes on `router`, listens to `ctx.events` / `modes`, keeps its
 * timers in session scopes or its own scope, and reaches other devices only through `ctx.registry`.
 */
export interface FeatureDeps {
  ctx: ServerContext;
  /** The embedded SQLite store (the default of a feature built without `stores`, as unit tests do). */
  db: Db;
  stores: FeatureStores;
  providers: ProviderRegistry;
  modes: ModeController;
  /** Aliases, workflow groups and roles of devices (devices.yaml, hot-reloaded). */
  directory: DeviceDirectory;
  /** The data dir (files a feature may keep next to the store, e.g. exports). */
  dataDir: string;
  router: HttpRoutes;
  /** HTTP API routes with the fork's wrapper, token auth, CORS and rate limit (D21). */
  api: ApiRoutes;
  /** Text interceptors and TTS bypass checks for every session's voice pipeline; register once. */
  voiceHooks: VoiceHooks;
  /** The voice pipeline of a session if it has one yet (it is built on first audio or listen). */
  voiceOf(session: Session): VoicePipeline | undefined;
  /** Live sessions on this node. */
  sessions(): Iterable<Session>;
  /** The admin actions: a config reload with an optional patch (the one reload path), and a restart. */
  admin: { reload(patch?: Record<string, unknown>): Promise<ReloadResult>; restart(): void };
}

/**
 * The one shape of a feature: a class implementing this, built with `new XFeature(deps, options?)` where `deps` is
 * the part of FeatureDeps it uses. The constructor registers everything (message types, routes, listeners and
 * timers in the feature's own scope); `close()` ends what it started.
 */
export interface Feature {
  readonly name: string;
  /** Called on shutdown after sessions closed: flush outboxes, stop timers. */
  close?(): Promise<void> | void;
}
