/**
 * `linus bench`: runs one benchmark profile (bench/profiles/<name>.ts) and reports its figures against their targets.
 *   node --import tsx bench/run.ts <profile> [profile flags] [--json] [--report FILE.html] [--smoke] [--source] [--timeout N]
 * Progress goes to stderr (one line rewritten in place on a terminal), the summary table (or, with --json, the
 * ProfileResult as JSON) to stdout. SIGINT/SIGTERM and the hard timeout abort the profile through ctx.signal, so
 * that it reports what it measured; a second signal, or no answer within 30 s, stops every child at once.
 * Exit code: 0 when the profile ran (targets missed or not), 1 when its correctness failed (ok: false) or it
 * could not run, 2 for a usage error, 130 when interrupted.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { installExitHandlers } from './lib/children.js';
import { FlagError } from './lib/flags.js';
import type { FlagValues, Profile, ProfileContext, ProfileOptions, ProfileResult } from './lib/profile.js';
import { renderReport } from './lib/report.js';
import { formatSummary } from './lib/table.js';
import { PROFILE_NAMES, PROFILES } from './profiles/index.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

const GLOBAL_OPTIONS = {
  json: { type: 'boolean', default: false },
  report: { type: 'string' },
  smoke: { type: 'boolean', default: false },
  source: { type: 'boolean', default: false },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies ProfileOptions;

const GLOBAL_HELP = `  --json              print the result as JSON on stdout (progress stays on stderr)
  --report FILE.html  write a self-contained HTML report (figures, charts over time, latency histograms)
  --smoke             small, fast, correctness-only run (what the tests run)
  --source            run the server from src/ through tsx instead of building dist/
  --timeout N         hard limit for the run in seconds (the profile's own default otherwise)
  --help              this help`;

const out = (s: string): void => void process.stdout.write(`${s}\n`);
const err = (s: string): void => void process.stderr.write(`${s}\n`);

async function generalUsage(): Promise<string> {
  const lines = ['usage: linus bench <profile> [flags]   (or: npm run bench -- <profile> [flags])', '', 'profiles:'];
  for (const name of PROFILE_NAMES) {
    let summary: string;
    try {
      summary = (await PROFILES[name]!()).summary;
    } catch (e) {
      summary = `(could not load: ${(e as Error).message})`;
    }
    lines.push(`  ${name.padEnd(9)} ${summary}`);
  }
  lines.push(
    '',
    'flags of every profile:',
    GLOBAL_HELP,
    '',
    'linus bench <profile> --help lists the flags of a profile.',
  );
  return lines.join('\n');
}

function profileUsage(p: Profile): string {
  const lines = [
    `usage: linus bench ${p.name} [flags]`,
    `  ${p.summary}`,
    '',
    `flags of ${p.name} (default; smoke default):`,
  ];
  for (const [name, o] of Object.entries(p.options)) {
    const def = o.default === undefined ? '' : String(o.default);
    const smoke = p.smokeDefaults[name];
    const value = o.type === 'boolean' ? '' : ' V';
    lines.push(
      `  --${name}${value}`.padEnd(24) +
        ` ${p.help?.[name] ?? ''} (${def || '-'}${smoke !== undefined ? `; smoke ${smoke}` : ''})`,
    );
  }
  lines.push('', 'flags of every profile:', GLOBAL_HELP);
  return lines.join('\n');
}

/** The profile's options with the smoke defaults in place of the defaults when --smoke is given. */
function optionsFor(p: Profile, smoke: boolean): ProfileOptions {
  const opts: ProfileOptions = {};
  for (const [name, o] of Object.entries(p.options)) {
    if (name in GLOBAL_OPTIONS) throw new Error(`profile ${p.name} declares --${name}, a flag of the runner`);
    const smokeValue = smoke ? p.smokeDefaults[name] : undefined;
    opts[name] =
      smokeValue === undefined
        ? o
        : o.type === 'boolean'
          ? { ...o, default: smokeValue === 'true' }
          : { ...o, default: smokeValue };
  }
  return opts;
}

const quote = (a: string): string => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);

