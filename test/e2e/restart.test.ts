import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { cliEnv, freePort, killAllCli, REPO_ROOT, spawnCli, waitForHealth } from '../support/cli.js';
import { TestDevice } from '../support/device.js';
import { tempDir } from '../support/server.js';
import { sleep, waitFor } from '../support/wait.js';

const ADMIN = 'restart-admin-secret';

async function health(port: number): Promise<{ pid: number } | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health`);
    return res.ok ? ((await res.json()) as { pid: number }) : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('restart (D14, seed #6)', () => {
  const pids: number[] = [];
  const dirs: string[] = [];
  after(async () => {
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    await killAllCli();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('under nohup in the background: a new PID serves the same port, devices reconnect, stored data is intact', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const port = await freePort();
    writeFileSync(
      join(dir, 'config.yaml'),
      stringify({
        server: { ip: '127.0.0.1', port, admin_secret: ADMIN, activation: { enabled: true } },
        selected_module: { LLM: '' },
      }),
    );
    // Exactly what an operator types: nohup, background, output to a file, no terminal.
    const script = `nohup "${process.execPath}" --import tsx src/cli/index.ts serve --data-dir "${dir}" > "${join(dir, 'nohup.out')}" 2>&1 < /dev/null & echo $!`;
    const firstPid = Number(execFileSync('sh', ['-c', script], { cwd: REPO_ROOT, env: cliEnv() }).toString().trim());
    pids.push(firstPid);
    await waitFor(() => health(port), 20_000, 'first server');

    // Something stored before the restart: a device activated through OTA + admin.
    const ota = await fetch(`http://127.0.0.1:${port}/xiaozhi/ota/`, {
      method: 'POST',
      headers: { 'device-id': 'keep:me', 'client-id': 'c' },
      body: '{}',
    });
    const code = ((await ota.json()) as { activation: { code: string } }).activation.code;
    const act = await fetch(`http://127.0.0.1:${port}/admin/activate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}` },
      body: JSON.stringify({ code }),
    });
    assert.equal(act.status, 200);

    const dev = await TestDevice.connect({ url: `ws://127.0.0.1:${port}/xiaozhi/v1/`, deviceId: 'keep:me' });
    await dev.hello();
    const res = await fetch(`http://127.0.0.1:${port}/admin/restart`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    assert.equal(res.status, 202);
    const closed = await dev.closed;
    assert.equal(closed.code, 1001);
    assert.ok(dev.received.some((m) => m.type === 'system' && m.event === 'shutdown'));

    const next = await waitFor(
      async () => {
        const h = await health(port);
        return h && h.pid !== firstPid ? h : undefined;
      },
      30_000,
      'the replacement process',
    );
    pids.push(next.pid);
    await waitFor(() => !alive(firstPid), 5000, 'the old process to exit');

    const again = await TestDevice.connect({ url: `ws://127.0.0.1:${port}/xiaozhi/v1/`, deviceId: 'keep:me' });
    assert.equal((await again.hello()).type, 'hello', 'the activated device is still activated after the restart');
    await again.close();
    const list = (await (
      await fetch(`http://127.0.0.1:${port}/admin/activations`, { headers: { authorization: `Bearer ${ADMIN}` } })
    ).json()) as { data: { deviceId: string; activatedAt: number | null }[] };
    assert.ok(list.data.some((r) => r.deviceId === 'keep:me' && r.activatedAt !== null));

    // The replacement logs to the log file, not to a terminal.
    await sleep(200);
    assert.match(readFileSync(join(dir, 'linus.log'), 'utf8'), /Linus listening/);
    process.kill(next.pid, 'SIGTERM');
    await waitFor(() => !alive(next.pid), 10_000, 'the replacement to stop');
  });

  it('SIGHUP reloads the config file', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const port = await freePort();
    const file = join(dir, 'config.yaml');
    const write = (ws: string) =>
      writeFileSync(
        file,
        stringify({
          server: { ip: '127.0.0.1', port, websocket: ws, watch_config: false },
          selected_module: { LLM: '' },
        }),
      );
    write('ws://first.example:8000/xiaozhi/v1/');
    const proc = spawnCli(['serve', '--data-dir', dir]);
    await waitForHealth(proc, port);
    const otaUrl = async () =>
      (
        (await (
          await fetch(`http://127.0.0.1:${port}/xiaozhi/ota/`, {
            method: 'POST',
            headers: { 'device-id': 'd1' },
            body: '{}',
          })
        ).json()) as { websocket: { url: string } }
      ).websocket.url;
    assert.equal(await otaUrl(), 'ws://first.example:8000/xiaozhi/v1/');
    write('ws://second.example:8000/xiaozhi/v1/');
    await sleep(500);
    assert.equal(
      await otaUrl(),
      'ws://first.example:8000/xiaozhi/v1/',
      'with watch_config off nothing changes by itself',
    );
    proc.child.kill('SIGHUP');
    await waitFor(async () => (await otaUrl()) === 'ws://second.example:8000/xiaozhi/v1/', 5000, 'SIGHUP reload');
  });
});
