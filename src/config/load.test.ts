import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, defaultConfig, parseConfigText, redactConfig, validateConfig } from './load.js';
import { applyOverrides, resolveRuntimeOptions } from './runtime.js';
import { nullConfig } from '../../test/support/null-config.js';

describe('config schema and defaults (D11)', () => {
  it('produces every default from an empty file', () => {
    const c = defaultConfig();
    assert.equal(c.server.port, 8000);
    assert.equal(c.server.ip, '0.0.0.0');
    assert.equal(c.server.handover_close_ms, 1500);
    assert.equal(c.server.auth.expire_seconds, 2_592_000);
    assert.equal(c.close_connection_no_voice_time, 120);
    assert.deepEqual(c.xiaozhi.audio_params, { format: 'opus', sample_rate: 24000, channels: 1, frame_duration: 60 });
    assert.ok(Object.isFrozen(c.server), 'snapshots are immutable');
  });

  it('fills nested defaults of a partly given block', () => {
    const { config } = validateConfig({ server: { port: 9000, auth: { enabled: true } } });
    assert.equal(config.server.port, 9000);
    assert.equal(config.server.auth.expire_seconds, 2_592_000);
    assert.equal(config.server.max_frame_bytes, 65_536);
  });

  it('names the key path of an invalid value (seed #15)', () => {
    assert.throws(
      () => validateConfig({ server: { port: 'abc' } }),
      (e: unknown) => e instanceof ConfigError && e.keyPath === 'server.port' && /server\.port/.test(e.message),
    );
    assert.throws(() => validateConfig({ server: { auth: { enabled: 'yes' } } }), /server\.auth\.enabled/);
    assert.throws(
      () => validateConfig({ xiaozhi: { audio_params: { sample_rate: 22050 } } }),
      /xiaozhi\.audio_params\.sample_rate/,
    );
    assert.throws(() => validateConfig([1, 2]), /mapping/);
    assert.throws(
      () => validateConfig({ server: { mqtt: { broker_url: 'broker.lan:1883' } } }),
      /server\.mqtt\.broker_url.*mqtt:\/\/host:port/,
    );
    assert.equal(
      validateConfig({ server: { mqtt: { broker_url: 'mqtts://u:p@broker.lan' } } }).config.server.mqtt.broker_url,
      'mqtts://u:p@broker.lan',
    );
  });

  it('warns about unknown keys with their path and ignores them', () => {
    const { config, warnings } = validateConfig({
      server: { prot: 1 },
      bogus: true,
      LLM: { Any: { type: 'openai', anything: 1 } },
    });
    assert.deepEqual(warnings.sort(), ['unknown key bogus (ignored)', 'unknown key server.prot (ignored)']);
    assert.equal((config as Record<string, unknown>).bogus, undefined);
  });

  it('accepts the reference config.yaml layout without warnings', () => {
    const raw = parseConfigText(`
server:
  ip: 0.0.0.0
  port: 8000
  http_port: 8003
  websocket: ws://你的ip或者域名:端口号/xiaozhi/v1/
  vision_explain: http://你的ip或者域名:端口号/mcp/vision/explain
  timezone_offset: +8
  auth:
    enabled: false
    allowed_devices:
      - "24:0A:C4:1D:3B:F0"
log:
  log_format: "<green>{time}</green>"
  log_level: INFO
  log_dir: tmp
  data_dir: data
delete_audio: true
close_connection_no_voice_time: 120
tts_timeout: 10
enable_wakeup_words_response_cache: true
enable_greeting: true
enable_stop_tts_notify: false
stop_tts_notify_voice: "config/assets/tts_notify.mp3"
exit_commands: [退出, 关闭]
xiaozhi:
  type: hello
  version: 1
  transport: websocket
  audio_params: {format: opus, sample_rate: 24000, channels: 1, frame_duration: 60}
wakeup_words: [你好小智, 你好小志]
prompt: 你是小智
selected_module: {VAD: SileroVAD, ASR: FunASR, LLM: ChatGLMLLM, VLLM: ChatGLMVLLM, TTS: EdgeTTS, Memory: nomem, Intent: function_call}
VAD:
  SileroVAD: {type: silero, threshold: 0.5, threshold_low: 0.3, model_dir: models/snakers4_silero-vad, min_silence_duration_ms: 200}
ASR:
  FunASR: {type: fun_local, model_dir: models/SenseVoiceSmall, output_dir: tmp/}
LLM:
  ChatGLMLLM: {type: openai, model_name: glm-4-flash, url: "https://open.bigmodel.cn/api/paas/v4/", api_key: 你的key}
TTS:
  EdgeTTS: {type: edge, voice: zh-CN-XiaoxiaoNeural, output_dir: tmp/}
Memory:
  nomem: {type: nomem}
Intent:
  function_call: {type: function_call, functions: [change_role, get_weather]}
`);
    const { config, warnings } = validateConfig(raw);
    assert.deepEqual(warnings, []);
    assert.equal(config.server.timezone_offset, 8);
    assert.equal(config.log.log_level, 'info');
    assert.equal(config.selected_module.LLM, 'ChatGLMLLM');
  });

  it('null means unset wherever a key may be left out: every such key null gives the defaults', () => {
    for (const deep of [false, true]) {
      const raw = nullConfig(deep);
      const { config, warnings } = validateConfig(raw);
      assert.deepEqual(config, defaultConfig(), `deep=${deep}`);
      assert.deepEqual(warnings, []);
    }
    // The generated config really is null all the way down (nested blocks included).
    const deep = nullConfig(true) as { server: Record<string, unknown> };
    assert.equal(deep.server.port, null);
    assert.equal((deep.server.auth as Record<string, unknown>).enabled, null);
  });

  it("accepts the reference's null-valued keys, and null next to real values", () => {
    const raw = parseConfigText(`
server:
  port: 8001
  mqtt_gateway: null
  mqtt_signature_key: null
  udp_gateway: ~
  auth:
    enabled: true
    allowed_devices:
log:
  log_level: DEBUG
  data_dir: null
prompt_template: null
selected_module: {VLLM: null, LLM: Mine}
LLM:
  Mine: {type: openai, url: null, api_key: null}
`);
    const { config } = validateConfig(raw);
    assert.equal(config.server.port, 8001);
    assert.equal(config.server.mqtt_gateway, undefined);
    assert.equal(config.server.udp_gateway, undefined);
    assert.equal(config.server.auth.enabled, true);
    assert.deepEqual(config.server.auth.allowed_devices, []);
    assert.equal(config.log.log_level, 'debug');
    assert.equal(config.selected_module.VLLM, '');
    assert.equal(config.selected_module.LLM, 'Mine');
    // Provider blocks are free-form: their nulls reach the provider, which reads them as unset.
    assert.equal(config.LLM.Mine?.url, null);
    // A null where a value is required is still an error naming the key (a list item, not a key).
    assert.throws(() => validateConfig({ exit_commands: [null] }), /exit_commands\.0/);
  });

  it('reports YAML syntax errors with the line', () => {
    assert.throws(
      () => parseConfigText('server:\n  port: 8000\n bad: [\n', 'x.yaml'),
      /x\.yaml: YAML syntax error at line \d+/,
    );
  });

  it('redacts secrets for printing', () => {
    const out = redactConfig({
      server: { auth_key: 'k', admin_secret: 's', port: 1, auth: { tokens: ['t1'] } },
      LLM: { A: { api_key: 'sk', model_name: 'm' } },
      empty: { secret: '' },
    }) as never;
    assert.deepEqual(out, {
      server: { auth_key: '***', admin_secret: '***', port: 1, auth: { tokens: ['***'] } },
      LLM: { A: { api_key: '***', model_name: 'm' } },
      empty: { secret: '' },
    });
  });
});

