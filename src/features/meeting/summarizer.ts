import { errorMessage } from '../../errors.js';
import type { Logger } from '../../observability/log.js';
import type { ProviderRegistry } from '../../providers/registry.js';
import type { MeetingConfig } from './config.js';
import type { MeetingRecord, MeetingStore, Segment, SummaryMeta } from './store.js';
import {
  buildSummaryPrompt,
  emptySummary,
  fallbackSummary,
  meetingDurationMs,
  normalizeSummary,
  parseSummaryText,
  summaryDigest,
  summaryLang,
  type MeetingSummary,
  type SummaryContext,
} from './summary.js';

/** Segments read for one summary at most (the prompt keeps the tail within `summary_transcript_max_chars`). */
const MAX_SEGMENTS_READ = 5000;

export interface SummaryRequest {
  meeting: MeetingRecord;
  /** Checkpoint: only the segments after the last checkpoint, `checkpoint_max_tokens`, nothing cleared. */
  checkpoint: boolean;
  /** End of the meeting for the duration rule (finalize time; now for checkpoints). */
  endedAt: number;
  signal: AbortSignal;
  /** Told just before the LLM call starts (progress `llm_start`). */
  onLlmStart?: (maxTokens: number) => void;
}

export interface SummaryResult {
  summary: MeetingSummary;
  meta: SummaryMeta;
  /** Highest segment seq the summary covers. */
  uptoSeq: number;
}

const line = (s: Segment) => (s.speakerId ? `[${s.speakerId}] ${s.text}` : s.text);

/**
 * Makes one summary through the `meeting` LLM purpose (`llm_by_mode.meeting` → default → selected LLM): a
 * JSON-only prompt, `complete()` with the configured deadline and the caller's signal, tolerant parsing, and the
 * fixed fallback when the LLM is not configured, fails or answers nothing usable. An abort of `signal` (shutdown)
 * is thrown, never turned into a fallback, so the meeting stays `finalizing` and is redone on the next start.
 */
export class Summarizer {
  constructor(
    private readonly store: MeetingStore,
    private readonly providers: ProviderRegistry,
    private readonly config: () => MeetingConfig,
    private readonly log: Logger,
  ) {}

  async summarize(req: SummaryRequest): Promise<SummaryResult> {
    const cfg = this.config();
    const { meeting, checkpoint } = req;
    const checkpoints = await this.store.checkpoints(meeting.id);
    const afterSeq = checkpoint ? (checkpoints.at(-1)?.uptoSeq ?? 0) : 0;
    const segments = await this.store.segmentsTail(meeting.id, afterSeq, MAX_SEGMENTS_READ);
    const lines = segments.map(line);
    const total = checkpoint ? segments.length : Math.max(segments.length, meeting.segmentsCount);
    const durationMs = meetingDurationMs(meeting.startedAt, meeting.lastSnippetAt, req.endedAt, cfg.min_duration_ms);
    const ctx: SummaryContext = {
      durationMs,
      sourceSegments: total,
      checkpoint,
      lang: summaryLang(cfg, lines.join('\n')),
    };
    const meta = (
      source: SummaryMeta['source'],
      summary: MeetingSummary,
      llmElapsedMs = 0,
      model?: string,
    ): SummaryMeta => ({
      source,
      llmElapsedMs,
      ...(model ? { model } : {}),
      durationMs,
      segmentsCount: total,
      checkpointCount: checkpoints.length,
      emptyBullets: summary.bullets.length === 0,
      industry: cfg.industry,
      scenario: cfg.scenario,
    });
    const uptoSeq = segments.at(-1)?.seq ?? afterSeq;
    if (segments.length === 0) {
      const summary = emptySummary(ctx);
      return { summary, meta: meta('empty', summary), uptoSeq };
    }

    const maxTokens = checkpoint ? cfg.checkpoint_max_tokens : cfg.llm.max_tokens;
    const route = this.providers.llmRoute('meeting');
    const lease = route.alias ? await this.providers.lease('llm', route.alias, route.overrides) : undefined;
    req.onLlmStart?.(maxTokens);
    if (!lease) {
      this.log.warn(
        { meeting: meeting.id },
        'no LLM for meeting summaries: set llm_by_mode.meeting or selected_module.LLM; using the fallback summary',
      );
      const summary = fallbackSummary(ctx);
      return { summary, meta: meta('fallback', summary), uptoSeq };
    }
    const started = performance.now();
    try {
      const messages = buildSummaryPrompt({
        lines,
        earlier: checkpoint ? [] : checkpoints.map((c) => summaryDigest(c.summary)),
        checkpoint,
        cfg,
      });
      const raw = await lease.provider.complete({
        messages,
        maxTokens,
        temperature: 0.2,
        signal: req.signal,
        timeoutMs: cfg.llm.timeout_ms,
      });
      const elapsed = Math.round(performance.now() - started);
      const parsed = parseSummaryText(raw);
      this.log.info(
        { meeting: meeting.id, rawLength: raw.length, via: parsed?.via ?? 'none', elapsedMs: elapsed },
        'meeting summary answered',
      );
      if (!parsed) {
        const summary = fallbackSummary(ctx);
        return { summary, meta: meta('fallback', summary, elapsed, lease.provider.model), uptoSeq };
      }
      const summary = normalizeSummary(parsed.fields, ctx);
      return {
        summary,
        meta: meta(parsed.via === 'heuristic' ? 'heuristic' : 'llm', summary, elapsed, lease.provider.model),
        uptoSeq,
      };
    } catch (err) {
      if (req.signal.aborted) throw err;
      this.log.warn(
        { meeting: meeting.id, err: errorMessage(err) },
        'meeting summary LLM failed; using the fallback summary',
      );
      const summary = fallbackSummary(ctx);
      return {
        summary,
        meta: meta('fallback', summary, Math.round(performance.now() - started), lease.provider.model),
        uptoSeq,
      };
    } finally {
      lease.release();
    }
  }
}
