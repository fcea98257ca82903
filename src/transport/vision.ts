import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ConfigStore } from '../config/store.js';
import type { Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import { verifyDeviceToken } from '../protocol/auth-token.js';
import { bearerToken, resolveHandshakeIds } from '../protocol/ids.js';
import type { ProviderRegistry } from '../providers/registry.js';
import { ProviderError } from '../providers/types.js';
import { headerString, HttpError, readBody, sendJson, sendText } from './http-util.js';
import { parseMultipart } from './multipart.js';
import type { HttpRoutes } from './http-app.js';
import { budgetKey, refusedWhileBackingOff, type SecretThrottle } from './secret-throttle.js';
import { KeyedRateWindows } from '../rate.js';

/**
 * `/mcp/vision/explain` as the reference serves it (device-protocol.md §5.3): the device's camera tool posts
 * multipart `question` + `file` with `Authorization: Bearer <vision token from MCP initialize>`, `Device-Id` and
 * `Client-Id`; the answer is `{"success":true,"action":"RESPONSE","response":...}`. As in the reference, a bad
 * token is a 401 and every other failure a 200 with `{"success":false,"message":...}`: the firmware hands a 200
 * body to the LLM as the tool's result, so the user is told what went wrong.
 */
export const VISION_PATH = '/mcp/vision/explain';

const cors = {
  cors: { methods: 'GET, POST, OPTIONS', headers: 'authorization, client-id, content-type, device-id' },
};

/** Room for the question part and the multipart framing, above the image cap. */
const FORM_OVERHEAD_BYTES = 64 * 1024;

export interface VisionDeps {
  config: ConfigStore;
  throttle: SecretThrottle;
  providers: ProviderRegistry;
  metrics: Metrics;
  authKey: string;
  log: Logger;
}

/** What the image's first bytes say it is; undefined for anything else. */
export function sniffImageType(data: Buffer): string | undefined {
  if (data.length >= 3 && data[0] === 0xff && data[1] === 0xd8 && data[2] === 0xff) return 'image/jpeg';
  if (data.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'image/png';
  if (/^GIF8[79]a/.test(data.subarray(0, 6).toString('latin1'))) return 'image/gif';
  if (data.subarray(0, 4).toString('latin1') === 'RIFF' && data.subarray(8, 12).toString('latin1') === 'WEBP')
    return 'image/webp';
  return undefined;
}

class VisionRefusal extends Error {}

export function registerVisionRoutes(router: HttpRoutes, deps: VisionDeps): void {
  const perDevice = new KeyedRateWindows(60_000);
  router.add(
    'GET',
    VISION_PATH,
    (_req, res) => {
      const model = deps.config.current.selected_module.VLLM;
      sendText(
        res,
        200,
        model
          ? `MCP vision interface is running; vision model: ${model}\n`
          : 'MCP vision interface is running, but no vision model is configured (set selected_module.VLLM)\n',
      );
    },
    cors,
  );
  router.add('POST', VISION_PATH, (req, res) => explain(deps, perDevice, req, res), cors);
}

async function explain(
  deps: VisionDeps,
  perDevice: KeyedRateWindows,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const config = deps.config.current;
  const ids = resolveHandshakeIds(req.url, req.headers, () => '');
  const address = budgetKey(req.socket.remoteAddress);
  if (refusedWhileBackingOff(deps.throttle, address, req, res)) return;
  // The token handed out in MCP initialize: signed for this device and client id (always required, auth on or
  // off, as in the reference: the model behind this endpoint is usually a paid one).
  const check = verifyDeviceToken(
    deps.authKey,
    bearerToken(headerString(req, 'authorization')),
    ids.clientId,
    ids.deviceId,
    config.server.auth.expire_seconds,
    Date.now() / 1000,
  );
  if (!check.ok) {
    // A token is signed: a wrong one is a guess and counts against the address's budget (an expired one is not).
    if (check.reason !== 'missing' && check.reason !== 'expired') deps.throttle.failed(address, 'device');
    req.resume();
    sendJson(res, 401, { success: false, message: `invalid or expired token (${check.reason.replace('_', ' ')})` });
    return;
  }
  const fail = (message: string, headers: Record<string, string> = {}): void =>
    sendJson(res, 200, { success: false, message }, headers);
  const limits = config.server.vision;
  if (limits.requests_per_minute > 0 && !perDevice.admit(ids.deviceId, limits.requests_per_minute)) {
    req.resume();
    const seconds = Math.ceil(perDevice.retryAfterMs(ids.deviceId) / 1000);
    fail(`too many questions about photos: at most ${limits.requests_per_minute} a minute; retry in ${seconds} s`, {
      'retry-after': String(seconds),
    });
    return;
  }
  try {
    const body = await readBody(req, limits.max_image_bytes + FORM_OVERHEAD_BYTES).catch((err: unknown) => {
      // Past the cap nothing more is kept: said the reference's way (a 200 the device hands to its LLM), with
      // the 413's Connection: close, so that the unread rest of the upload goes with the connection.
      if (err instanceof HttpError && err.status === 413) {
        fail(`the image is over the ${limits.max_image_bytes}-byte limit`, err.headers);
        return undefined;
      }
      throw err;
    });
    if (!body) return;
    const parts = parseMultipart(body, headerString(req, 'content-type') ?? '');
    if (!parts) throw new VisionRefusal('expected multipart/form-data with a question part and a file part');
    // The firmware sends the question first and the image second; names are used when present.
    const questionPart = parts.find((p) => p.name === 'question') ?? parts.find((p) => p.filename === undefined);
    const filePart = parts.find((p) => p.name === 'file') ?? parts.find((p) => p.filename !== undefined);
    const question = questionPart?.data.toString('utf8').trim();
    if (!question) throw new VisionRefusal('the question part is missing or empty');
    if (!filePart?.data.length) throw new VisionRefusal('the file part (the image) is missing or empty');
    if (filePart.data.length > limits.max_image_bytes)
      throw new VisionRefusal(`the image is over the ${limits.max_image_bytes}-byte limit`);
    const type = sniffImageType(filePart.data);
    if (!type || !(limits.allowed_types as string[]).includes(type))
      throw new VisionRefusal(`unsupported image type: send one of ${limits.allowed_types.join(', ')}`);
    const lease = await deps.providers.lease('vllm');
    if (!lease)
      throw new VisionRefusal(
        'no vision model is available: set selected_module.VLLM to an alias defined under VLLM (type openai)',
      );
    // A device that hangs up no longer needs the answer: the model call is cancelled with it.
    const gone = new AbortController();
    const onClose = (): void => gone.abort();
    res.on('close', onClose);
    try {
      const answer = await lease.provider.explain({
        question,
        image: filePart.data,
        mimeType: type,
        signal: gone.signal,
        timeoutMs: limits.timeout_ms,
      });
      sendJson(res, 200, { success: true, action: 'RESPONSE', response: answer });
    } finally {
      res.off('close', onClose);
      lease.release();
    }
  } catch (err) {
    if (res.headersSent || res.destroyed) return;
    if (err instanceof VisionRefusal) {
      fail(err.message);
    } else if (err instanceof ProviderError) {
      deps.metrics.providerErrors.labels('vllm', err.kind).inc();
      deps.log.warn({ err: err.message, device: ids.deviceId }, 'vision model failed');
      fail(
        err.kind === 'timeout' ? 'the vision model did not answer in time' : `the vision model failed: ${err.message}`,
      );
    } else {
      throw err;
    }
  }
}
