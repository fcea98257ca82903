/**
 * What the peer feature's unit tests share: the feature on the real message table, registry, config and SQLite
 * store, and device connections that record what they are handed.
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../../config/load.js';
import { ConfigStore } from '../../config/store.js';
import { DeviceDirectory } from '../../hub/directory.js';
import { LocalDeviceRegistry, type DeviceConnection } from '../../hub/registry.js';
import { silentLogger } from '../../observability/log.js';
import { Metrics } from '../../observability/metrics.js';
import { createProviderFactories } from '../../providers/factories.js';
import { ProviderRegistry } from '../../providers/registry.js';
import { MessageTable } from '../../session/message-table.js';
import { Scope } from '../../session/scope.js';
import type { ServerContext, Session, SessionEvents } from '../../session/session.js';
import { openDatabase, type Db } from '../../store/sqlite.js';
import { PeerFeature, type PeerFeatureOptions } from './index.js';

export type Json = { type: string } & Record<string, unknown>;

/** A device connection that records every message it is handed. */
export class RecordingDevice implements DeviceConnection {
  readonly connectionId: string;
  readonly inbox: Json[] = [];
  /** What the feature uses of a Session when this device sends (receipts go to send.json). */
  readonly send = { json: (m: Json) => this.deliver(m) };
  readonly log = silentLogger();
  constructor(readonly deviceId: string) {
    this.connectionId = `conn-${deviceId}-${Math.random()}`;
  }
  replacedBy(): void {}
  deliver(message: Json): boolean {
    this.inbox.push(message);
    return true;
  }
  deliverText(json: string): boolean {
    return this.deliver(JSON.parse(json) as Json);
  }
}

export interface PeerHarness {
  ctx: ServerContext;
  peer: PeerFeature;
  /** Registers a device as the server does when a session says hello. */
  online(d: RecordingDevice): void;
  send(from: RecordingDevice, to: string, text: string): void;
  /** The texts of the peer messages a device got, in order. */
  texts(d: RecordingDevice): string[];
  close(): Promise<void>;
}

export function startPeerHarness(
  name: string,
  options: PeerFeatureOptions | ((db: Db) => PeerFeatureOptions) = {},
): PeerHarness {
  const dir = mkdtempSync(join(tmpdir(), `linus-peer-${name}-`));
  const db = openDatabase(dir);
  const config = new ConfigStore(validateConfig({ peer: { rate_limit_per_second: 100 } }).config);
  const log = silentLogger();
  const ctx: ServerContext = {
    config,
    log,
    metrics: new Metrics({ defaultMetrics: false }),
    registry: new LocalDeviceRegistry(),
    authKey: 'k',
    background: new Scope('background'),
    messages: new MessageTable(),
    events: new EventEmitter<SessionEvents>(),
  };
  const directory = new DeviceDirectory(join(dir, 'devices.yaml'), config, log);
  const peer = new PeerFeature(
    { ctx, db, providers: new ProviderRegistry(config, createProviderFactories(), log), directory },
    typeof options === 'function' ? options(db) : options,
  );
  return {
    ctx,
    peer,
    online(d) {
      ctx.registry.register(d);
      ctx.events.emit('registered', d as unknown as Session);
    },
    send: (from, to, text) =>
      ctx.messages.dispatch(from as unknown as Session, 'peer', { type: 'peer', to: [to], payload: { text } }),
    texts: (d) => d.inbox.filter((m) => m.event === 'message').map((m) => String((m.payload as Json).text)),
    async close() {
      await peer.close();
      directory.close();
      ctx.metrics.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
