import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { buildConsoleIfStale } from '../../scripts/console-build.mjs';
import { collectErrors, focused, launchChromium, screenshots, unnamedControls } from '../support/browser.js';
import { TestDevice, type Json } from '../support/device.js';
import { startTestServer, type TestServer } from '../support/server.js';

/**
 * The console in a real browser (Debian Chromium through playwright-core) against a real server and real
 * test devices: every page is used as a person would, by its labels, and photographed at 1280 and 390 px.
 */
const ADMIN = 'browser-admin-secret';
const READ = 'browser-read-token';

/** A workflow snapshot (not an acknowledgement) with a task that matches. */
const snapshotWith =
  (pred: (t: { id: string; title: string; status: string }) => boolean) =>
  (m: Json): boolean =>
    m.type === 'workflow' && m.event === 'update' && Array.isArray(m.tasks) && (m.tasks as never[]).some(pred);

describe('web console in Chromium', () => {
  let server: TestServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let errors: string[];
  const devices: TestDevice[] = [];

  const device = async (deviceId: string): Promise<TestDevice> => {
    const d = await TestDevice.connect({ url: server.url('/xiaozhi/v1/', 'ws'), deviceId });
    await d.hello();
    devices.push(d);
    return d;
  };

  const loginAsAdmin = async () => {
    await page.goto(server.url('/console/'));
    await page.getByLabel('Secret').fill(ADMIN);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByText('Admin', { exact: true }).waitFor();
  };

  before(async () => {
    // The server reads the built page at start.
    await buildConsoleIfStale({ quiet: true });
    server = await startTestServer({
      server: { admin_secret: ADMIN, meeting_api_token: READ, api_rate_limit: 0 },
      meeting: { transcript_push_interval_ms: 3000 },
    });
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.setDefaultTimeout(10_000);
    errors = collectErrors(page);
  });

  after(async () => {
    await Promise.all(devices.map((d) => d.close()));
    await browser?.close();
    await server?.stop();
  });

  it('logs in, refuses a wrong secret, logs out', async () => {
    await page.goto(server.url('/'));
    assert.match(page.url(), /\/console\/$/);
    await page.getByLabel('Secret').fill('not-the-secret');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByText('Wrong secret.').waitFor();
    await screenshots(page, 'login');
    // The refused log-in is the one expected error line (its 401 response).
    assert.deepEqual(
      errors.splice(0).filter((e) => !/status of 401/.test(e)),
      [],
    );

    await page.getByLabel('Secret').fill(ADMIN);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Devices' }).waitFor();
    const cookie = (await context.cookies()).find((c) => c.name === 'linus_console');
    assert.equal(cookie?.httpOnly, true);
    assert.equal(cookie?.sameSite, 'Strict');

    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByText('Logged out.').waitFor();
    await page.reload();
    await page.getByLabel('Secret').waitFor();
    assert.deepEqual(errors, []);
  });

  it('shows a device coming online live; tasks go both ways between the board and the device', async () => {
    await loginAsAdmin();
    await page.getByRole('heading', { name: 'Devices' }).waitFor();
    const dev = await device('aa:bb:cc:00:00:11');
    // No reload: the row arrives through the event stream.
    const row = page.locator('tr[data-device="aa:bb:cc:00:00:11"]');
    await row.getByText('online').waitFor();
    await screenshots(page, 'devices');
    await row.getByRole('link').click();
    await page.getByRole('heading', { name: 'Recent turns' }).waitFor();
    await page.locator('.events li', { hasText: 'connected' }).first().waitFor();
    await screenshots(page, 'device');

    await page.getByRole('link', { name: 'Tasks' }).click();
    await page.getByLabel('Group').fill('aa:bb:cc');
    await page.getByLabel('Group').dispatchEvent('change');
    await page.getByText('0 tasks in group aa:bb:cc.').waitFor();
    await page.getByLabel('New task').fill('Write the minutes');
    await page.getByRole('button', { name: 'Add task' }).click();
    const pushed = await dev.next(
      snapshotWith((t) => t.title === 'Write the minutes'),
      5000,
    );
    assert.equal((pushed.tasks as { status: string }[])[0]?.status, 'open');

    // A change made on the device appears on the board without a reload.
    dev.send({ type: 'workflow', event: 'update', tasks: [{ id: 'DEV-1', title: 'Book the room', priority: 0 }] });
    await page.locator('li[data-task="DEV-1"]').getByText('Book the room').waitFor();

    await page.getByRole('button', { name: 'Complete Book the room' }).click();
    await dev.next(
      snapshotWith((t) => t.id === 'DEV-1' && t.status === 'done'),
      5000,
    );
    await page.locator('li.task.done[data-task="DEV-1"]').waitFor();
    await screenshots(page, 'tasks');
    assert.deepEqual(errors, []);
  });

  it('grows an open meeting transcript live, then shows the summary and exports it', async () => {
    const dev = await device('aa:bb:cc:00:00:12');
    dev.send({ type: 'mode', state: 'start', mode: 'meeting' });
    await dev.next((m: Json) => m.type === 'mode' && m.state === 'start');
    dev.send({ type: 'meeting', phase: 'snippet', items: [{ text: 'We agreed to ship on Friday.' }] });
    await dev.next((m: Json) => m.type === 'meeting' && m.phase === 'snippet' && m.status !== undefined);

    await page.getByRole('link', { name: 'Meetings' }).click();
    await page.getByLabel('Status').selectOption('open');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByRole('cell', { name: 'aa:bb:cc:00:00:12' }).waitFor();
    await screenshots(page, 'meetings');
    await page.locator('a[href^="#/meetings/"]').first().click();
    await page.getByText('We agreed to ship on Friday.').waitFor();

    dev.send({ type: 'meeting', phase: 'snippet', items: [{ text: 'Anna will write the release notes.' }] });
    await page.getByText('Anna will write the release notes.').waitFor();

    dev.send({ type: 'meeting', phase: 'finalize' });
    await page.getByRole('heading', { name: 'Summary' }).waitFor();
    await page.getByText('Key points').waitFor();
    await page.getByText('Next steps').waitFor();
    const [json] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Export JSON' }).click(),
    ]);
    assert.match(json.suggestedFilename(), /^meeting-.+\.json$/);
    const [md] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Export Markdown' }).click(),
    ]);
    assert.match(md.suggestedFilename(), /\.md$/);
    await screenshots(page, 'meeting');
    assert.deepEqual(errors, []);
  });

  it('sends a peer message to a device and shows the offline queue', async () => {
    const dev = await device('aa:bb:cc:00:00:13');
    await page.getByRole('link', { name: 'Messages' }).click();
    await page.getByLabel('To').selectOption('device:aa:bb:cc:00:00:13');
    await page.getByLabel('Text').fill('Stand-up in five minutes');
    await page.getByRole('button', { name: 'Send' }).click();
    const msg = await dev.next((m: Json) => m.type === 'peer' && m.event === 'message', 5000);
    assert.equal((msg.payload as { text: string }).text, 'Stand-up in five minutes');
    assert.equal(msg.from, 'console');
    await page.getByText('Delivered to 1, queued for 0, failed 0.').waitFor();

    await page.getByLabel('To').selectOption('group:aa:bb:cc');
    await page.getByLabel('Text').fill('For the group');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByText(/Delivered to [1-9]\d*, queued for 0, failed 0\./).waitFor();
    await dev.next((m: Json) => m.type === 'peer' && (m.payload as { text: string }).text === 'For the group', 5000);

    // Offline now: the message waits in the queue, which the page shows.
    await dev.close();
    await page.getByLabel('To').selectOption('device:aa:bb:cc:00:00:13');
    await page.getByLabel('Text').fill('For everyone');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByText('Delivered to 0, queued for 1, failed 0.').waitFor();
    await page
      .getByRole('button', { name: /Show messages queued for/ })
      .first()
      .click();
    await page.getByRole('cell', { name: 'For everyone' }).first().waitFor();
    await screenshots(page, 'messages');
    assert.deepEqual(errors, []);
  });

  it('rejects a bad config change with its key path; health shows the metrics', async () => {
    await page.getByRole('link', { name: 'Config' }).click();
    await page.getByLabel('Patch (JSON)').fill('{"server": {"port": "eighty", "api_rate_limit": -1}}');
    await page.getByRole('button', { name: 'Validate' }).click();
    await page.getByText('The change was rejected:').waitFor();
    await page.locator('.errors code', { hasText: 'server.port' }).waitFor();
    await page.locator('.errors code', { hasText: 'server.api_rate_limit' }).waitFor();
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.locator('.errors code', { hasText: 'server.port' }).waitFor();
    assert.equal(server.ctx.config.current.server.api_rate_limit, 0);
    assert.doesNotMatch(await page.locator('pre.code').innerText(), new RegExp(ADMIN));
    await screenshots(page, 'config');

    await page.getByRole('link', { name: 'Health' }).click();
    await page.locator('[data-metric="connections"] .big').waitFor();
    assert.match(await page.locator('[data-metric="connections"] .big').innerText(), /^\d+$/);
    await screenshots(page, 'health');
    assert.deepEqual(errors, []);
  });

  it('works from the keyboard: log-in, the skip link, the pages; every control has a name', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByText('Logged out.').waitFor();
    // The log-in form takes the focus: type the secret, press Enter.
    assert.equal(await focused(page), 'secret');
    await page.keyboard.type(ADMIN);
    await page.keyboard.press('Enter');
    // Back on the page shown before the log-out, with the focus on it.
    await page.getByRole('heading', { name: 'Health' }).waitFor();
    assert.equal(await focused(page), 'main');

    // From the top: the skip link first; following it moves the focus, not the page.
    // (A reload: going to another hash only is a change of page inside the console.)
    await page.goto(server.url('/console/#/devices'));
    await page.reload();
    await page.getByRole('heading', { name: 'Devices' }).waitFor();
    await page.keyboard.press('Tab');
    assert.equal(await focused(page), 'Skip to content');
    await page.keyboard.press('Enter');
    assert.equal(await focused(page), 'main');
    assert.match(page.url(), /#\/devices$/);

    // The pages by Tab and Enter; the chosen one is marked current and gets the focus.
    await page.reload();
    await page.getByRole('heading', { name: 'Devices' }).waitFor();
    for (const _ of [1, 2, 3]) await page.keyboard.press('Tab');
    assert.equal(await focused(page), 'Tasks');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Tasks' }).waitFor();
    assert.equal(await page.getByRole('link', { name: 'Tasks' }).getAttribute('aria-current'), 'page');
    assert.equal(await focused(page), 'main');
    await page.keyboard.press('Tab');
    assert.equal(await focused(page), 'group');

    for (const name of ['Devices', 'Tasks', 'Meetings', 'Messages', 'Health', 'Config', 'Talk']) {
      await page.getByRole('link', { name, exact: true }).click();
      await page.getByRole('heading', { name, exact: true }).waitFor();
      assert.deepEqual(await unnamedControls(page), [], name);
    }
    assert.deepEqual(errors, []);
  });
  it('shows a read-only log-in every page without the controls that change things', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByText('Logged out.').waitFor();
    await page.getByLabel('Secret').fill(READ);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByText('Read-only', { exact: true }).waitFor();

    await page.getByRole('link', { name: 'Tasks' }).click();
    await page.getByText('Read-only: log in with server.admin_secret to change tasks.').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Add task' }).count(), 0);
    assert.equal(await page.getByRole('button', { name: /^Complete / }).count(), 0);
    await page.getByRole('link', { name: 'Messages' }).click();
    await page.getByText('Read-only: log in with server.admin_secret to send messages.').waitFor();
    await page.getByRole('link', { name: 'Config' }).click();
    await page.getByRole('button', { name: 'Validate' }).waitFor();
    assert.equal(await page.getByRole('button', { name: /Apply|Restart/ }).count(), 0);
    await page.getByRole('link', { name: 'Talk' }).click();
    await page.getByText(/^Talking uses the providers like a device does/).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Connect' }).count(), 0);
    assert.deepEqual(errors, []);
  });
});
