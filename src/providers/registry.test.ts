import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { validateConfig } from '../config/load.js';
import { ConfigStore } from '../config/store.js';
import { ProviderRegistry, type ProviderFactories } from './registry.js';
import type { LlmProvider } from './types.js';

/** An LLM at the provider boundary that knows which config block built it and whether it was disposed. */
interface FakeLlm extends LlmProvider {
  readonly block: Record<string, unknown>;
  disposed: number;
}

const configWith = (llm: Record<string, Record<string, unknown>>, selected = 'main') =>
  validateConfig({ selected_module: { LLM: selected }, LLM: llm }).config;

function harness(llm: Record<string, Record<string, unknown>> = { main: { type: 'openai', model_name: 'a' } }) {
  const config = new ConfigStore(configWith(llm));
  const built: FakeLlm[] = [];
  const errors: string[] = [];
  const log = pino({ level: 'error' }, { write: (line: string) => void errors.push(JSON.parse(line).msg) });
  const unused = () => {
    throw new Error('not used in these tests');
  };
  const factories: ProviderFactories = {
    asr: unused,
    tts: unused,
    vad: unused,
    vllm: unused,
    llm: (alias, block) => {
      if (block.broken) throw new Error(`cannot build ${alias}`);
      const p: FakeLlm = {
        name: alias,
        model: String(block.model_name),
        block,
        disposed: 0,
        stream: unused,
        complete: async () => '',
        dispose: async () => void p.disposed++,
      };
      built.push(p);
      return p;
    },
  };
  const registry = new ProviderRegistry(config, factories, log);
  /** Disposal is asynchronous (it waits on the build); this lets it run. */
  const settle = () => new Promise((r) => setImmediate(r));
  return { config, registry, built, errors, settle };
}

describe('ProviderRegistry', () => {
  it('leases share one instance per alias and overrides; a different override is another instance', async () => {
    const { registry, built } = harness();
    const a = await registry.lease('llm');
    const b = await registry.lease('llm', 'main');
    const c = await registry.lease('llm', 'main', { temperature: 0.2 });
    assert.equal(a!.provider, b!.provider);
    assert.notEqual(c!.provider, a!.provider);
    assert.equal((c!.provider as FakeLlm).block.temperature, 0.2);
    assert.equal(built.length, 2);
    assert.deepEqual(registry.stats(), { live: 2, retiring: 0, disposed: 0 });
    await registry.close();
  });

  it('a reload retires a changed instance: leases in flight keep it, it is disposed after the last release', async () => {
    const { config, registry, built, settle } = harness();
    const first = await registry.lease('llm');
    const second = await registry.lease('llm');
    assert.equal(first!.stale, false);
    config.replace(configWith({ main: { type: 'openai', model_name: 'b' } }));
    assert.equal(first!.stale, true, 'the lease learns its instance was replaced');
    assert.deepEqual(registry.stats(), { live: 0, retiring: 1, disposed: 0 });
    const next = await registry.lease('llm');
    assert.equal((next!.provider as FakeLlm).model, 'b', 'a new lease gets the new block');
    assert.equal(first!.provider, second!.provider);
    first!.release();
    first!.release(); // idempotent: must not count as the second lease's release
    await settle();
    assert.equal(built[0]!.disposed, 0, 'still leased by the second turn');
    second!.release();
    await settle();
    assert.equal(built[0]!.disposed, 1, 'disposed once the last lease ended');
    assert.deepEqual(registry.stats(), { live: 1, retiring: 0, disposed: 1 });
    next!.release();
    await settle();
    assert.equal(built[1]!.disposed, 0, 'a live instance stays after its leases end');
    await registry.close();
    assert.equal(built[1]!.disposed, 1, 'close disposes the live ones');
  });

  it('a reload leaves unchanged blocks alone and disposes an unleased removed one at once', async () => {
    const { config, registry, built, settle } = harness({
      main: { type: 'openai', model_name: 'a' },
      other: { type: 'openai', model_name: 'o' },
    });
    (await registry.lease('llm', 'main'))!.release();
    (await registry.lease('llm', 'other'))!.release();
    config.replace(configWith({ main: { type: 'openai', model_name: 'a' } }));
    await settle();
    assert.deepEqual(
      built.map((p) => [p.name, p.disposed]),
      [
        ['main', 0],
        ['other', 1],
      ],
    );
    const again = await registry.lease('llm', 'main');
    assert.equal(again!.provider, built[0], 'the unchanged instance is reused');
    assert.equal(await registry.lease('llm', 'other'), undefined, 'a removed alias is no longer leased');
    await registry.close();
  });

  it("a device's private block is its own instance and a reload does not retire it", async () => {
    const { config, registry, built } = harness();
    const own = await registry.lease('llm', 'mine', {}, { type: 'openai', model_name: 'private' });
    assert.equal((own!.provider as FakeLlm).model, 'private');
    config.replace(configWith({ main: { type: 'openai', model_name: 'changed' } }));
    assert.equal(own!.stale, false);
    assert.deepEqual(registry.stats(), { live: 1, retiring: 0, disposed: 0 });
    own!.release();
    await registry.close();
    assert.equal(built[0]!.disposed, 1);
  });

  it('nothing to lease: unset, undefined or unbuildable aliases give undefined, logged once per config version', async () => {
    const { config, registry, errors } = harness({ main: { type: 'openai', broken: true } });
    assert.equal(await registry.lease('llm', 'missing'), undefined);
    assert.equal(await registry.lease('llm', 'missing'), undefined);
    assert.equal(errors.filter((e) => e.includes('LLM.missing is not defined')).length, 1);
    assert.equal(await registry.lease('llm'), undefined);
    assert.equal(await registry.lease('llm'), undefined);
    assert.deepEqual(
      errors.filter((e) => e.includes('LLM.main cannot be used')),
      ['LLM.main cannot be used: cannot build main'],
    );
    assert.equal(registry.size, 0, 'a failed build is not kept');
    config.replace(configWith({ main: { type: 'openai', broken: true, model_name: 'x' } }));
    assert.equal(await registry.lease('llm'), undefined);
    assert.equal(errors.filter((e) => e.includes('LLM.main cannot be used')).length, 2, 'logged again for a new block');
    config.replace(configWith({}, ''));
    assert.equal(await registry.lease('llm'), undefined, 'no LLM selected');
    await registry.close();
  });

  it('after close nothing is leased and reloads are no longer followed', async () => {
    const { config, registry, built } = harness();
    assert.equal(config.listenerCount('change'), 1);
    await registry.close();
    assert.equal(config.listenerCount('change'), 0);
    assert.equal(await registry.lease('llm'), undefined);
    assert.equal(built.length, 0);
  });
});
