// Devices: who is online, live from the event stream; a device's recent turns and events.
import { api, fmtAgo, fmtTime, h, on, state, table } from './core.js';

const STAGES = ['asr', 'llm', 'tts', 'send', 'total'];

function latency(turn) {
  if (!turn) return '—';
  const parts = STAGES.filter((s) => turn.latencyMs[s] !== undefined).map((s) => `${s} ${turn.latencyMs[s]} ms`);
  return `${turn.outcome}${parts.length ? `: ${parts.join(' · ')}` : ''}`;
}

function name(d) {
  return d.alias ? `${d.alias} (${d.deviceId})` : d.deviceId;
}

function deviceRows(devices) {
  return devices.map((d) =>
    h(
      'tr',
      { 'data-device': d.deviceId },
      h('td', {}, h('a', { href: `#/devices/${encodeURIComponent(d.deviceId)}` }, name(d))),
      h('td', {}, h('span', { class: d.online ? 'pill on' : 'pill off' }, d.online ? 'online' : 'offline')),
      h('td', {}, d.group),
      h('td', {}, d.role ?? '—'),
      h('td', {}, d.online ? d.mode : '—'),
      h('td', {}, d.connectedAt ? h('time', { title: fmtTime(d.connectedAt) }, fmtAgo(d.connectedAt)) : '—'),
      h('td', {}, d.protocolVersion ? `v${d.protocolVersion}` : '—'),
      h('td', {}, latency(d.lastTurn)),
    ),
  );
}

export async function devicesPage() {
  const { devices, groups } = await api('GET', '/api/devices');
  state.devices = devices;
  state.groups = groups;
  const summary = h('p', { class: 'muted', 'aria-live': 'polite' });
  const body = h('tbody');
  const draw = (list) => {
    const online = list.filter((d) => d.online).length;
    summary.textContent = `${online} online, ${list.length - online} known offline.`;
    body.replaceChildren(...deviceRows(list));
  };
  draw(devices);
  const wrap = table(
    ['Device', 'Status', 'Group', 'Role', 'Mode', 'Connected', 'Protocol', 'Last turn (latency by stage)'],
    [],
    'Devices',
  );
  wrap.querySelector('tbody').replaceWith(body);
  const node = h('section', {}, h('h1', {}, 'Devices'), summary, wrap);
  return { title: 'Devices', node, cleanup: [on('devices', draw)] };
}

export async function deviceDetailPage(id) {
  const node = h('section');
  const draw = async () => {
    const d = await api('GET', `/api/devices/${encodeURIComponent(id)}`);
    node.replaceChildren(
      h('p', {}, h('a', { href: '#/devices' }, '← Devices')),
      h('h1', {}, name(d)),
      h(
        'dl',
        { class: 'facts' },
        ...[
          ['Status', d.online ? 'online' : 'offline'],
          ['Group', d.group],
          ['Role', d.role ?? '—'],
          ['Mode', d.online ? d.mode : '—'],
          ['Connected since', fmtTime(d.connectedAt)],
          ['Protocol version', d.protocolVersion ?? '—'],
          ['Client id', d.clientId ?? '—'],
          ['Address', d.address ?? '—'],
        ].flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v))]),
      ),
      h('h2', {}, 'Recent turns'),
      d.turns.length
        ? table(
            ['When', 'Outcome', ...STAGES.map((s) => `${s} (ms)`)],
            d.turns
              .slice()
              .reverse()
              .map((t) =>
                h(
                  'tr',
                  {},
                  h('td', {}, fmtTime(t.at)),
                  h('td', {}, t.outcome),
                  STAGES.map((s) => h('td', { class: 'num' }, t.latencyMs[s] ?? '—')),
                ),
              ),
          )
        : h('p', { class: 'muted' }, 'No voice turn since the server started.'),
      h('h2', {}, 'Events'),
      d.events.length
        ? h(
            'ul',
            { class: 'events' },
            d.events
              .slice()
              .reverse()
              .map((e) => h('li', {}, h('time', {}, fmtTime(e.at)), ' ', e.what)),
          )
        : h('p', { class: 'muted' }, 'No event since the server started.'),
    );
  };
  await draw();
  return {
    title: id,
    node,
    cleanup: [on('devices', (list) => list.some((d) => d.deviceId === id) && draw().catch(() => undefined))],
  };
}
