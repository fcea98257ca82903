import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import {
  freePort,
  isListening,
  killAllCli,
  lines,
  runCli,
  spawnCli,
  waitForHealth,
  type CliOptions,
  type CliResult,
} from '../support/cli.js';
import { TestDevice, UpgradeRefused, type Json } from '../support/device.js';
import { startTestServer, tempDir } from '../support/server.js';
import { nullConfig } from '../support/null-config.js';
import { defaultConfig, redactConfig } from '../../src/config/load.js';

const dirs: string[] = [];
/** A temp dir removed after the file's tests. */
function scratch(): string {
  const dir = tempDir('linus-cli-test-');
  dirs.push(dir);
  return dir;
}

/** Writes `text` as a YAML config file in a fresh temp dir; returns both paths. */
function configFile(text: string): { dir: string; path: string } {
  const dir = scratch();
  const path = join(dir, 'config.yaml');
  writeFileSync(path, text);
  return { dir, path };
}

after(async () => {
  await killAllCli();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const NOBODY = 65534;

/**
 * Runs `linus serve ...` expecting a startup failure: a non-zero exit and exactly one line on stderr that
 * matches every pattern (the cause, and the key or flag to change). The time taken is reported, not asserted.
 */
async function expectStartupError(
  t: TestContext,
  args: string[],
  patterns: RegExp[],
  opts: CliOptions = {},
): Promise<CliResult> {
  const r = await runCli(['serve', ...args], opts);
  t.diagnostic(`exited with code ${r.code} after ${Math.round(r.ms)} ms: ${r.stderr.trim()}`);
  assert.equal(r.signal, null, 'the process exits by itself');
  assert.ok(r.code !== null && r.code !== 0, `non-zero exit expected, got ${r.code}\nstdout: ${r.stdout}`);
  const errLines = lines(r.stderr);
  assert.equal(errLines.length, 1, `exactly one line on stderr, got:\n${r.stderr}`);
  for (const p of patterns) assert.match(errLines[0]!, p);
  return r;
}

/** Starts `linus serve` on a free port of 127.0.0.1 and waits until /health answers. */
async function startServe(args: string[], opts: CliOptions & { port?: number } = {}) {
  const port = opts.port ?? (await freePort());
  const proc = spawnCli(['serve', '--host', '127.0.0.1', '--port', String(port), ...args], opts);
  await waitForHealth(proc, port);
  return { proc, port };
}

/** An effective config as printed by `check-config` (its first line is a YAML comment). */
function printedConfig(r: CliResult): Json {
  return parseYaml(r.stdout) as Json;
}

const get = (obj: unknown, path: string): unknown =>
  path
    .split('.')
    .reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), obj);

