import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { basename, delimiter, join, resolve } from 'node:path';
import { ProviderError } from './types.js';

/**
 * The command-line tools the offline providers spawn (pocketsphinx, flite, espeak-ng), and how to tell an
 * operator which Debian package brings a missing one.
 */

const PACKAGES: Record<string, string> = {
  pocketsphinx_continuous: 'pocketsphinx pocketsphinx-en-us',
  flite: 'flite',
  'espeak-ng': 'espeak-ng',
};

/**
 * Absolute path of an executable file: `name` itself when it contains a `/`, else the first match on PATH.
 * Plain file checks, no shell, so nothing in `name` is ever interpreted.
 */
export async function findExecutable(name: string, searchPath = process.env.PATH ?? ''): Promise<string | undefined> {
  if (!name) return undefined;
  // Empty PATH entries mean "current directory" to a shell; a server must not run whatever lies in its cwd.
  const candidates = name.includes('/')
    ? [name]
    : searchPath
        .split(delimiter)
        .filter((dir) => dir !== '')
        .map((dir) => join(dir, name));
  for (const candidate of candidates) {
    try {
      await access(candidate, constants.X_OK);
      if ((await stat(candidate)).isFile()) return resolve(candidate);
    } catch {
      // Not there or not executable: try the next directory.
    }
  }
  return undefined;
}

/** Debian package(s) that install `binary`; for an unknown tool, its own name (often the package name). */
export function missingPackageHint(binary: string): string {
  const name = basename(binary);
  return PACKAGES[name] ?? name;
}

/** The config error a provider raises when its tool is missing, with the command that fixes it. */
export function missingToolError(provider: string, binary: string): ProviderError {
  return new ProviderError(
    provider,
    'config',
    `${binary} not found; install it with: apt-get install ${missingPackageHint(binary)}`,
  );
}

/** `findExecutable` that throws `missingToolError` instead of returning undefined. */
export async function requireExecutable(provider: string, binary: string): Promise<string> {
  const found = await findExecutable(binary);
  if (!found) throw missingToolError(provider, binary);
  return found;
}

/** Keeps the last `max` characters of a child's stderr, for error messages. */
export function stderrTail(max = 2000): { push(chunk: Buffer | string): void; text(): string } {
  let tail = '';
  return {
    push(chunk) {
      tail = (tail + String(chunk)).slice(-max);
    },
    text: () => tail.trim(),
  };
}
