// Config: the effective config (secrets redacted); a patch validated, then applied through the reload path.
import { api, canWrite, field, h, toast } from './core.js';

export async function configPage() {
  const { config } = await api('GET', '/api/config');
  const patch = h('textarea', {
    name: 'patch',
    rows: 8,
    spellcheck: false,
    class: 'code',
    placeholder: '{"server": {"api_rate_limit": 20}}',
  });
  const result = h('div', { 'aria-live': 'polite', class: 'result' });
  const writable = canWrite();

  const parse = () => {
    try {
      const v = JSON.parse(patch.value || '{}');
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('the patch must be a JSON object');
      return v;
    } catch (err) {
      result.replaceChildren(h('p', { class: 'error', role: 'alert' }, `Not valid JSON: ${err.message}`));
      return undefined;
    }
  };
  const show = (r, applied) => {
    if (!r.ok) {
      result.replaceChildren(
        h('p', { class: 'error', role: 'alert' }, 'The change was rejected:'),
        h(
          'ul',
          { class: 'errors' },
          r.errors.map((e) => h('li', {}, h('code', {}, e.path || '(root)'), ': ', e.message)),
        ),
      );
      return;
    }
    result.replaceChildren(
      h('p', { class: 'ok' }, applied ? `Applied. Changed: ${r.changed.join(', ') || 'nothing'}.` : 'Valid.'),
      r.restartRequired?.length ? h('p', {}, `Needs a restart to apply: ${r.restartRequired.join(', ')}.`) : null,
      r.warnings?.length
        ? h(
            'ul',
            {},
            r.warnings.map((w) => h('li', {}, w)),
          )
        : null,
    );
  };
  const run = (path, applied) => async () => {
    const p = parse();
    if (!p) return;
    try {
      show(await api('POST', path, { patch: p }), applied);
      if (applied) view.textContent = JSON.stringify((await api('GET', '/api/config')).config, null, 2);
    } catch (err) {
      result.replaceChildren(h('p', { class: 'error', role: 'alert' }, err.message));
    }
  };
  const view = h(
    'pre',
    { class: 'code', tabindex: 0, 'aria-label': 'Effective config' },
    JSON.stringify(config, null, 2),
  );
  const restart = async () => {
    if (!confirm('Restart the server? Devices reconnect after a moment.')) return;
    await api('POST', '/api/restart');
    toast('Restarting…');
  };
  return {
    title: 'Config',
    node: h(
      'section',
      {},
      h('h1', {}, 'Config'),
      h('h2', {}, 'Change'),
      h(
        'p',
        { class: 'muted' },
        'A JSON patch over the config file: only the keys to change. Validated completely before anything changes.',
      ),
      field('Patch (JSON)', patch),
      h(
        'div',
        { class: 'actions' },
        h('button', { type: 'button', onclick: run('/api/config/validate', false) }, 'Validate'),
        writable ? h('button', { type: 'button', onclick: run('/api/config/apply', true) }, 'Apply') : null,
        writable
          ? h(
              'button',
              { type: 'button', class: 'danger', onclick: () => restart().catch((e) => toast(e.message, 'error')) },
              'Restart server',
            )
          : null,
      ),
      result,
      h('h2', {}, 'Effective config (secrets redacted)'),
      view,
    ),
  };
}
