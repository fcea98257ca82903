import type { PeerConfig } from './config.js';
import { parsePeerRequest, PeerCode, peerError, type PeerRequest } from './message.js';

/** A target the message will not reach, reported in the receipt. */
export interface FailedTarget {
  to: string;
  code: PeerCode;
  message: string;
}

export interface AdmitContext {
  /** The sending device. */
  from: string;
  config: PeerConfig;
  acl: { mayMessage(sender: string, target: string): boolean; mayBroadcast(sender: string): boolean };
  /** Devices online now: the recipients of a broadcast. */
  online(): Iterable<string>;
}

export type PeerReply = { type: 'peer' } & Record<string, unknown>;

export type Admission =
  | {
      ok: true;
      request: PeerRequest;
      /** Permitted targets, each once, in order: broadcast recipients first, then the explicit targets. */
      recipients: string[];
      /** Targets the ACL refused; the message still goes to the others. */
      failed: FailedTarget[];
      /** Its text is to be structured by the LLM (`peer.llm_structuring`, and the sender gave no `normalized`). */
      needsLlm: boolean;
    }
  | {
      ok: false;
      /** The error to send back to the sender. */
      reply: PeerReply;
      /** The message itself was malformed (counted as a bad frame), rather than refused. */
      malformed: boolean;
    };

/**
 * Whether an inbound peer message may be routed, and to whom: every check before anything costly (the LLM, the
 * queue), in the order the sender hears about them — parse, `peer.enabled`, `peer.max_targets`, the ACL.
 * Pure: it reads what it is given and changes nothing. The rate limit, which counts, comes after (`rateLimitReply`).
 */
export function admit(msg: Record<string, unknown>, { from, config, acl, online }: AdmitContext): Admission {
  const parsed = parsePeerRequest(msg);
  if (!parsed.ok) {
    const rid = parsed.requestId !== undefined ? { requestId: parsed.requestId } : {};
    return { ok: false, malformed: true, reply: peerError(parsed.code, parsed.message, rid) };
  }
  const request = parsed.request;
  const rid = requestIdOf(request);
  const refuse = (code: PeerCode, message: string, extra: Record<string, unknown> = {}): Admission => ({
    ok: false,
    malformed: false,
    reply: peerError(code, message, { ...rid, ...extra }),
  });
  if (!config.enabled) return refuse(PeerCode.Unauthorized, 'peer messaging is disabled on this server (peer.enabled)');
  if (request.targets.length > config.max_targets)
    return refuse(
      PeerCode.InvalidRequest,
      `too many targets: ${request.targets.length} > peer.max_targets (${config.max_targets})`,
      { maxTargets: config.max_targets },
    );
  const failed: FailedTarget[] = [];
  const recipients: string[] = [];
  if (request.broadcast) {
    if (!acl.mayBroadcast(from)) {
      failed.push({
        to: 'broadcast',
        code: PeerCode.Unauthorized,
        message: config.allow_broadcast
          ? 'no broadcast grant for this device'
          : 'broadcast is disabled (peer.allow_broadcast)',
      });
    } else {
      for (const id of online()) if (id !== from) recipients.push(id);
    }
  }
  for (const t of request.targets) {
    if (!acl.mayMessage(from, t))
      failed.push({ to: t, code: PeerCode.Unauthorized, message: 'not permitted by peer ACL' });
    else if (!recipients.includes(t)) recipients.push(t);
  }
  if (recipients.length === 0 && failed.length > 0)
    return refuse(PeerCode.Unauthorized, 'no permitted targets', { failed });
  const text = request.payload.text;
  const needsLlm = !request.normalized && config.llm_structuring && typeof text === 'string' && text.trim().length > 0;
  return { ok: true, request, recipients, failed, needsLlm };
}

/** The sender's refusal once its rate limit (unicast per second, broadcast per minute) is reached. */
export function rateLimitReply(config: PeerConfig, request: PeerRequest, retryAfterMs: number): PeerReply {
  const what = request.broadcast
    ? `${config.broadcast_per_minute} broadcasts per minute (peer.broadcast_per_minute)`
    : `${config.rate_limit_per_second} messages per second (peer.rate_limit_per_second)`;
  return peerError(PeerCode.RateLimited, `rate limit of ${what} reached; retry in ${retryAfterMs} ms`, {
    ...requestIdOf(request),
    retryAfterMs,
  });
}

/** `{requestId}` when the client gave its own id, for the replies to echo. */
export function requestIdOf(request: PeerRequest): { requestId?: string | number } {
  return request.requestId !== undefined ? { requestId: request.requestId } : {};
}
