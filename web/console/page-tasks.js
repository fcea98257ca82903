// Tasks: a board per group. Writes go through the same workflow service as a device's `workflow` events.
import { api, canWrite, field, h, on, state, toast } from './core.js';

const PRIORITIES = [0, 1, 2, 3];
let lastGroup = '';

function ownerOptions(selected) {
  const owners = state.devices.map((d) => ({
    value: d.alias ? `${d.alias}|${d.deviceId}` : d.deviceId,
    label: d.alias ? `${d.alias} (${d.deviceId})` : d.deviceId,
  }));
  if (selected && !owners.some((o) => o.value === selected)) owners.push({ value: selected, label: selected });
  return [
    h('option', { value: '' }, 'Nobody'),
    ...owners.map((o) => h('option', { value: o.value, selected: o.value === selected }, o.label)),
  ];
}

function prioritySelect(value = 2) {
  return h(
    'select',
    { name: 'priority' },
    PRIORITIES.map((p) => h('option', { value: String(p), selected: p === value }, `P${p}`)),
  );
}

export async function tasksPage() {
  if (!state.groups.length) {
    const { devices, groups } = await api('GET', '/api/devices');
    state.devices = devices;
    state.groups = groups;
  }
  const group = h('input', {
    name: 'group',
    list: 'group-list',
    value: lastGroup || state.groups[0] || '',
    autocomplete: 'off',
  });
  const groupList = h(
    'datalist',
    { id: 'group-list' },
    state.groups.map((g) => h('option', { value: g })),
  );
  const board = h('div', { class: 'board', 'aria-live': 'polite' });
  const writable = canWrite();

  const load = async () => {
    const key = group.value.trim();
    lastGroup = key;
    if (!key) {
      board.replaceChildren(h('p', { class: 'muted' }, 'Choose a group.'));
      return;
    }
    const page = await api('GET', `/supie/workflow?groupKey=${encodeURIComponent(key)}&limit=500`);
    board.replaceChildren(
      h('p', { class: 'muted' }, `${page.total} task${page.total === 1 ? '' : 's'} in group ${page.groupKey}.`),
      h(
        'ul',
        { class: 'tasks' },
        page.items.map((t) => taskItem(t, page.groupKey)),
      ),
    );
  };

  const act = async (fn, done) => {
    try {
      await fn();
      if (done) toast(done);
      await load();
    } catch (err) {
      toast(err.message, 'error');
    }
  };

  const taskItem = (t, groupKey) => {
    const base = `/supie/workflow/tasks/${encodeURIComponent(t.id)}`;
    const li = h('li', { class: `task ${t.status}`, 'data-task': t.id });
    const view = () =>
      li.replaceChildren(
        h(
          'div',
          { class: 'task-main' },
          h('span', { class: `prio p${t.priority}` }, `P${t.priority}`),
          h('span', { class: 'title' }, t.title),
          h('span', { class: 'owner' }, t.owner ? `→ ${t.owner}` : 'unassigned'),
          h('span', { class: 'status' }, t.status),
        ),
        writable
          ? h(
              'div',
              { class: 'actions' },
              t.status === 'open'
                ? h(
                    'button',
                    {
                      type: 'button',
                      'aria-label': `Complete ${t.title}`,
                      onclick: () => act(() => api('POST', `${base}/complete`, { groupKey }), 'Completed.'),
                    },
                    'Complete',
                  )
                : h(
                    'button',
                    {
                      type: 'button',
                      'aria-label': `Reopen ${t.title}`,
                      onclick: () => act(() => api('PUT', base, { groupKey, status: 'open' }), 'Reopened.'),
                    },
                    'Reopen',
                  ),
              h('button', { type: 'button', 'aria-label': `Edit ${t.title}`, onclick: edit }, 'Edit'),
              h(
                'button',
                {
                  type: 'button',
                  class: 'danger',
                  'aria-label': `Delete ${t.title}`,
                  onclick: () =>
                    confirm(`Delete "${t.title}"?`) &&
                    act(() => api('DELETE', `${base}?groupKey=${encodeURIComponent(groupKey)}`), 'Deleted.'),
                },
                'Delete',
              ),
            )
          : null,
      );
    const edit = () => {
      const title = h('input', { name: 'title', value: t.title, required: true, maxlength: 200 });
      const priority = prioritySelect(t.priority);
      const owner = h('select', { name: 'owner' }, ownerOptions(t.owner));
      li.replaceChildren(
        h(
          'form',
          {
            class: 'inline',
            onsubmit: (e) => {
              e.preventDefault();
              act(async () => {
                await api('PUT', base, { groupKey, title: title.value, priority: Number(priority.value) });
                if (owner.value && owner.value !== t.owner)
                  await api('POST', `${base}/assign`, { groupKey, owner: owner.value });
              }, 'Saved.');
            },
          },
          field('Title', title),
          field('Priority', priority),
          field('Owner', owner),
          h('button', { type: 'submit' }, 'Save'),
          h('button', { type: 'button', onclick: view }, 'Cancel'),
        ),
      );
      title.focus();
    };
    view();
    return li;
  };

  const newTitle = h('input', { name: 'title', required: true, maxlength: 200, placeholder: 'What needs doing' });
  const newPriority = prioritySelect();
  const newOwner = h('select', { name: 'owner' }, ownerOptions());
  const create = writable
    ? h(
        'form',
        {
          class: 'inline card',
          'aria-label': 'Add a task',
          onsubmit: (e) => {
            e.preventDefault();
            const groupKey = group.value.trim();
            act(async () => {
              await api('POST', '/supie/workflow/tasks', {
                groupKey,
                title: newTitle.value,
                priority: Number(newPriority.value),
                ...(newOwner.value ? { owner: newOwner.value } : {}),
              });
              newTitle.value = '';
            }, 'Task created.');
          },
        },
        field('New task', newTitle),
        field('Priority', newPriority),
        field('Owner', newOwner),
        h('button', { type: 'submit' }, 'Add task'),
      )
    : h('p', { class: 'muted' }, 'Read-only: log in with server.admin_secret to change tasks.');

  group.addEventListener('change', () => load().catch((err) => toast(err.message, 'error')));
  await load();
  const node = h(
    'section',
    {},
    h('h1', {}, 'Tasks'),
    h('div', { class: 'inline' }, field('Group', group), groupList),
    create,
    board,
  );
  return {
    title: 'Tasks',
    node,
    cleanup: [
      on('tasks', (e) => {
        // Not while a task is being edited here: the form would be replaced under the user's hands.
        if (e.groupKey === group.value.trim() && !board.querySelector('form'))
          load().catch((err) => toast(err.message, 'error'));
      }),
    ],
  };
}
