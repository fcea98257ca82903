import { z } from 'zod';
import { OPUS_SAMPLE_RATES } from '../protocol/messages.js';
import { parseCidr } from './cidr.js';

/**
 * The configuration schema, and with it the one table of defaults: every default lives here and nowhere else.
 * The layout is the reference server's `config.yaml` (server, selected_module, VAD/ASR/LLM/TTS/... blocks,
 * the `xiaozhi` hello template, prompt, exit_commands, close_connection_no_voice_time...), plus the fork's
 * meeting/workflow/peer/working/coding/llm_by_mode blocks and our own keys.
 * Objects use `prefault({})` so that a missing block still gets its nested defaults.
 */

const port = z.number().int().min(0).max(65535);
const ms = z.number().int().min(0);
const positiveInt = z.number().int().positive();
/** Free-form block whose keys belong to a provider or to a feature that validates them itself. */
const openBlock = z.record(z.string(), z.unknown());
const providerCatalogue = z.record(z.string(), z.looseObject({ type: z.string().optional() }));

const staticToken = z.union([
  z.string().min(1),
  z.looseObject({ token: z.string().min(1), name: z.string().optional() }),
]);

export const serverSchema = z
  .object({
    ip: z.string().min(1).default('0.0.0.0'),
    port: port.default(8000),
    /** The reference's separate HTTP port; Linus serves everything on `port`, so this is accepted and unused. */
    http_port: port.optional(),
    /** WebSocket URL handed out by OTA; empty = built from the OTA request's Host header. */
    websocket: z.string().default(''),
    /** Vision explain URL sent in MCP initialize; empty = built from the device's Host header. */
    vision_explain: z.string().default(''),
    /** Limits of `POST /mcp/vision/explain` (the model is `selected_module.VLLM`). */
    vision: z
      .object({
        /** Larger images are refused (the reference allows 5 MB). */
        max_image_bytes: positiveInt.default(5 * 1024 * 1024),
        /** Image types accepted, checked on the bytes themselves, not on what the upload claims. */
        allowed_types: z
          .array(z.enum(['image/jpeg', 'image/png', 'image/gif', 'image/webp']))
          .default(['image/jpeg', 'image/png', 'image/gif', 'image/webp']),
        /** Deadline of the vision model's answer (a VLLM block's own `timeout_ms` wins). */
        timeout_ms: positiveInt.default(30_000),
        /** Questions one device may ask per minute (the model is usually a paid one); 0 = no limit. */
        requests_per_minute: z.number().int().min(0).default(20),
      })
      .prefault({}),
    /** Hours, as in the reference; OTA sends it in minutes. */
    timezone_offset: z.number().min(-14).max(14).default(8),
    /** Key for device tokens; falls back to manager-api.secret, then to a random per-process key. */
    auth_key: z.string().default(''),
    /** Secret for admin HTTP calls and `server` actions. Empty = admin endpoints disabled. */
    admin_secret: z.string().default(''),
    auth: z
      .object({
        enabled: z.boolean().default(false),
        allowed_devices: z.array(z.string()).default([]),
        expire_seconds: z.number().int().min(0).default(2_592_000),
        /** Static tokens accepted besides signed device tokens. */
        tokens: z.array(staticToken).default([]),
        /** Device ids one address may claim (first use) per hour, so nobody squats a whole range of ids. 0 = no limit. */
        new_devices_per_hour: z.number().int().min(0).default(100),
      })
      .prefault({}),
    /** Delay before the old connection of a device is closed when a new one takes over. */
    handover_close_ms: ms.default(1500),
    max_connections: positiveInt.default(50_000),
    /** Text or binary frames above this get an error reply and are dropped. */
    max_frame_bytes: positiveInt.default(65_536),
    /** Frames above this close the socket (code 1009) before they are even buffered. */
    max_frame_hard_bytes: positiveInt.default(1_048_576),
    /** Per-connection inbound frame rate (audio is ~17 frames/s per direction). */
    max_messages_per_second: positiveInt.default(200),
    /** Outbound bytes queued per connection under back-pressure before audio is dropped. */
    send_buffer_bytes: positiveInt.default(262_144),
    /** WebSocket-level ping; a peer that misses one whole interval is dropped. 0 = off. */
    ws_ping_interval_ms: ms.default(20_000),
    /** Period of the `server.stats` broadcast to every device (C6); read each cycle, so a reload applies from the next one. 0 = only on register/unregister. */
    stats_interval_ms: ms.default(10_000),
    /**
     * Cap of the presence broadcast (`server.stats` on register/unregister), by fleet size: one presence broadcast
     * waits at least devices ÷ this seconds after the previous one (and at least 1 s), so a ramp of N devices
     * costs a bounded number of messages per second whatever N is.
     */
    presence_max_messages_per_second: positiveInt.default(2000),
    /** A connection that sends nothing at all within this time is closed. 0 = off. */
    hello_timeout_ms: ms.default(10_000),
    /** How long before an idle close the `timeout_warning` is sent. */
    idle_warning_ms: ms.default(10_000),
    /** Token for the HTTP API (/supie/...); empty = no token needed from this machine (see the next key). */
    meeting_api_token: z.string().default(''),
    /** Serve the HTTP API without a token to other machines too; off = only loopback clients when no token is set. */
    allow_open_api_on_network: z.boolean().default(false),
    /**
     * The web console at /console/ (and `/` redirects there). Log-in with admin_secret (full rights) or
     * meeting_api_token (read-only); with neither set it is read-only on loopback and refused elsewhere.
     */
    console: z
      .object({
        enabled: z.boolean().default(true),
        /** Console log-ins expire after this long without use. */
        session_ttl_ms: positiveInt.default(8 * 3_600_000),
      })
      .prefault({}),
    /** HTTP API requests per second per client address (429 beyond). 0 = unlimited. */
    api_rate_limit: z.number().int().min(0).default(10),
    /**
     * Wrong secrets (admin secret, meeting-API token, device token) one client address may present within a minute;
     * then its secrets are refused with 429, unchecked, for `backoff_ms`, doubling with each further burst.
     */
    failed_secrets: z
      .object({
        limit: positiveInt.default(10),
        backoff_ms: positiveInt.default(1_000),
        max_backoff_ms: positiveInt.default(300_000),
      })
      .prefault({}),
    /** Reload when the config file is saved (SIGHUP, the admin call and update_config always work). */
    watch_config: z.boolean().default(true),
    /** Graceful shutdown deadline. */
    shutdown_timeout_ms: ms.default(5_000),
    /**
     * Threads for audio work (Opus decode/encode, resampling, VAD), off the event loop that paces every session.
     * "auto" = one less than the CPUs, 1 to 4; 0 = on the main thread. Read at start (a change needs a restart).
     */
    audio_workers: z.union([z.literal('auto'), z.number().int().min(0).max(64)]).default('auto'),
    /**
     * libopus complexity of the downlink encoder, 0..10 (the reference uses 10). Encoding is most of the audio
     * CPU: at 24 kHz / 60 ms a frame costs ~170–330 µs at 5, ~95–140 µs at 3 and ~70 µs at 0 here. Applies to new
     * sessions. 0 at 32 kbit/s decodes within 1 dB (SNR against the source) of 5 at 24 kbit/s
     * (src/voice/opus.test.ts).
     */
    opus_complexity: z.number().int().min(0).max(10).default(0),
    /** Bit rate of the downlink encoder, bit/s (6,000–128,000). Applies to new sessions. */
    opus_bitrate: z.number().int().min(6000).max(128_000).default(32_000),
    /** Binary protocol version handed to devices in the OTA `websocket.version` field. */
    binary_protocol_version: z.union([z.literal(1), z.literal(2), z.literal(3)]).default(1),
    activation: z
      .object({
        /** When on, OTA hands unknown devices a 6-digit code and refuses their WebSocket until activated. */
        enabled: z.boolean().default(false),
        message: z.string().default('Open the Linus console and enter this code to activate the device'),
      })
      .prefault({}),
    /** `host:port` of an xiaozhi-mqtt-gateway: OTA then sends devices there (an `mqtt` block), as the reference does. */
    mqtt_gateway: z.string().optional(),
    /** Signs the MQTT passwords OTA hands out; the gateway's MQTT_SIGNATURE_KEY. */
    mqtt_signature_key: z.string().optional(),
    udp_gateway: z.string().optional(),
    /**
     * Built-in MQTT + UDP transport (the firmware's second one): an embedded MQTT broker for the JSON messages and
     * a UDP port for AES-128-CTR Opus. When on, OTA hands devices this endpoint and credentials. Read at start.
     */
    mqtt: z
      .object({
        enabled: z.boolean().default(false),
        port: port.default(1883),
        /** Host devices are given in OTA `mqtt.endpoint`; empty = the host they reached OTA at. */
        public_host: z.string().default(''),
        /**
         * `mqtt://[user:password@]host:port` of an external broker (Mosquitto, EMQX) Linus connects to as a client
         * instead of embedding one; `port` is then unused and the broker authenticates devices. Empty = embedded.
         */
        broker_url: z
          .string()
          .refine((v) => v === '' || /^(mqtts?|tcp|ssl):\/\/[^/]+/.test(v), {
            message: 'an mqtt://host:port URL (or empty for the embedded broker)',
          })
          .default(''),
        /** Prepended to the device topics on an external broker (one Linus per prefix). */
        topic_prefix: z.string().default(''),
        /**
         * Who may ask `/mqtt/auth` and `/mqtt/acl` (the external broker): addresses and CIDR blocks. Others get
         * 403: the answers say which credentials log in, so only the broker should get them. Default: loopback.
         */
        broker_auth_allow: z
          .array(z.string().refine((v) => parseCidr(v) !== undefined, { message: 'an IP address or CIDR block' }))
          .default(['127.0.0.0/8', '::1/128']),
      })
      .prefault({}),
    udp: z
      .object({
        port: port.default(8884),
        /** Host devices are given in the server hello `udp.server`; empty = the address they reached MQTT at. */
        public_host: z.string().default(''),
      })
      .prefault({}),
  })
  .prefault({});

