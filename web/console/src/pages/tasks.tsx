// Tasks: a board per group. Writes go through the same workflow service as a device's `workflow` events.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, canWrite } from '../api.js';
import { useEvent } from '../events.js';
import { plural } from '../format.js';
import { Field, Page, toast, toastError, useLoad, useTitle } from '../ui.js';
import { deviceName, type Device } from './devices.js';

const PRIORITIES = [0, 1, 2, 3];

interface Task {
  id: string;
  title: string;
  priority: number;
  owner?: string;
  status: string;
}

/** The group shown last: coming back to the page shows it again. */
let lastGroup = '';

function OwnerSelect({
  devices,
  value,
  onChange,
}: {
  devices: Device[];
  value: string;
  onChange: (v: string) => void;
}) {
  const owners = devices.map((d) => ({
    value: d.alias ? `${d.alias}|${d.deviceId}` : d.deviceId,
    label: deviceName(d),
  }));
  if (value && !owners.some((o) => o.value === value)) owners.push({ value, label: value });
  return (
    <select name="owner" value={value} onChange={(e) => onChange(e.currentTarget.value)}>
      <option value="">Nobody</option>
      {owners.map((o) => (
        <option value={o.value}>{o.label}</option>
      ))}
    </select>
  );
}

function PrioritySelect({ value, onChange }: { value: number; onChange: (v: number) => void }) {
  return (
    <select name="priority" value={String(value)} onChange={(e) => onChange(Number(e.currentTarget.value))}>
      {PRIORITIES.map((p) => (
        <option value={String(p)}>P{p}</option>
      ))}
    </select>
  );
}

type Act = (fn: () => Promise<unknown>, done: string) => Promise<void>;

function TaskItem({ t, groupKey, devices, act }: { t: Task; groupKey: string; devices: Device[]; act: Act }) {
  const [editing, setEditing] = useState(false);
  const [title, setTitle] = useState(t.title);
  const [priority, setPriority] = useState(t.priority);
  const [owner, setOwner] = useState(t.owner ?? '');
  const titleInput = useRef<HTMLInputElement>(null);
  useEffect(() => {
    if (editing) titleInput.current?.focus();
  }, [editing]);
  const base = `/supie/workflow/tasks/${encodeURIComponent(t.id)}`;
  const edit = () => {
    setTitle(t.title);
    setPriority(t.priority);
    setOwner(t.owner ?? '');
    setEditing(true);
  };
  const save = (e: Event) => {
    e.preventDefault();
    void act(async () => {
      await api('PUT', base, { groupKey, title, priority });
      if (owner && owner !== t.owner) await api('POST', `${base}/assign`, { groupKey, owner });
      setEditing(false);
    }, 'Saved.');
  };
  return (
    <li class={`task ${t.status}`} data-task={t.id}>
      {editing ? (
        <form class="inline" data-editing="" onSubmit={save}>
          <Field label="Title">
            <input
              ref={titleInput}
              name="title"
              required
              maxLength={200}
              value={title}
              onInput={(e) => setTitle(e.currentTarget.value)}
            />
          </Field>
          <Field label="Priority">
            <PrioritySelect value={priority} onChange={setPriority} />
          </Field>
          <Field label="Owner">
            <OwnerSelect devices={devices} value={owner} onChange={setOwner} />
          </Field>
          <button type="submit">Save</button>
          <button type="button" onClick={() => setEditing(false)}>
            Cancel
          </button>
        </form>
      ) : (
        <>
          <div class="task-main">
            <span class={`prio p${t.priority}`}>P{t.priority}</span>
            <span class="title">{t.title}</span>
            <span class="owner">{t.owner ? `→ ${t.owner}` : 'unassigned'}</span>
            <span class="status">{t.status}</span>
          </div>
          {canWrite() ? (
            <div class="actions">
              {t.status === 'open' ? (
                <button
                  type="button"
                  aria-label={`Complete ${t.title}`}
                  onClick={() => act(() => api('POST', `${base}/complete`, { groupKey }), 'Completed.')}
                >
                  Complete
                </button>
              ) : (
                <button
                  type="button"
                  aria-label={`Reopen ${t.title}`}
                  onClick={() => act(() => api('PUT', base, { groupKey, status: 'open' }), 'Reopened.')}
                >
                  Reopen
                </button>
              )}
              <button type="button" aria-label={`Edit ${t.title}`} onClick={edit}>
                Edit
              </button>
              <button
                type="button"
                class="danger"
                aria-label={`Delete ${t.title}`}
                onClick={() =>
                  confirm(`Delete "${t.title}"?`) &&
                  act(() => api('DELETE', `${base}?groupKey=${encodeURIComponent(groupKey)}`), 'Deleted.')
                }
              >
                Delete
              </button>
            </div>
          ) : null}
        </>
      )}
    </li>
  );
}

