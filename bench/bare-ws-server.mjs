// The baseline of the idle and control profiles (bench/lib/transport-load.ts), in plain JavaScript so neither server runs through a TypeScript loader:
// the least a server must do to speak the same ping/hello subset as Linus. Plain `ws` (no deflate, as Linus),
// one JSON.parse per text frame (any protocol server parses), a pong for a ping and a hello-shaped reply for a
// hello. GET /health answers with the open connection count.
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { WebSocketServer } from 'ws';

const PONG = '{"type":"pong"}';
const { values } = parseArgs({ options: { port: { type: 'string' } } });
const AUDIO_PARAMS = { format: 'opus', sample_rate: 24000, channels: 1, frame_duration: 60 };
let connections = 0;

const http = createServer((req, res) => {
  if (req.url !== '/health') return void res.writeHead(404).end();
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok', connections }));
});
const wss = new WebSocketServer({ server: http, perMessageDeflate: false, clientTracking: false });

wss.on('connection', (ws) => {
  connections++;
  ws.on('close', () => connections--);
  ws.on('error', () => ws.terminate());
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    let type;
    try {
      type = JSON.parse(String(data)).type;
    } catch {
      return;
    }
    if (type === 'ping') ws.send(PONG);
    else if (type === 'hello') {
      ws.send(
        JSON.stringify({
          type: 'hello',
          version: 1,
          transport: 'websocket',
          session_id: randomUUID(),
          audio_params: AUDIO_PARAMS,
        }),
      );
    }
  });
});

http.listen(Number(values.port), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
// Spawned with an IPC channel: when the orchestrator goes away, so does this server.
process.on('disconnect', () => process.exit(0));