describe('runtime options', () => {
  it('prefers flags over env over defaults', () => {
    const o = resolveRuntimeOptions({ port: '9001' }, { LINUS_PORT: '9002', LINUS_DATA_DIR: '/tmp/x' }, '/w');
    assert.equal(o.port, 9001);
    assert.equal(o.dataDir, '/tmp/x');
    assert.equal(o.configPath, '/tmp/x/config.yaml');
    assert.equal(o.defaultConfigPath, true);
    const e = resolveRuntimeOptions({}, { LINUS_PORT: '9002', LINUS_CONFIG: 'c.yaml' }, '/w');
    assert.equal(e.port, 9002);
    assert.equal(e.configPath, '/w/c.yaml');
    assert.equal(e.defaultConfigPath, false);
    assert.equal(resolveRuntimeOptions({}, {}, '/w').dataDir, '/w/data');
  });

  it('rejects a bad port naming where it came from', () => {
    assert.throws(() => resolveRuntimeOptions({}, { LINUS_PORT: 'eighty' }), /LINUS_PORT/);
    assert.throws(() => resolveRuntimeOptions({ port: '70000' }, {}), /--port/);
  });

  it('applies port and host overrides to a validated snapshot', () => {
    const loaded = validateConfig({ server: { port: 1 } });
    const { config } = applyOverrides(loaded, { port: 2, host: '127.0.0.1' });
    assert.equal(config.server.port, 2);
    assert.equal(config.server.ip, '127.0.0.1');
    assert.equal(loaded.config.server.port, 1);
  });
});