/** The progress line: rewritten in place on a terminal; elsewhere a plain line at most every 5 s. */
function progressWriter(stream: NodeJS.WriteStream) {
  const tty = !!stream.isTTY;
  let current = '';
  let lastPlainAt = 0;
  let lastPlain = '';
  const clear = (): void => void (tty && current && stream.write('\r\x1b[2K'));
  const draw = (): void =>
    void (tty && current && stream.write(`\r\x1b[2K${current.slice(0, Math.max(20, (stream.columns || 100) - 1))}`));
  return {
    progress(line: string): void {
      current = line;
      if (tty) return draw();
      if (line !== lastPlain && Date.now() - lastPlainAt >= 5000) {
        stream.write(`… ${line}\n`);
        lastPlainAt = Date.now();
        lastPlain = line;
      }
    },
    log(line: string): void {
      clear();
      stream.write(`bench: ${line}\n`);
      draw();
    },
    done(): void {
      clear();
      current = '';
    },
  };
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    (name ? out : err)(await generalUsage());
    return name ? 0 : 2;
  }
  const load = PROFILES[name];
  if (!load) {
    err(`bench: unknown profile "${name}"; profiles: ${PROFILE_NAMES.join(', ')}`);
    return 2;
  }
  const profile = await load();
  const smoke = rest.includes('--smoke');
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: rest,
      options: { ...optionsFor(profile, smoke), ...GLOBAL_OPTIONS },
      strict: true,
      allowPositionals: false,
    }).values as typeof values;
  } catch (e) {
    err(`bench: ${(e as Error).message}\n\n${profileUsage(profile)}`);
    return 2;
  }
  if (values.help) {
    out(profileUsage(profile));
    return 0;
  }
  const flags: FlagValues = Object.fromEntries(Object.entries(values).filter(([k]) => !(k in GLOBAL_OPTIONS)));
  const timeoutSec =
    values.timeout !== undefined
      ? Number(values.timeout)
      : (profile.timeoutSec?.(flags, smoke) ?? (smoke ? 300 : 3600));
  if (!(timeoutSec > 0)) {
    err(`bench: --timeout must be a positive number of seconds, got "${String(values.timeout)}"`);
    return 2;
  }

  const abort = new AbortController();
  const finish = installExitHandlers(timeoutSec, undefined, { abort, graceMs: 30_000 });
  const writer = progressWriter(process.stderr);
  const command = ['node', '--import', 'tsx', 'bench/run.ts', ...argv].map(quote).join(' ');
  const ctx: ProfileContext = {
    root: ROOT,
    flags,
    smoke,
    serverFromSource: !!values.source,
    progress: writer.progress,
    log: writer.log,
    signal: abort.signal,
  };
  const startedAt = new Date();
  let result: ProfileResult;
  try {
    result = await profile.run(ctx);
  } catch (e) {
    writer.done();
    if (e instanceof FlagError) {
      err(`bench: ${e.message}\n\n${profileUsage(profile)}`);
      return finish(2);
    }
    const msg = e instanceof Error ? (e.stack ?? e.message) : String(e);
    result = {
      profile: name,
      command: '',
      startedAt: startedAt.toISOString(),
      durationSec: (Date.now() - startedAt.getTime()) / 1000,
      figures: [],
      ok: false,
      failures: [`the profile failed: ${msg}`],
    };
  }
  writer.done();
  result.command = command;
  const why = abort.signal.aborted
    ? String((abort.signal.reason as Error | undefined)?.message ?? 'aborted')
    : undefined;
  if (why) {
    result.notes = [...(result.notes ?? []), `interrupted: ${why}; the figures cover what ran before it`];
    if (why.startsWith('--timeout')) {
      result.ok = false;
      result.failures = [...(result.failures ?? []), `stopped by the hard timeout (${timeoutSec} s)`];
    }
  }
  if (values.json) {
    out(JSON.stringify(result, null, 2));
    err(formatSummary(result));
  } else out(formatSummary(result));
  if (typeof values.report === 'string') {
    writeFileSync(values.report, renderReport(result));
    err(`bench: report written to ${values.report}`);
  }
  return finish(why && !why.startsWith('--timeout') ? 130 : result.ok ? 0 : 1);
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    err(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  },
);
