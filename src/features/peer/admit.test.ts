import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../config/load.js';
import { PeerAcl } from './acl.js';
import { admit, rateLimitReply, type AdmitContext } from './admit.js';
import { peerConfig } from './config.js';

const directory = { roleOf: () => undefined, groupOf: (id: string) => (id.startsWith('g1-') ? 'g1' : 'default') };

function context(peer: Record<string, unknown> = {}, online = ['a', 'b', 'c']) {
  const config = peerConfig(validateConfig({ peer }).config);
  let onlineAsked = 0;
  const ctx: AdmitContext = {
    from: 'a',
    config,
    acl: new PeerAcl(config, directory),
    online: () => (onlineAsked++, online),
  };
  return { ctx, onlineAsked: () => onlineAsked };
}

const msg = (to: unknown, extra: Record<string, unknown> = {}) => ({
  type: 'peer',
  to,
  payload: { text: 'hello' },
  ...extra,
});

describe('peer admit', () => {
  it('admits a valid message to its targets, in order, without asking who is online', () => {
    const { ctx, onlineAsked } = context();
    const r = admit(msg(['C', 'b', 'c']), ctx);
    assert.ok(r.ok);
    assert.deepEqual(r.recipients, ['c', 'b']);
    assert.deepEqual(r.failed, []);
    assert.equal(r.needsLlm, false);
    assert.equal(r.request.category, 'message');
    assert.equal(onlineAsked(), 0);
  });

  it('a malformed message is refused as malformed, echoing the client id', () => {
    const { ctx } = context();
    const r = admit(msg('b', { id: 'req-1' }), ctx);
    assert.equal(r.ok, false);
    assert.ok(!r.ok && r.malformed);
    assert.equal(r.reply.code, 'INVALID_REQUEST');
    assert.equal(r.reply.requestId, 'req-1');
    assert.equal(r.reply.status, 'error');
  });

  it('peer.enabled off refuses every message, after parsing (the client id is echoed)', () => {
    const { ctx } = context({ enabled: false });
    const r = admit(msg(['b'], { id: 7 }), ctx);
    assert.ok(!r.ok && !r.malformed);
    assert.deepEqual(r.reply, {
      type: 'peer',
      status: 'error',
      code: 'UNAUTHORIZED',
      message: 'peer messaging is disabled on this server (peer.enabled)',
      requestId: 7,
    });
  });

  it('more explicit targets than peer.max_targets is refused with the limit', () => {
    const { ctx } = context({ max_targets: 2 });
    const r = admit(msg(['b', 'c', 'd']), ctx);
    assert.ok(!r.ok);
    assert.equal(r.reply.code, 'INVALID_REQUEST');
    assert.equal(r.reply.maxTargets, 2);
    assert.match(String(r.reply.message), /too many targets: 3 > peer.max_targets \(2\)/);
  });

  it('the ACL splits targets into recipients and failed; with none permitted the message is refused', () => {
    const { ctx } = context({ allow_all: false, allowlist: { a: ['b', 'group:g1'] } });
    const r = admit(msg(['b', 'c', 'g1-x']), ctx);
    assert.ok(r.ok);
    assert.deepEqual(r.recipients, ['b', 'g1-x']);
    assert.deepEqual(r.failed, [{ to: 'c', code: 'UNAUTHORIZED', message: 'not permitted by peer ACL' }]);
    const none = admit(msg(['c', 'd']), ctx);
    assert.ok(!none.ok && !none.malformed);
    assert.equal(none.reply.message, 'no permitted targets');
    assert.deepEqual(
      (none.reply.failed as { to: string }[]).map((f) => f.to),
      ['c', 'd'],
    );
  });

  it('broadcast goes to every online device but the sender, explicit targets once', () => {
    const { ctx, onlineAsked } = context({}, ['a', 'b', 'c']);
    const r = admit(msg(['broadcast', 'c', 'z']), ctx);
    assert.ok(r.ok);
    assert.equal(r.request.broadcast, true);
    assert.deepEqual(r.recipients, ['b', 'c', 'z']);
    assert.equal(onlineAsked(), 1);
  });

  it('a refused broadcast says why; explicit targets alongside it are still admitted', () => {
    const off = context({ allow_broadcast: false });
    const r = admit(msg(['broadcast', 'b']), off.ctx);
    assert.ok(r.ok);
    assert.deepEqual(r.recipients, ['b']);
    assert.deepEqual(r.failed, [
      { to: 'broadcast', code: 'UNAUTHORIZED', message: 'broadcast is disabled (peer.allow_broadcast)' },
    ]);
    assert.equal(off.onlineAsked(), 0, 'nobody is looked up for a refused broadcast');
    const noGrant = context({ allow_all: false, allowlist: { a: ['b'] } });
    const only = admit(msg(['broadcast']), noGrant.ctx);
    assert.ok(!only.ok);
    assert.deepEqual(only.reply.failed, [
      { to: 'broadcast', code: 'UNAUTHORIZED', message: 'no broadcast grant for this device' },
    ]);
  });

  it('needsLlm only with peer.llm_structuring, a text, and no structured form from the sender', () => {
    const { ctx } = context({ llm_structuring: true });
    const needs = (m: Record<string, unknown>) => {
      const r = admit(m, ctx);
      assert.ok(r.ok);
      return r.needsLlm;
    };
    assert.equal(needs(msg(['b'])), true);
    assert.equal(needs(msg(['b'], { payload: { text: '   ' } })), false);
    assert.equal(needs(msg(['b'], { payload: { data: 1 } })), false);
    assert.equal(needs(msg(['b'], { payload: { text: 'x', normalized: { title: 'T' } } })), false);
  });

  it('is pure: the same message and context give the same answer, and nothing is counted', () => {
    const { ctx } = context({ rate_limit_per_second: 1 });
    const first = admit(msg(['b'], { id: 'x' }), ctx);
    for (let i = 0; i < 5; i++) assert.deepEqual(admit(msg(['b'], { id: 'x' }), ctx), first);
  });

  it('rateLimitReply names the limit that was reached and when to retry', () => {
    const { ctx } = context();
    const uni = admit(msg(['b'], { id: 'r' }), ctx);
    const bc = admit(msg(['broadcast']), ctx);
    assert.ok(uni.ok && bc.ok);
    assert.deepEqual(rateLimitReply(ctx.config, uni.request, 250), {
      type: 'peer',
      status: 'error',
      code: 'RATE_LIMITED',
      message: 'rate limit of 5 messages per second (peer.rate_limit_per_second) reached; retry in 250 ms',
      requestId: 'r',
      retryAfterMs: 250,
    });
    assert.match(String(rateLimitReply(ctx.config, bc.request, 9).message), /6 broadcasts per minute/);
  });
});
