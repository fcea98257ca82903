import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../config/load.js';
import type { LlmProvider, LlmRequest } from '../../providers/types.js';
import { codingConfig } from './config.js';
import { capList, computeInsight, detectSignals, heuristicInsight, historyText, type HistoryLine } from './insight.js';

const cfg = codingConfig(validateConfig({}).config);
const line = (text: string, extra: Partial<HistoryLine> = {}): HistoryLine => ({
  ts: 0,
  kind: 'log',
  level: 'info',
  text,
  phase: 'build',
  ...extra,
});

/** A provider double for the pure insight function (no session, no server); real LLM calls are tested end to end. */
const llm = (answer: string | Error): LlmProvider & { calls: LlmRequest[] } => {
  const calls: LlmRequest[] = [];
  return {
    name: 'stub',
    model: 'stub',
    calls,
    stream: () => {
      throw new Error('not used');
    },
    complete: async (req) => {
      calls.push(req);
      if (answer instanceof Error) throw answer;
      return answer;
    },
    dispose: async () => {},
  };
};

describe('coding config', () => {
  it('clamps the debounce to at least 300 ms and keeps the fork defaults', () => {
    assert.equal(cfg.insight_debounce_ms, 1200);
    assert.equal(codingConfig(validateConfig({ coding: { insight_debounce_ms: 10 } }).config).insight_debounce_ms, 300);
    assert.deepEqual(
      [cfg.insight_max_items, cfg.summary_max_items, cfg.per_message_max_len, cfg.history_max_lines],
      [5, 6, 512, 200],
    );
  });
});

describe('coding insights', () => {
  it('finds the fork signals in logs and failed steps', () => {
    const keys = detectSignals([
      line('FAIL src/a.test.ts'),
      line("Error: Cannot find module 'x'", { level: 'error' }),
      line('FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory'),
      line('connect ECONNREFUSED 127.0.0.1:5432'),
      line('src/x.ts(3,4): error TS2322'),
    ]).map((s) => s.key);
    assert.deepEqual(keys, ['tests', 'import', 'oom', 'network', 'build']);
  });

  it('heuristics always give something, and caps hold (5 / 4 / 6 / 6, 120 chars)', () => {
    const h = heuristicInsight([], '', false);
    assert.ok(h.insights.length > 0);
    assert.equal(
      capList(
        Array.from({ length: 9 }, (_, i) => `x${i}`),
        5,
      ).length,
      5,
    );
    assert.equal(capList(['a'.repeat(500)], 5)[0]!.length, 120);
    assert.deepEqual(capList([{ text: 'from object' }, 3, null, 'dup', 'dup'], 5), ['from object', 'dup']);
  });

  it('keeps the newest history within the character budget', () => {
    const text = historyText(
      Array.from({ length: 100 }, (_, i) => line(`line ${i}`)),
      200,
    );
    assert.ok(text.length <= 200);
    assert.match(text, /line 99$/);
  });

  it('uses the LLM answer, fills empty lists from signals, and falls back on failure or garbage', async () => {
    const signal = new AbortController().signal;
    const history = [line('3 failed, 10 passed', { level: 'error' })];
    const good = llm('```json\n{"insights":["i"],"risks":[],"actions":["a"],"nextSteps":["n"]}\n```');
    const r = await computeInsight({ history, phase: 'test', summary: false, cfg, llm: good, signal });
    assert.equal(r.source, 'llm');
    assert.deepEqual(r.insight.risks, ['Failing tests'], 'filled from the signals');
    assert.equal(good.calls[0]!.maxTokens, 512);
    for (const bad of [llm('no json here'), llm(new Error('HTTP 500')), llm('{"insights":[]}'), undefined]) {
      const f = await computeInsight({ history, phase: 'test', summary: true, cfg, llm: bad, signal });
      assert.equal(f.source, 'heuristic');
      assert.ok(f.insight.insights.length > 0);
    }
  });
});
