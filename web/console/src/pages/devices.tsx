// Devices: who is online, live from the event stream; a device's recent turns and events.
import { api } from '../api.js';
import { useEvent } from '../events.js';
import { fmtAgo, fmtTime } from '../format.js';
import { Page, Table, useLoad, useTitle } from '../ui.js';

const STAGES = ['asr', 'llm', 'tts', 'send', 'total'] as const;

export interface Turn {
  at: number;
  outcome: string;
  latencyMs: Partial<Record<string, number>>;
}

export interface Device {
  deviceId: string;
  alias?: string;
  group: string;
  role?: string;
  online: boolean;
  /** Cluster mode: the node it is connected to. */
  node?: string;
  mode: string;
  connectedAt?: number;
  protocolVersion?: number;
  clientId?: string;
  address?: string;
  lastTurn?: Turn;
}

interface DeviceDetail extends Device {
  turns: Turn[];
  events: { at: number; what: string }[];
}

export const deviceName = (d: Device): string => (d.alias ? `${d.alias} (${d.deviceId})` : d.deviceId);

function latency(turn: Turn | undefined): string {
  if (!turn) return '—';
  const parts = STAGES.filter((s) => turn.latencyMs[s] !== undefined).map((s) => `${s} ${turn.latencyMs[s]} ms`);
  return `${turn.outcome}${parts.length ? `: ${parts.join(' · ')}` : ''}`;
}

export function DevicesPage() {
  useTitle('Devices');
  const loaded = useLoad(() => api<{ devices: Device[] }>('GET', '/api/devices'));
  useEvent('devices', (devices: Device[]) => loaded.setData((old) => old && { ...old, devices }));
  return (
    <Page loaded={loaded}>
      {({ devices }) => {
        const online = devices.filter((d) => d.online).length;
        return (
          <section>
            <h1>Devices</h1>
            <p class="muted" aria-live="polite">
              {online} online, {devices.length - online} known offline.
            </p>
            <Table
              headers={[
                'Device',
                'Status',
                'Group',
                'Role',
                'Mode',
                'Connected',
                'Protocol',
                'Last turn (latency by stage)',
              ]}
              caption="Devices"
            >
              {devices.map((d) => (
                <tr data-device={d.deviceId} key={d.deviceId}>
                  <td>
                    <a href={`#/devices/${encodeURIComponent(d.deviceId)}`}>{deviceName(d)}</a>
                  </td>
                  <td>
                    <span class={d.online ? 'pill on' : 'pill off'}>{d.online ? 'online' : 'offline'}</span>
                  </td>
                  <td>{d.group}</td>
                  <td>{d.role ?? '—'}</td>
                  <td>{d.online ? d.mode : '—'}</td>
                  <td>{d.connectedAt ? <time title={fmtTime(d.connectedAt)}>{fmtAgo(d.connectedAt)}</time> : '—'}</td>
                  <td>{d.protocolVersion ? `v${d.protocolVersion}` : '—'}</td>
                  <td>{latency(d.lastTurn)}</td>
                </tr>
              ))}
            </Table>
          </section>
        );
      }}
    </Page>
  );
}

export function DeviceDetailPage({ id }: { id: string }) {
  useTitle(id);
  const loaded = useLoad(() => api<DeviceDetail>('GET', `/api/devices/${encodeURIComponent(id)}`));
  useEvent('devices', (list: Device[]) => {
    if (list.some((d) => d.deviceId === id)) void loaded.reload();
  });
  return (
    <Page loaded={loaded}>
      {(d) => (
        <section>
          <p>
            <a href="#/devices">← Devices</a>
          </p>
          <h1>{deviceName(d)}</h1>
          <dl class="facts">
            {(
              [
                ['Status', d.online ? 'online' : 'offline'],
                ...(d.node ? ([['Node', d.node]] as const) : []),
                ['Group', d.group],
                ['Role', d.role ?? '—'],
                ['Mode', d.online ? d.mode : '—'],
                ['Connected since', fmtTime(d.connectedAt)],
                ['Protocol version', d.protocolVersion ?? '—'],
                ['Client id', d.clientId ?? '—'],
                ['Address', d.address ?? '—'],
              ] as const
            ).map(([k, v]) => [<dt>{k}</dt>, <dd>{String(v)}</dd>])}
          </dl>
          <h2>Recent turns</h2>
          {d.turns.length ? (
            <Table headers={['When', 'Outcome', ...STAGES.map((s) => `${s} (ms)`)]}>
              {d.turns
                .slice()
                .reverse()
                .map((t) => (
                  <tr>
                    <td>{fmtTime(t.at)}</td>
                    <td>{t.outcome}</td>
                    {STAGES.map((s) => (
                      <td class="num">{t.latencyMs[s] ?? '—'}</td>
                    ))}
                  </tr>
                ))}
            </Table>
          ) : (
            <p class="muted">No voice turn since the server started.</p>
          )}
          <h2>Events</h2>
          {d.events.length ? (
            <ul class="events">
              {d.events
                .slice()
                .reverse()
                .map((e) => (
                  <li>
                    <time>{fmtTime(e.at)}</time> {e.what}
                  </li>
                ))}
            </ul>
          ) : (
            <p class="muted">No event since the server started.</p>
          )}
        </section>
      )}
    </Page>
  );
}