function NewTask({ devices, act, groupKey }: { devices: Device[]; act: Act; groupKey: string }) {
  const [title, setTitle] = useState('');
  const [priority, setPriority] = useState(2);
  const [owner, setOwner] = useState('');
  const submit = (e: Event) => {
    e.preventDefault();
    void act(async () => {
      await api('POST', '/supie/workflow/tasks', { groupKey, title, priority, ...(owner ? { owner } : {}) });
      setTitle('');
    }, 'Task created.');
  };
  return (
    <form class="inline card" aria-label="Add a task" onSubmit={submit}>
      <Field label="New task">
        <input
          name="title"
          required
          maxLength={200}
          placeholder="What needs doing"
          value={title}
          onInput={(e) => setTitle(e.currentTarget.value)}
        />
      </Field>
      <Field label="Priority">
        <PrioritySelect value={priority} onChange={setPriority} />
      </Field>
      <Field label="Owner">
        <OwnerSelect devices={devices} value={owner} onChange={setOwner} />
      </Field>
      <button type="submit">Add task</button>
    </form>
  );
}

export function TasksPage() {
  useTitle('Tasks');
  const known = useLoad(() => api<{ devices: Device[]; groups: string[] }>('GET', '/api/devices'));
  useEvent('devices', (devices: Device[]) => known.setData((old) => old && { ...old, devices }));
  const [group, setGroup] = useState(lastGroup);
  const [shown, setShown] = useState(lastGroup);
  // The first group known, once the groups are there and none was chosen before.
  useEffect(() => {
    const first = known.data?.groups[0];
    if (!shown && first) {
      setGroup(first);
      setShown(first);
    }
  }, [known.data, shown]);
  const board = useLoad(async () => {
    lastGroup = shown;
    if (!shown) return null;
    return api<{ items: Task[]; total: number; groupKey: string }>(
      'GET',
      `/supie/workflow?groupKey=${encodeURIComponent(shown)}&limit=500`,
    );
  }, [shown]);
  const boardRef = useRef<HTMLDivElement>(null);
  useEvent('tasks', (e: { groupKey: string }) => {
    // Not while a task is being edited here: the form would be replaced under the user's hands.
    if (e.groupKey === shown && !boardRef.current?.querySelector('form[data-editing]')) void board.reload();
  });
  const act: Act = async (fn, done) => {
    try {
      await fn();
      toast(done);
      await board.reload();
    } catch (err) {
      toastError(err);
    }
  };
  return (
    <Page loaded={known}>
      {({ devices, groups }) => (
        <section>
          <h1>Tasks</h1>
          <div class="inline">
            <Field label="Group">
              <input
                name="group"
                list="group-list"
                autocomplete="off"
                value={group}
                onInput={(e) => setGroup(e.currentTarget.value)}
                onChange={(e) => setShown(e.currentTarget.value.trim())}
              />
            </Field>
            <datalist id="group-list">
              {groups.map((g) => (
                <option value={g} />
              ))}
            </datalist>
          </div>
          {canWrite() ? (
            <NewTask devices={devices} act={act} groupKey={shown} />
          ) : (
            <p class="muted">Read-only: log in with server.admin_secret to change tasks.</p>
          )}
          <div class="board" aria-live="polite" ref={boardRef}>
            <Page loaded={board}>
              {(page) =>
                page ? (
                  <>
                    <p class="muted">
                      {plural(page.total, 'task')} in group {page.groupKey}.
                    </p>
                    <ul class="tasks">
                      {page.items.map((t) => (
                        <TaskItem key={t.id} t={t} groupKey={page.groupKey} devices={devices} act={act} />
                      ))}
                    </ul>
                  </>
                ) : (
                  <p class="muted">Choose a group.</p>
                )
              }
            </Page>
          </div>
        </section>
      )}
    </Page>
  );
}