describe('startup errors (D15): one line on stderr naming the cause and what to change, non-zero exit', () => {
  it('port already in use', async (t) => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      await expectStartupError(
        t,
        ['--data-dir', scratch(), '--host', '127.0.0.1', '--port', String(port)],
        [/in use/i, new RegExp(`\\b${port}\\b`), /server\.port|--port|LINUS_PORT/],
      );
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it('permission denied (user nobody binding port 80)', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('not root: cannot run a child as nobody');
    const probe = spawnSync(process.execPath, ['-e', 'process.exit(0)'], { uid: NOBODY, gid: NOBODY });
    if (probe.error || probe.status !== 0)
      return t.skip(`cannot spawn as nobody: ${probe.error?.message ?? `exit ${probe.status}`}`);
    const unprivilegedStart = Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').trim());
    if (unprivilegedStart <= 80)
      return t.skip(`ip_unprivileged_port_start is ${unprivilegedStart}: port 80 is not privileged here`);
    const dataDir = scratch();
    chmodSync(dataDir, 0o777);
    await expectStartupError(
      t,
      ['--data-dir', dataDir, '--host', '127.0.0.1', '--port', '80'],
      [/permission denied/i, /\b80\b/, /server\.port|--port|LINUS_PORT/],
      { uid: NOBODY, gid: NOBODY },
    );
  });

  it('bad host (not an address of this machine)', async (t) => {
    await expectStartupError(
      t,
      ['--data-dir', scratch(), '--host', '192.0.2.1', '--port', '0'],
      [/192\.0\.2\.1/, /server\.ip|--host|LINUS_HOST/],
    );
  });

  it('invalid config value names the key path', async (t) => {
    const bad = configFile('server:\n  port: "abc"\n');
    await expectStartupError(t, ['--data-dir', bad.dir], [/server\.port/]);
    const nested = configFile('server:\n  auth:\n    enabled: true\n    expire_seconds: -5\n');
    await expectStartupError(t, ['--data-dir', nested.dir], [/server\.auth\.expire_seconds/]);
  });

  it('YAML syntax error names the line', async (t) => {
    // Line 4 is indented by one space: a mapping item that starts at the wrong column.
    const { dir } = configFile(
      'server:\n  port: 8000\n  ip: 127.0.0.1\n timezone_offset: 8\nlog:\n  log_level: info\n',
    );
    await expectStartupError(t, ['--data-dir', dir], [/yaml/i, /line 4\b/]);
  });

  it('data dir not writable (a path below a regular file), with the default config path', async (t) => {
    const file = join(scratch(), 'not-a-dir');
    writeFileSync(file, 'plain file');
    const dataDir = join(file, 'data');
    await expectStartupError(
      t,
      ['--data-dir', dataDir, '--port', '0'],
      [new RegExp(dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), /--data-dir|LINUS_DATA_DIR/],
    );
  });

  it(
    'a data dir where no directory can be made (/proc/x) fails at once instead of hanging',
    { skip: existsSync('/proc/self') ? false : 'no /proc here' },
    async (t) => {
      // Node 20's recursive mkdir spins for ever on this path; runCli kills a process still running after 20 s.
      await expectStartupError(t, ['--data-dir', '/proc/x', '--port', '0'], [/\/proc\/x/, /ENOENT/, /--data-dir/]);
      const { path } = configFile('server:\n  ip: 127.0.0.1\n');
      await expectStartupError(
        t,
        ['--config', path, '--data-dir', '/proc/x', '--port', '0'],
        [/\/proc\/x/, /--data-dir/],
      );
    },
  );

  it('data dir not writable (a path below a regular file), with an explicit --config', async (t) => {
    const { path } = configFile('server:\n  ip: 127.0.0.1\n');
    const file = join(scratch(), 'not-a-dir');
    writeFileSync(file, 'plain file');
    const dataDir = join(file, 'data');
    await expectStartupError(
      t,
      ['--config', path, '--data-dir', dataDir, '--port', '0'],
      [new RegExp(dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), /--data-dir|LINUS_DATA_DIR/],
    );
  });

  it('a bad LINUS_PORT value names LINUS_PORT; a bad --port names --port', async (t) => {
    await expectStartupError(t, ['--data-dir', scratch()], [/LINUS_PORT/, /abc/], { env: { LINUS_PORT: 'abc' } });
    await expectStartupError(t, ['--data-dir', scratch()], [/LINUS_PORT/, /70000/], { env: { LINUS_PORT: '70000' } });
    await expectStartupError(t, ['--data-dir', scratch(), '--port', 'eighty'], [/--port/, /eighty/]);
  });
});