export const logSchema = z
  .object({
    log_level: z
      .string()
      .transform((v) => v.toLowerCase())
      .pipe(z.enum(['trace', 'debug', 'info', 'warn', 'warning', 'error', 'fatal', 'silent']))
      .default('info'),
    /** Log file path; empty = stdout. A relative path is taken from the data dir. */
    log_file: z.string().default(''),
    /** Longer log messages keep their head and tail only. */
    max_message_length: positiveInt.default(2000),
    log_format: z.string().optional(),
    log_format_file: z.string().optional(),
    log_dir: z.string().optional(),
    data_dir: z.string().optional(),
  })
  .prefault({});

/**
 * Cluster mode (D16, D17): several nodes share PostgreSQL (everything durable) and Redis (routes, fan-out). Neither
 * URL set = one process on SQLite; both set = cluster mode; one alone is a start-up error. Read at start.
 */
export const clusterSchema = z
  .object({
    /** `postgres://user:pass@host:5432/db`; also env LINUS_DATABASE_URL. */
    postgres_url: z.string().default(''),
    /** `redis://host:6379`; also env LINUS_REDIS_URL. */
    redis_url: z.string().default(''),
    /** This node's name in routes and logs; empty = `<hostname>-<pid>`. */
    node_id: z.string().default(''),
    /** Prefix of every Redis key and channel of this cluster. */
    key_prefix: z.string().min(1).default('linus:'),
  })
  .prefault({});

