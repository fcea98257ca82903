// Messages: a peer message to a device or a group; the offline queue per device.
import { api, canWrite, field, fmtTime, h, state, table, toast } from './core.js';

export async function messagesPage() {
  const { devices, groups } = await api('GET', '/api/devices');
  state.devices = devices;
  state.groups = groups;
  const target = h(
    'select',
    { name: 'to', required: true },
    h(
      'optgroup',
      { label: 'Devices' },
      devices.map((d) =>
        h('option', { value: `device:${d.deviceId}` }, `${d.alias ? `${d.alias} (${d.deviceId})` : d.deviceId}`),
      ),
    ),
    h(
      'optgroup',
      { label: 'Groups' },
      groups.map((g) => h('option', { value: `group:${g}` }, `Group ${g}`)),
    ),
  );
  const category = h(
    'select',
    { name: 'category' },
    ['message', 'notice', 'task'].map((c) => h('option', { value: c }, c)),
  );
  const text = h('textarea', { name: 'text', rows: 3, required: true, maxlength: 2000 });
  const result = h('p', { 'aria-live': 'polite' });
  const queue = h('div');

  const loadQueue = async () => {
    const waiting = await api('GET', '/supie/peer/queue');
    if (!waiting.length) {
      queue.replaceChildren(h('p', { class: 'muted' }, 'No message is waiting for an offline device.'));
      return;
    }
    const detail = h('div');
    queue.replaceChildren(
      table(
        ['Device', 'Queued messages', ''],
        waiting.map((w) =>
          h(
            'tr',
            {},
            h('td', {}, w.deviceId),
            h('td', { class: 'num' }, w.count),
            h(
              'td',
              {},
              h(
                'button',
                {
                  type: 'button',
                  'aria-label': `Show messages queued for ${w.deviceId}`,
                  onclick: async () => {
                    const items = await api('GET', `/supie/peer/queue/${encodeURIComponent(w.deviceId)}`);
                    detail.replaceChildren(
                      h('h3', {}, `Queued for ${w.deviceId}`),
                      table(
                        ['Queued', 'From', 'Category', 'Text', 'Expires'],
                        items.map((m) =>
                          h(
                            'tr',
                            {},
                            h('td', {}, fmtTime(m.queuedAt)),
                            h('td', {}, m.from),
                            h('td', {}, m.category),
                            h(
                              'td',
                              {},
                              typeof m.payload?.text === 'string' ? m.payload.text : JSON.stringify(m.payload),
                            ),
                            h('td', {}, fmtTime(m.expiresAt)),
                          ),
                        ),
                      ),
                    );
                  },
                },
                'Show',
              ),
            ),
          ),
        ),
        'Offline queue',
      ),
      detail,
    );
  };

  const form = canWrite()
    ? h(
        'form',
        {
          class: 'card stack',
          'aria-label': 'Send a message',
          onsubmit: async (e) => {
            e.preventDefault();
            const [kind, value] = [
              target.value.slice(0, target.value.indexOf(':')),
              target.value.split(':').slice(1).join(':'),
            ];
            try {
              const r = await api('POST', '/supie/peer/send', {
                ...(kind === 'group' ? { group: value } : { to: [value] }),
                category: category.value,
                text: text.value,
              });
              result.textContent = `Delivered to ${r.delivered.length}, queued for ${r.enqueued.length}, failed ${r.failed.length}.`;
              text.value = '';
              await loadQueue();
            } catch (err) {
              result.textContent = `Not sent: ${err.message}`;
            }
          },
        },
        field('To', target),
        field('Category', category),
        field('Text', text),
        h('button', { type: 'submit' }, 'Send'),
        result,
      )
    : h('p', { class: 'muted' }, 'Read-only: log in with server.admin_secret to send messages.');
  await loadQueue().catch((err) => toast(err.message, 'error'));
  return {
    title: 'Messages',
    node: h('section', {}, h('h1', {}, 'Messages'), form, h('h2', {}, 'Waiting for offline devices'), queue),
  };
}
