import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, constants, openSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { freePort, isListening, killAllCli, spawnCli, waitForHealth, type CliProcess } from '../support/cli.js';
import { tempDir } from '../support/server.js';
import { waitFor } from '../support/wait.js';

const dirs: string[] = [];
const sockets: Socket[] = [];
after(async () => {
  for (const s of sockets) s.destroy();
  await killAllCli();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/**
 * `linus serve | head -c 200`: the reader of our stdout takes a few bytes and goes away. The pipe is a real one
 * (a FIFO) and the reader a real `head`; the server is started once `head` holds the other end, and returned
 * once `head` has exited, so that every later log line meets a broken pipe.
 */
async function serveIntoHead(config: string): Promise<{ proc: CliProcess; port: number }> {
  const dir = tempDir('linus-pipe-test-');
  dirs.push(dir);
  writeFileSync(join(dir, 'config.yaml'), config);
  const fifo = join(dir, 'stdout.fifo');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
  const head = spawn('sh', ['-c', 'exec head -c 200 < "$0" > /dev/null', fifo], { stdio: 'ignore' });
  const headGone = new Promise((resolve) => head.once('exit', resolve));
  // Opening the write end without a reader fails (ENXIO) instead of blocking: retried until head has it open.
  const out = await waitFor(
    () => {
      try {
        return openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
      } catch {
        return undefined;
      }
    },
    10_000,
    'head to open the FIFO',
  );
  const port = await freePort();
  const proc = spawnCli(['serve', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dir], {
    stdout: out,
  });
  closeSync(out);
  await waitForHealth(proc, port);
  await headGone;
  return { proc, port };
}

/** The process's exit; one still running after `ms` is killed and the test fails: a hang, not a slow stop. */
async function exitWithin(proc: CliProcess, ms: number, what: string) {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void proc.kill();
      reject(new Error(`still running ${ms} ms after ${what}\nstderr: ${proc.stderr}`));
    }, ms);
  });
  try {
    return await Promise.race([proc.exited, hung]);
  } finally {
    clearTimeout(timer);
  }
}

/** A device that completes the WebSocket upgrade and then never answers anything, not even the close. */
async function silentDevice(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  socket.write(
    [
      'GET /xiaozhi/v1/ HTTP/1.1',
      `Host: 127.0.0.1:${port}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      'Sec-WebSocket-Version: 13',
      'Device-Id: aa:bb:cc:00:77:01',
      'Client-Id: silent-device',
      '',
      '',
    ].join('\r\n'),
  );
  let reply = '';
  await new Promise<void>((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n\r\n')) resolve();
    });
    socket.once('error', reject);
  });
  assert.match(reply, /^HTTP\/1\.1 101 /);
  return socket;
}

describe('serve with the reader of its stdout gone (`linus serve | head`)', () => {
  it('SIGTERM drains and exits 0; the broken pipe is reported once on stderr', async () => {
    const { proc } = await serveIntoHead('server:\n  shutdown_timeout_ms: 3000\n');
    proc.signal('SIGTERM');
    const exit = await exitWithin(proc, 20_000, 'SIGTERM');
    assert.equal(exit.signal, null, exit.stderr);
    assert.equal(exit.code, 0, exit.stderr);
    // The proof that stdout was broken when the drain logged: without it this test would prove nothing.
    assert.match(exit.stderr, /writing the log to stdout failed \(EPIPE\); logging stops/);
    assert.equal(exit.stderr.match(/writing the log to stdout failed/g)?.length, 1, 'reported once');
  });

  it('a second SIGTERM during a drain held open by a silent device exits 1 at once', async () => {
    // A long budget, and nothing that would cut the silent device before the drain does.
    const { proc, port } = await serveIntoHead(
      'server:\n  shutdown_timeout_ms: 60000\n  hello_timeout_ms: 0\n  ws_ping_interval_ms: 0\n',
    );
    await silentDevice(port);
    proc.signal('SIGTERM');
    await waitFor(async () => !(await isListening(port)), 10_000, 'the drain to stop the listener');
    assert.ok(proc.running, 'the drain waits for the silent device');
    proc.signal('SIGTERM');
    // Well inside both the 60 s budget and ws's 30 s wait for a closing handshake: only the signal ends it.
    const exit = await exitWithin(proc, 20_000, 'the second SIGTERM');
    assert.equal(exit.signal, null, exit.stderr);
    assert.equal(exit.code, 1, exit.stderr);
    assert.match(exit.stderr, /second SIGTERM, exiting now/);
  });
});
