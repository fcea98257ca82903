import { startClusterHub } from './src/hub/cluster/index.js';
import { silentLogger } from './src/observability/log.js';
const p = `linus-test:rt${Date.now()}:`;
const a = await startClusterHub({ redisUrl: 'redis://127.0.0.1:6379', keyPrefix: p, nodeId: 'a', log: silentLogger() });
const b = await startClusterHub({ redisUrl: 'redis://127.0.0.1:6379', keyPrefix: p, nodeId: 'b', log: silentLogger() });
b.registry.register({ connectionId: 'c', deviceId: 'd', replacedBy() {}, deliver: () => true, deliverText: () => true });
await new Promise((r) => setTimeout(r, 200));
const rate = Number(process.argv[2] ?? 1000);
for (const round of [1, 2]) {
const l: number[] = []; const ps: Promise<unknown>[] = []; let sent = 0; const t0 = performance.now(); const cpu0 = process.cpuUsage();
while (sent < rate * 2) { const due = Math.floor((performance.now() - t0) * rate / 1000); for (; sent < due && sent < rate * 2; sent++) { const t = performance.now(); ps.push(a.registry.deliver('d', { type: 'x' }).then(() => l.push(performance.now() - t), () => l.push(9999))); } await new Promise((r) => setTimeout(r, 2)); }
await Promise.all(ps); l.sort((x, y) => x - y);
console.log(round, 'p50', l[l.length >> 1]!.toFixed(2), 'p99', l[Math.floor(l.length * 0.99)]!.toFixed(2), 'cpu ms/msg', ((process.cpuUsage(cpu0).user + process.cpuUsage(cpu0).system) / 1000 / l.length).toFixed(2));
}
await a.close(); await b.close();