describe('check-config', () => {
  it('prints the effective config with every secret redacted', async () => {
    const secrets = {
      authKey: 'AUTHKEY-must-not-leak-1',
      adminSecret: 'ADMIN-must-not-leak-2',
      managerSecret: 'MANAGER-must-not-leak-3',
      llmKey: 'sk-LLMKEY-must-not-leak-4',
      ttsToken: 'TTSTOKEN-must-not-leak-5',
      staticToken: 'STATIC-must-not-leak-6',
    };
    const { dir, path } = configFile(
      [
        'server:',
        '  port: 8123',
        `  auth_key: ${secrets.authKey}`,
        `  admin_secret: ${secrets.adminSecret}`,
        '  auth:',
        '    enabled: true',
        `    tokens: [${secrets.staticToken}]`,
        'manager-api:',
        '  url: http://127.0.0.1:8002/xiaozhi',
        `  secret: ${secrets.managerSecret}`,
        'selected_module:',
        '  LLM: OpenAILLM',
        'LLM:',
        '  OpenAILLM:',
        '    type: openai',
        '    base_url: https://api.openai.com/v1',
        '    model_name: gpt-4o-mini',
        `    api_key: ${secrets.llmKey}`,
        'TTS:',
        '  DoubaoTTS:',
        '    type: doubao',
        '    appid: "1234567"',
        `    access_token: ${secrets.ttsToken}`,
        '',
      ].join('\n'),
    );
    const r = await runCli(['check-config', '--config', path, '--data-dir', dir]);
    assert.equal(r.code, 0, r.stderr);
    for (const [name, value] of Object.entries(secrets)) {
      assert.ok(!r.stdout.includes(value), `${name} leaked on stdout`);
      assert.ok(!r.stderr.includes(value), `${name} leaked on stderr`);
    }
    assert.ok(r.stdout.includes('***'));
    const printed = printedConfig(r);
    assert.equal(get(printed, 'server.auth_key'), '***');
    assert.equal(get(printed, 'server.admin_secret'), '***');
    assert.equal(get(printed, 'manager-api.secret'), '***');
    assert.equal(get(printed, 'LLM.OpenAILLM.api_key'), '***');
    assert.equal(get(printed, 'TTS.DoubaoTTS.access_token'), '***');
    // Everything else is printed as is.
    assert.equal(get(printed, 'server.port'), 8123);
    assert.equal(get(printed, 'LLM.OpenAILLM.model_name'), 'gpt-4o-mini');
    assert.equal(get(printed, 'manager-api.url'), 'http://127.0.0.1:8002/xiaozhi');
  });

  it('warns on stderr about unknown keys, with their key path, and still succeeds', async () => {
    const { dir, path } = configFile(
      [
        'server:',
        '  port: 8000',
        '  prot: 8001',
        '  auth:',
        '    enabeld: true',
        'log:',
        '  log_levle: debug',
        'selected_modul:',
        '  ASR: FunASR',
        '',
      ].join('\n'),
    );
    const r = await runCli(['check-config', '--config', path, '--data-dir', dir]);
    assert.equal(r.code, 0, r.stderr);
    const warnings = lines(r.stderr);
    for (const key of ['server.prot', 'server.auth.enabeld', 'log.log_levle', 'selected_modul']) {
      assert.ok(
        warnings.some((w) => new RegExp(`(^|[\\s'"\`])${key.replace(/\./g, '\\.')}($|[\\s'"\`:,)])`).test(w)),
        `no warning naming ${key} in:\n${r.stderr}`,
      );
    }
    assert.equal(warnings.length, 4, r.stderr);
    assert.equal(get(printedConfig(r), 'server.port'), 8000);
  });

  it("accepts the Python reference server's config.yaml layout with no warnings", async () => {
    const { dir, path } = configFile(REFERENCE_CONFIG);
    const r = await runCli(['check-config', '--config', path, '--data-dir', dir]);
    // The layout is accepted (no unknown keys), but its ASR (fun_local) and TTS (edge) have no provider here.
    assert.equal(r.code, 1, r.stderr);
    const errors = lines(r.stderr);
    assert.equal(errors.length, 1, r.stderr);
    assert.match(errors[0]!, /selected_module\.ASR is "FunASR", whose type "fun_local" is not supported/);
    assert.match(errors[0]!, /selected_module\.TTS is "EdgeTTS", whose type "edge" is not supported/);
    assert.doesNotMatch(r.stderr, /warning/, 'no warnings for keys of the reference layout');
    const printed = printedConfig(r);
    assert.equal(get(printed, 'server.port'), 8000);
    assert.equal(get(printed, 'server.timezone_offset'), 8);
    assert.deepEqual(get(printed, 'server.auth.allowed_devices'), ['24:0A:C4:1D:3B:F0']);
    assert.equal(get(printed, 'log.log_file'), 'server.log');
    assert.equal(get(printed, 'close_connection_no_voice_time'), 120);
    assert.deepEqual(get(printed, 'exit_commands'), ['退出', '关闭']);
    assert.equal(get(printed, 'xiaozhi.audio_params.sample_rate'), 24000);
    assert.deepEqual(get(printed, 'selected_module'), {
      VAD: 'SileroVAD',
      ASR: 'FunASR',
      LLM: 'ChatGLMLLM',
      VLLM: 'ChatGLMVLLM',
      TTS: 'EdgeTTS',
      Memory: 'nomem',
      Intent: 'function_call',
    });
    assert.equal(get(printed, 'LLM.ChatGLMLLM.type'), 'openai');
    assert.equal(get(printed, 'LLM.ChatGLMLLM.api_key'), '***');
    assert.equal(get(printed, 'VAD.SileroVAD.min_silence_duration_ms'), 700);
  });
});

