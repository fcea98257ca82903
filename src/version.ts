import { readFileSync } from 'node:fs';

/** The package version; src/ and dist/ both sit one level below package.json. */
export const VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
      .version;
  } catch {
    // Only a broken install lacks package.json; the version shows 0.0.0 rather than stopping the server.
    return '0.0.0';
  }
})();
