import type { Feature, FeatureDeps } from '../feature.js';
import { registerMeetingRoutes } from './api.js';
import type { WebhookOutbox } from './outbox.js';
import { MeetingService } from './service.js';
import type { MeetingStore } from './store.js';

export { meetingSummaryFor, type MeetingSummaryRef } from './store.js';

/**
 * The meeting feature (C2): live transcription with minutes. Wiring only; see service.ts (run time), store.ts
 * (SQLite), finalize.ts (D18), timers.ts (pushes and checkpoints), webhook.ts (outbox delivery), api.ts (HTTP).
 */
export class MeetingFeature implements Feature {
  readonly name = 'meeting';
  readonly service: MeetingService;

  constructor(deps: FeatureDeps, opts: { store?: MeetingStore; outbox?: WebhookOutbox } = {}) {
    this.service = new MeetingService(deps, opts);
    registerMeetingRoutes(deps.api, this.service.store, (id) => this.service.outbox.ofMeeting(id));
  }

  close(): Promise<void> {
    return this.service.close();
  }
}