const audioParams = z
  .object({
    format: z.literal('opus').default('opus'),
    sample_rate: z.union(OPUS_SAMPLE_RATES.map((r) => z.literal(r))).default(24000),
    channels: z.literal(1).default(1),
    frame_duration: z.union([z.literal(20), z.literal(40), z.literal(60)]).default(60),
  })
  .prefault({});

export const configSchema = z
  .object({
    server: serverSchema,
    log: logSchema,
    cluster: clusterSchema,
    'manager-api': z.object({ url: z.string().default(''), secret: z.string().default('') }).prefault({}),
    /** Server hello template; `audio_params` is what downlink audio is really encoded at. */
    xiaozhi: z
      .object({
        type: z.literal('hello').default('hello'),
        version: z.number().int().default(1),
        transport: z.literal('websocket').default('websocket'),
        audio_params: audioParams,
      })
      .prefault({}),
    close_connection_no_voice_time: positiveInt.default(120),
    delete_audio: z.boolean().default(true),
    tts_timeout: positiveInt.default(10),
    tool_call_timeout: positiveInt.default(30),
    enable_wakeup_words_response_cache: z.boolean().default(true),
    enable_greeting: z.boolean().default(true),
    enable_stop_tts_notify: z.boolean().default(false),
    stop_tts_notify_voice: z.string().optional(),
    enable_websocket_ping: z.boolean().default(false),
    tts_audio_send_delay: z.number().int().min(0).default(0),
    exit_commands: z.array(z.string()).default(['退出', '关闭', 'exit', 'goodbye']),
    wakeup_words: z.array(z.string()).default(['你好小智', '嘿你好呀', '你好小志', '小爱同学', 'hello xiaozhi']),
    prompt: z
      .string()
      .default('You are Linus, a friendly voice assistant. Answer briefly, in one or two spoken sentences.'),
    prompt_template: z.string().optional(),
    /** Spoken when a provider fails a turn (LLM or ASR error, a missed first-token/result deadline). */
    system_error_response: z.string().default("Sorry, I can't answer right now. Please try again in a moment."),
    end_prompt: z.object({ enable: z.boolean().default(false), prompt: z.string().default('') }).prefault({}),
    module_test: openBlock.optional(),
    mcp_endpoint: z.string().optional(),
    context_providers: z.array(z.unknown()).optional(),
    plugins: openBlock.optional(),
    voiceprint: openBlock.optional(),
    selected_module: z
      .object({
        VAD: z.string().default('SileroVAD'),
        ASR: z.string().default('PocketSphinxASR'),
        LLM: z.string().default(''),
        VLLM: z.string().default(''),
        TTS: z.string().default('FliteTTS'),
        Memory: z.string().default('nomem'),
        Intent: z.string().default('function_call'),
      })
      .prefault({}),
    VAD: providerCatalogue.default({
      SileroVAD: { type: 'silero', threshold: 0.5, threshold_low: 0.3, min_silence_duration_ms: 700 },
      EnergyVAD: { type: 'energy', threshold_db: -45, min_silence_duration_ms: 700 },
    }),
    ASR: providerCatalogue.default({ PocketSphinxASR: { type: 'pocketsphinx' } }),
    LLM: providerCatalogue.default({}),
    VLLM: providerCatalogue.default({}),
    TTS: providerCatalogue.default({
      FliteTTS: { type: 'flite', voice: 'slt' },
      EspeakTTS: { type: 'espeak', voice: 'en-us' },
    }),
    Memory: providerCatalogue.default({ nomem: { type: 'nomem' } }),
    Intent: providerCatalogue.default({ function_call: { type: 'function_call' } }),
    // The fork's feature blocks: their keys are validated by the features that own them.
    meeting: openBlock.default({}),
    workflow: openBlock.default({}),
    peer: openBlock.default({}),
    working: openBlock.default({}),
    coding: openBlock.default({}),
    llm_by_mode: openBlock.default({}),
    device_alias: openBlock.optional(),
  })
  .prefault({});

export type LinusConfig = z.infer<typeof configSchema>;
