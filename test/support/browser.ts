import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's Chromium (`.ci/run` installs the `chromium` package). */
export const CHROMIUM = '/usr/bin/chromium';

/** Where browser tests leave their screenshots (not committed). */
export const SCREENSHOTS = join(process.cwd(), '.test-output', 'console-screenshots');

/** Headless Chromium with a fresh profile and no background traffic (nothing may reach the internet). */
export function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...extraArgs,
    ],
  });
}

/** Everything the page reported as an error: console errors and uncaught exceptions. */
export function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`${m.text()} @ ${m.location().url}`);
  });
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  return errors;
}

/** Screenshots of the page at desktop (1280 px) and phone (390 px) widths. */
export async function screenshots(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: 900 });
    await page.screenshot({ path: join(SCREENSHOTS, `${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

/**
 * The page's visible form controls and buttons that have no accessible name (no label, aria-label or text):
 * each is described by its tag and name. Run in the page as a string (the tests' types have no DOM).
 */
export function unnamedControls(page: Page): Promise<string[]> {
  return page.evaluate(`[...document.querySelectorAll('input, select, textarea, button')]
    .filter((el) => el.type !== 'hidden' && el.getClientRects().length > 0)
    .filter((el) => !(el.labels?.length || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby') ||
      (el.tagName === 'BUTTON' && el.textContent.trim())))
    .map((el) => el.tagName.toLowerCase() + (el.name ? '[name=' + el.name + ']' : ''))`);
}

/** What has the keyboard focus: its id, else its name, else its text. */
export function focused(page: Page): Promise<string> {
  return page.evaluate(`(() => {
    const el = document.activeElement;
    return el ? el.id || el.getAttribute('name') || el.textContent.trim() : '';
  })()`);
}
