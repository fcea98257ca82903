// Config: the effective config (secrets redacted); a patch validated, then applied through the reload path.
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { api, canWrite, messageOf } from '../api.js';
import { Field, Page, toast, toastError, useLoad, useTitle } from '../ui.js';

interface Checked {
  ok: boolean;
  errors?: { path: string; message: string }[];
  changed?: string[];
  restartRequired?: string[];
  warnings?: string[];
}

function Result({ r, applied }: { r: Checked; applied: boolean }) {
  if (!r.ok)
    return (
      <>
        <p class="error" role="alert">
          The change was rejected:
        </p>
        <ul class="errors">
          {(r.errors ?? []).map((e) => (
            <li>
              <code>{e.path || '(root)'}</code>: {e.message}
            </li>
          ))}
        </ul>
      </>
    );
  return (
    <>
      <p class="ok">{applied ? `Applied. Changed: ${r.changed?.join(', ') || 'nothing'}.` : 'Valid.'}</p>
      {r.restartRequired?.length ? <p>Needs a restart to apply: {r.restartRequired.join(', ')}.</p> : null}
      {r.warnings?.length ? (
        <ul>
          {r.warnings.map((w) => (
            <li>{w}</li>
          ))}
        </ul>
      ) : null}
    </>
  );
}

export function ConfigPage() {
  useTitle('Config');
  const loaded = useLoad(() => api<{ config: unknown }>('GET', '/api/config'));
  const [patch, setPatch] = useState('');
  const [result, setResult] = useState<JSX.Element | null>(null);
  const writable = canWrite();

  const failed = (text: string) =>
    setResult(
      <p class="error" role="alert">
        {text}
      </p>,
    );
  const run = (path: string, applied: boolean) => async () => {
    let p: unknown;
    try {
      p = JSON.parse(patch || '{}');
      if (!p || typeof p !== 'object' || Array.isArray(p)) throw new Error('the patch must be a JSON object');
    } catch (err) {
      failed(`Not valid JSON: ${messageOf(err)}`);
      return;
    }
    try {
      setResult(<Result r={await api<Checked>('POST', path, { patch: p })} applied={applied} />);
      if (applied) await loaded.reload();
    } catch (err) {
      failed(messageOf(err));
    }
  };
  const restart = async () => {
    if (!confirm('Restart the server? Devices reconnect after a moment.')) return;
    await api('POST', '/api/restart');
    toast('Restarting…');
  };

  return (
    <Page loaded={loaded}>
      {({ config }) => (
        <section>
          <h1>Config</h1>
          <h2>Change</h2>
          <p class="muted">
            A JSON patch over the config file: only the keys to change. Validated completely before anything changes.
          </p>
          <Field label="Patch (JSON)">
            <textarea
              name="patch"
              rows={8}
              spellcheck={false}
              class="code"
              placeholder='{"server": {"api_rate_limit": 20}}'
              value={patch}
              onInput={(e) => setPatch(e.currentTarget.value)}
            />
          </Field>
          <div class="actions">
            <button type="button" onClick={run('/api/config/validate', false)}>
              Validate
            </button>
            {writable ? (
              <button type="button" onClick={run('/api/config/apply', true)}>
                Apply
              </button>
            ) : null}
            {writable ? (
              <button type="button" class="danger" onClick={() => restart().catch(toastError)}>
                Restart server
              </button>
            ) : null}
          </div>
          <div aria-live="polite" class="result">
            {result}
          </div>
          <h2>Effective config (secrets redacted)</h2>
          <pre class="code" tabindex={0} aria-label="Effective config">
            {JSON.stringify(config, null, 2)}
          </pre>
        </section>
      )}
    </Page>
  );
}