describe('check-config with null keys', () => {
  it('a config where every key that may be left out is null prints the defaults', async () => {
    const { dir, path } = configFile(stringifyYaml(nullConfig(true)));
    assert.match(readFileSync(path, 'utf8'), /mqtt_gateway: null/);
    const r = await runCli(['check-config', '--config', path, '--data-dir', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(lines(r.stderr), []);
    assert.deepEqual(printedConfig(r), JSON.parse(JSON.stringify(redactConfig(defaultConfig()))));
  });
});

describe('selected modules', () => {
  const NOPE = [
    'selected_module:',
    '  LLM: Nope',
    'LLM:',
    '  Fake: {type: openai, base_url: http://127.0.0.1:9/v1}',
    '',
  ];
  const MP3 = ['selected_module:', '  TTS: Speaker', 'TTS:', '  Speaker: {type: mp3speaker}', ''].join('\n');

  it('check-config fails on a selected alias without a block or with an unsupported type, naming the key', async () => {
    const nope = configFile(NOPE.join('\n'));
    const r = await runCli(['check-config', '--config', nope.path, '--data-dir', nope.dir]);
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(lines(r.stderr), [
      'linus: selected_module.LLM is "Nope", but LLM has no block named Nope (defined: Fake)',
    ]);
    assert.equal(get(printedConfig(r), 'selected_module.LLM'), 'Nope', 'the effective config is still printed');

    const mp3 = configFile(MP3);
    const r2 = await runCli(['check-config', '--config', mp3.path, '--data-dir', mp3.dir]);
    assert.equal(r2.code, 1, r2.stderr);
    assert.match(
      r2.stderr,
      /selected_module\.TTS is "Speaker", whose type "mp3speaker" is not supported: set TTS\.Speaker\.type to one of openai, flite/,
    );
  });

  it('serve refuses to start with them, in one line naming the key', async (t) => {
    const { dir, path } = configFile(NOPE.join('\n'));
    await expectStartupError(t, ['--config', path, '--data-dir', dir, '--port', '0'], [/selected_module\.LLM/, /Nope/]);
  });
});

describe('config file and overrides', () => {
  it('the first start creates <data-dir>/config.yaml, and it loads as the defaults', async () => {
    const dataDir = join(scratch(), 'fresh');
    const configPath = join(dataDir, 'config.yaml');
    assert.equal(existsSync(configPath), false);
    const { proc } = await startServe(['--data-dir', dataDir]);
    try {
      assert.ok(existsSync(configPath), 'config.yaml created on first start');
      assert.match(readFileSync(configPath, 'utf8'), /server:/);
    } finally {
      await proc.kill();
    }
    const r = await runCli(['check-config', '--data-dir', dataDir]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(lines(r.stderr), []);
    assert.equal(get(printedConfig(r), 'server.port'), 8000);
  });

  it('port precedence: --port beats LINUS_PORT beats the config file', async () => {
    const [filePort, envPort, flagPort] = [await freePort(), await freePort(), await freePort()];
    assert.equal(new Set([filePort, envPort, flagPort]).size, 3, 'three distinct ports');
    const { dir } = configFile(`server:\n  ip: 127.0.0.1\n  port: ${filePort}\n`);
    const stages = [
      { expected: flagPort, args: ['--port', String(flagPort)], env: { LINUS_PORT: String(envPort) } },
      { expected: envPort, args: [], env: { LINUS_PORT: String(envPort) } },
      { expected: filePort, args: [], env: {} },
    ];
    for (const stage of stages) {
      const proc = spawnCli(['serve', '--data-dir', dir, ...stage.args], { env: stage.env });
      try {
        const health = await waitForHealth(proc, stage.expected);
        assert.equal(health.status, 'ok');
        for (const other of [filePort, envPort, flagPort].filter((p) => p !== stage.expected)) {
          assert.equal(
            await isListening(other),
            false,
            `nothing should listen on ${other} (expected ${stage.expected})`,
          );
        }
      } finally {
        await proc.kill();
      }
    }
  });
});

describe('serve: graceful shutdown', () => {
  it('SIGTERM tells connected devices, closes them with 1001 and exits 0', async () => {
    const { proc, port } = await startServe(['--data-dir', scratch()]);
    const dev = await TestDevice.connect({
      url: `ws://127.0.0.1:${port}/xiaozhi/v1/`,
      deviceId: 'aa:bb:cc:00:10:01',
      clientId: 'shutdown-client',
    });
    assert.equal((await dev.hello()).type, 'hello');

    proc.signal('SIGTERM');
    const notice = await dev.next((m) => m.type === 'system' && m.event === 'shutdown', 5000);
    assert.equal(typeof notice.message, 'string');
    const closed = await dev.closed;
    assert.equal(closed.code, 1001);
    const shutdownIndex = dev.received.findIndex((m) => m.type === 'system' && m.event === 'shutdown');
    assert.ok(shutdownIndex >= 0, 'the shutdown notice came before the close');

    const exit = await proc.exited;
    assert.equal(exit.signal, null, exit.stderr);
    assert.equal(exit.code, 0, exit.stderr);
  });
});

describe('linus token', () => {
  const AUTH_KEY = 'cli-token-test-key';

  it('prints a token that a server with the same auth_key accepts, bound to its device and client', async () => {
    const { dir, path } = configFile(`server:\n  auth_key: ${AUTH_KEY}\n`);
    const r = await runCli(['token', 'AA:BB:CC:00:20:01', 'Client-20', '--config', path, '--data-dir', dir]);
    assert.equal(r.code, 0, r.stderr);
    const token = r.stdout.trim();
    assert.match(token, /^[\w-]+\.\d+$/);

    const server = await startTestServer({ server: { auth_key: AUTH_KEY, auth: { enabled: true } } });
    const other = await startTestServer({ server: { auth_key: 'another-key', auth: { enabled: true } } });
    try {
      const url = server.url('/xiaozhi/v1/', 'ws');
      const dev = await TestDevice.connect({ url, deviceId: 'AA:BB:CC:00:20:01', clientId: 'Client-20', token });
      assert.equal((await dev.hello()).type, 'hello');
      await dev.close();
      const refusedFor = async (p: Promise<TestDevice>): Promise<number> =>
        p.then(
          () => 101,
          (err: unknown) => (err instanceof UpgradeRefused ? err.status : -1),
        );
      assert.equal(
        await refusedFor(TestDevice.connect({ url, deviceId: 'AA:BB:CC:00:20:01', clientId: 'someone-else', token })),
        401,
      );
      assert.equal(
        await refusedFor(TestDevice.connect({ url, deviceId: 'AA:BB:CC:00:20:02', clientId: 'Client-20', token })),
        401,
      );
      assert.equal(
        await refusedFor(
          TestDevice.connect({
            url: other.url('/xiaozhi/v1/', 'ws'),
            deviceId: 'AA:BB:CC:00:20:01',
            clientId: 'Client-20',
            token,
          }),
        ),
        401,
      );
    } finally {
      await Promise.all([server.stop(), other.stop()]);
    }
  });

  it('without server.auth_key it fails with one line naming server.auth_key', async () => {
    const { dir, path } = configFile('server:\n  port: 8000\n');
    const r = await runCli(['token', 'aa:bb:cc:00:20:03', '--config', path, '--data-dir', dir]);
    assert.notEqual(r.code, 0);
    assert.equal(r.stdout, '');
    assert.equal(lines(r.stderr).length, 1, r.stderr);
    assert.match(r.stderr, /server\.auth_key/);
  });
});

/** An excerpt of the Python reference server's config.yaml, keys and values as it ships them. */
const REFERENCE_CONFIG = `# 在开发中，请在项目根目录创建data目录，然后在data目录创建名称为.config.yaml的空文件
server:
  # 服务器监听地址和端口(Server listening address and port)
  ip: 0.0.0.0
  port: 8000
  # http服务的端口，用于简单OTA接口(单服务部署)，以及视觉分析接口
  http_port: 8003
  # 这个websocket配置是指ota接口向设备发送的websocket地址
  websocket: ws://你的ip或者域名:端口号/xiaozhi/v1/
  vision_explain: http://你的ip或者域名:端口号/mcp/vision/explain
  timezone_offset: +8
  auth:
    # 是否启用认证
    enabled: false
    # 设备白名单
    allowed_devices:
      - "24:0A:C4:1D:3B:F0"
    expire_seconds: 2592000
  # MQTT网关配置 (unused keys are written as null)
  mqtt_gateway: null
  mqtt_signature_key: null
  udp_gateway: null
log:
  log_format: "<green>{time:YYMMDD HH:mm:ss}</green>[{version}_{selected_module}][<light-blue>{extra[tag]}</light-blue>]-<level>{level}</level>-<light-green>{message}</light-green>"
  log_level: INFO
  log_dir: tmp
  log_file: "server.log"
  data_dir: data
delete_audio: true
close_connection_no_voice_time: 120
tts_timeout: 10
enable_wakeup_words_response_cache: true
enable_greeting: true
enable_stop_tts_notify: false
stop_tts_notify_voice: "config/assets/tts_notify.mp3"
exit_commands:
  - "退出"
  - "关闭"
xiaozhi:
  type: hello
  version: 1
  transport: websocket
  audio_params:
    format: opus
    sample_rate: 24000
    channels: 1
    frame_duration: 60
wakeup_words:
  - "你好小智"
  - "嘿你好呀"
  - "你好小志"
  - "小爱同学"
mcp_endpoint: 你的接入点 websocket地址
prompt: |
  你是小智/小志，来自中国台湾省的00后女生。讲话超级机车，"真的假的啦"这样的台湾腔，喜欢用"笑死""是在哈喽"等流行梗。
  [核心特征]
  - 讲话像连珠炮，但会突然冒出超温柔语气
selected_module:
  VAD: SileroVAD
  ASR: FunASR
  LLM: ChatGLMLLM
  VLLM: ChatGLMVLLM
  TTS: EdgeTTS
  Memory: nomem
  Intent: function_call
Intent:
  nointent:
    type: nointent
  intent_llm:
    type: intent_llm
    llm: ChatGLMLLM
  function_call:
    type: function_call
    functions:
      - change_role
      - get_weather
      - play_music
Memory:
  mem0ai:
    type: mem0ai
    api_key: 你的mem0ai api key
  nomem:
    type: nomem
  mem_local_short:
    type: mem_local_short
    llm: ChatGLMLLM
ASR:
  FunASR:
    type: fun_local
    model_dir: models/SenseVoiceSmall
    output_dir: tmp/
VAD:
  SileroVAD:
    type: silero
    threshold: 0.5
    threshold_low: 0.3
    model_dir: models/snakers4_silero-vad
    min_silence_duration_ms: 700
LLM:
  ChatGLMLLM:
    type: openai
    model_name: glm-4-flash
    url: https://open.bigmodel.cn/api/paas/v4/
    api_key: 你的chat-glm web key
VLLM:
  ChatGLMVLLM:
    type: openai
    model_name: glm-4v-flash
    url: https://open.bigmodel.cn/api/paas/v4/
    api_key: 你的api_key
TTS:
  EdgeTTS:
    type: edge
    voice: zh-CN-XiaoxiaoNeural
    output_dir: tmp/
`;
