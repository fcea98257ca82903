import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../config/load.js';
import { meetingConfig } from './config.js';

const cfg = (meeting: Record<string, unknown>) => validateConfig({ meeting }).config;

describe('meeting config', () => {
  it('has the fork code defaults', () => {
    const c = meetingConfig(cfg({}));
    assert.equal(c.transcript_push_interval_ms, 5000);
    assert.equal(c.disable_tts, false);
    assert.equal(c.disable_chat_on_snippet, true);
    assert.equal(c.prefer_device_vad, true);
    assert.equal(c.checkpoint_interval_min, 10);
    assert.equal(c.min_duration_ms, 5000);
    assert.equal(c.llm.max_tokens, 800);
    assert.equal(c.checkpoint_max_tokens, 400);
    assert.equal(c.summary_transcript_max_chars, 4000);
    assert.deepEqual(c.webhook, { url: '', secret: '', headers: {}, timeout_ms: 5000 });
    assert.deepEqual(c.broadcast, { enabled: false, mode: 'off', allowed_targets: [], include_origin: false });
  });

  it('clamps the push interval and the token budgets', () => {
    assert.equal(meetingConfig(cfg({ transcript_push_interval_ms: 100 })).transcript_push_interval_ms, 3000);
    assert.equal(meetingConfig(cfg({ transcript_push_interval_ms: 60_000 })).transcript_push_interval_ms, 15_000);
    assert.equal(meetingConfig(cfg({ llm: { max_tokens: 10 } })).llm.max_tokens, 256);
    assert.equal(meetingConfig(cfg({ checkpoint_max_tokens: 99_999 })).checkpoint_max_tokens, 4000);
  });

  it('an invalid key falls back to its own default, logged once per snapshot', () => {
    const logged: string[] = [];
    const log = { error: (m: string) => logged.push(m) } as unknown as Parameters<typeof meetingConfig>[1];
    const snapshot = cfg({
      disable_tts: 'yes',
      transcript_push_interval_ms: 4000,
      broadcast: { mode: 'everyone', enabled: true },
      webhook: { url: 'ftp://x' },
    });
    const c = meetingConfig(snapshot, log);
    assert.equal(c.disable_tts, false);
    assert.equal(c.transcript_push_interval_ms, 4000);
    assert.equal(c.broadcast.mode, 'off');
    assert.equal(c.broadcast.enabled, true);
    assert.equal(c.webhook.url, '');
    assert.equal(logged.length, 3);
    assert.ok(logged.some((l) => l.includes('meeting.broadcast.mode')));
    meetingConfig(snapshot, log);
    assert.equal(logged.length, 3, 'same snapshot: not logged again');
  });

  it('normalises broadcast targets like device ids', () => {
    assert.deepEqual(meetingConfig(cfg({ broadcast: { allowed_targets: [' "AA:BB" '] } })).broadcast.allowed_targets, [
      'aa:bb',
    ]);
  });
});
