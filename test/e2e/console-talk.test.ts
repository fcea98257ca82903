import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { writeWav } from '../../src/voice/wav.js';
import { buildConsoleIfStale } from '../../scripts/console-build.mjs';
import { collectErrors, launchChromium, screenshots } from '../support/browser.js';
import { FakeOpenAi } from '../support/fake-openai.js';
import { startTestServer, tempDir, type TestServer } from '../support/server.js';
import { join16, silence, speechPcm } from '../support/speech.js';

/**
 * The Talk page: Chromium is a device over the real protocol. Its microphone is Chromium's fake capture device
 * playing a WAV of flite saying "what time is it"; WebCodecs encodes it to Opus, the server's offline pipeline
 * (Silero VAD, pocketsphinx, the fake LLM, flite) answers, and the page decodes and plays the answer.
 */
const ADMIN = 'talk-admin-secret';

describe('web console Talk page in Chromium', () => {
  let fake: FakeOpenAi;
  let server: TestServer;
  let browser: Browser;
  let page: Page;
  let errors: string[];
  const dir = tempDir('linus-talk-');

  before(async () => {
    // The server reads the built page at start.
    await buildConsoleIfStale({ quiet: true });
    fake = await FakeOpenAi.start();
    fake.chat = { chunks: ['It is twelve ', 'o clock.'], delayMs: 5 };
    server = await startTestServer({
      server: { admin_secret: ADMIN, api_rate_limit: 0 },
      selected_module: { VAD: 'SileroVAD', ASR: 'PocketSphinxASR', LLM: 'Fake', TTS: 'FliteTTS' },
      LLM: {
        Fake: { type: 'openai', base_url: fake.baseUrl, model_name: 'fake', api_key: 'test-key', timeout_ms: 5000 },
      },
    });
    const wav = join(dir, 'question.wav');
    writeFileSync(
      wav,
      writeWav({ sampleRate: 16000, samples: join16(silence(800), speechPcm('what time is it'), silence(2500)) }),
    );
    browser = await launchChromium([
      '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream',
      `--use-file-for-fake-audio-capture=${wav}`,
      '--autoplay-policy=no-user-gesture-required',
    ]);
    page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    page.setDefaultTimeout(20_000);
    errors = collectErrors(page);
    await page.goto(server.url('/console/#/talk'));
    await page.getByLabel('Secret').fill(ADMIN);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Talk' }).waitFor();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    await fake?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('completes a typed turn: the answer is shown, played, and its latency given', async () => {
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.getByText(/^Connected as console-/).waitFor();
    await page.getByLabel('Message').fill('hello there');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.locator('.talk-log li.you', { hasText: 'hello there' }).waitFor();
    await page.getByText('It is twelve o clock.').waitFor();
    await page.locator('.talk-log li', { hasText: 'stop' }).first().waitFor();
    await page.locator('[data-played]:not([data-played="0"])').waitFor();
    assert.match(await page.locator('[data-latency]').innerText(), /first answer audio \d+ ms/);
    assert.equal(fake.requests.filter((r) => r.path.includes('chat')).length > 0, true);
    await screenshots(page, 'talk');
    assert.deepEqual(errors, []);
  });

  it('completes a spoken turn from the microphone through Opus in the browser', async () => {
    await page.getByRole('button', { name: 'Start talking' }).click();
    await page.locator('.talk-log li.you', { hasText: 'what time is it' }).waitFor();
    await page.locator('.talk-log li.linus', { hasText: 'It is twelve o clock.' }).nth(1).waitFor();
    await page.getByRole('button', { name: 'Stop talking' }).click();
    await page.getByText(/^Server, last turn at .*total \d+ ms/).waitFor();
    await screenshots(page, 'talk-spoken');
    assert.deepEqual(errors, []);
  });
});
