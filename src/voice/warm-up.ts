import type { LinusConfig } from '../config/schema.js';
import type { Logger } from '../observability/log.js';
import type { ProviderRegistry } from '../providers/registry.js';
import type { Scope } from '../session/scope.js';
import { warmAudio, type AudioEngine } from './audio-engine.js';
import { downlinkOpus } from './downlink.js';

/** Bounds the warm-up: a thread that never answers must not hold the VAD lease for ever. */
const WARM_UP_LIMIT_MS = 60_000;

/**
 * Starts the audio threads with the selected VAD's model loaded (see warmAudio), in the background of a server
 * that already listens: the first devices' turns then find them ready.
 */
export async function warmUpAudio(deps: {
  audio: AudioEngine;
  providers: ProviderRegistry;
  config: LinusConfig;
  scope: Scope;
  log: Logger;
}): Promise<void> {
  const { audio, providers, config, scope, log } = deps;
  const vad = await providers.lease('vad');
  const { sample_rate: rate, frame_duration: frameMs } = config.xiaozhi.audio_params;
  let cancel = (): void => {};
  let error: string | undefined;
  try {
    error = await Promise.race([
      warmAudio(audio, { vad: vad?.provider.spec, rate, frameMs, opus: downlinkOpus(config) }),
      new Promise<string>((resolve) => {
        cancel = scope.timeout(WARM_UP_LIMIT_MS, () => resolve(`no answer within ${WARM_UP_LIMIT_MS / 1000} s`));
      }),
    ]);
  } finally {
    cancel();
    vad?.release();
  }
  // A shutdown during the warm-up closes the engine under it: that is no failure.
  if (error && !scope.closed) log.warn({ err: error }, 'audio warm-up failed; audio work starts on first use');
}
