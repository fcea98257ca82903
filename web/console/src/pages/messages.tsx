// Messages: a peer message to a device or a group; the offline queue per device.
import { useState } from 'preact/hooks';
import { api, canWrite, messageOf } from '../api.js';
import { fmtTime } from '../format.js';
import { Field, Page, Table, toastError, useLoad, useTitle } from '../ui.js';
import { deviceName, type Device } from './devices.js';

interface Queued {
  queuedAt: number;
  expiresAt: number;
  from: string;
  category: string;
  payload?: { text?: unknown };
}

function Queue({ waiting }: { waiting: { deviceId: string; count: number }[] }) {
  const [detail, setDetail] = useState<{ deviceId: string; items: Queued[] } | null>(null);
  if (!waiting.length) return <p class="muted">No message is waiting for an offline device.</p>;
  const show = async (deviceId: string) =>
    setDetail({ deviceId, items: await api<Queued[]>('GET', `/supie/peer/queue/${encodeURIComponent(deviceId)}`) });
  return (
    <>
      <Table headers={['Device', 'Queued messages', '']} caption="Offline queue">
        {waiting.map((w) => (
          <tr key={w.deviceId}>
            <td>{w.deviceId}</td>
            <td class="num">{w.count}</td>
            <td>
              <button
                type="button"
                aria-label={`Show messages queued for ${w.deviceId}`}
                onClick={() => show(w.deviceId).catch(toastError)}
              >
                Show
              </button>
            </td>
          </tr>
        ))}
      </Table>
      {detail ? (
        <div>
          <h3>Queued for {detail.deviceId}</h3>
          <Table headers={['Queued', 'From', 'Category', 'Text', 'Expires']}>
            {detail.items.map((m) => (
              <tr>
                <td>{fmtTime(m.queuedAt)}</td>
                <td>{m.from}</td>
                <td>{m.category}</td>
                <td>{typeof m.payload?.text === 'string' ? m.payload.text : JSON.stringify(m.payload)}</td>
                <td>{fmtTime(m.expiresAt)}</td>
              </tr>
            ))}
          </Table>
        </div>
      ) : null}
    </>
  );
}

function SendForm({ devices, groups, sent }: { devices: Device[]; groups: string[]; sent: () => Promise<void> }) {
  const [target, setTarget] = useState(
    devices[0] ? `device:${devices[0].deviceId}` : groups[0] ? `group:${groups[0]}` : '',
  );
  const [category, setCategory] = useState('message');
  const [text, setText] = useState('');
  const [result, setResult] = useState('');
  const submit = async (e: Event) => {
    e.preventDefault();
    const colon = target.indexOf(':');
    const [kind, value] = [target.slice(0, colon), target.slice(colon + 1)];
    try {
      const r = await api<{ delivered: unknown[]; enqueued: unknown[]; failed: unknown[] }>(
        'POST',
        '/supie/peer/send',
        {
          ...(kind === 'group' ? { group: value } : { to: [value] }),
          category,
          text,
        },
      );
      setResult(`Delivered to ${r.delivered.length}, queued for ${r.enqueued.length}, failed ${r.failed.length}.`);
      setText('');
      await sent();
    } catch (err) {
      setResult(`Not sent: ${messageOf(err)}`);
    }
  };
  return (
    <form class="card stack" aria-label="Send a message" onSubmit={submit}>
      <Field label="To">
        <select name="to" required value={target} onChange={(e) => setTarget(e.currentTarget.value)}>
          <optgroup label="Devices">
            {devices.map((d) => (
              <option value={`device:${d.deviceId}`}>{deviceName(d)}</option>
            ))}
          </optgroup>
          <optgroup label="Groups">
            {groups.map((g) => (
              <option value={`group:${g}`}>Group {g}</option>
            ))}
          </optgroup>
        </select>
      </Field>
      <Field label="Category">
        <select name="category" value={category} onChange={(e) => setCategory(e.currentTarget.value)}>
          {['message', 'notice', 'task'].map((c) => (
            <option value={c}>{c}</option>
          ))}
        </select>
      </Field>
      <Field label="Text">
        <textarea
          name="text"
          rows={3}
          required
          maxLength={2000}
          value={text}
          onInput={(e) => setText(e.currentTarget.value)}
        />
      </Field>
      <button type="submit">Send</button>
      <p aria-live="polite">{result}</p>
    </form>
  );
}

export function MessagesPage() {
  useTitle('Messages');
  const known = useLoad(() => api<{ devices: Device[]; groups: string[] }>('GET', '/api/devices'));
  const queue = useLoad(() => api<{ deviceId: string; count: number }[]>('GET', '/supie/peer/queue'));
  return (
    <Page loaded={known}>
      {({ devices, groups }) => (
        <section>
          <h1>Messages</h1>
          {canWrite() ? (
            <SendForm devices={devices} groups={groups} sent={queue.reload} />
          ) : (
            <p class="muted">Read-only: log in with server.admin_secret to send messages.</p>
          )}
          <h2>Waiting for offline devices</h2>
          <Page loaded={queue}>{(waiting) => <Queue waiting={waiting} />}</Page>
        </section>
      )}
    </Page>
  );
}
