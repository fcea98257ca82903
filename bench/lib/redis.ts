/** What the cluster profiles (bus, cluster) share about the machine's Redis: the run's own keys, deleted at the end. */
import { Redis } from 'ioredis';

export const benchRedisUrl = (): string => process.env.LINUS_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Deletes every key under `prefix` (the run's own). Redis gone at the end: nothing to delete (it keeps no disk here). */
export async function dropPrefix(redisUrl: string, prefix: string): Promise<void> {
  const admin = new Redis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
  admin.on('error', () => {
    // Seen by the commands below, which give up: the keys expire with the server or stay under the run's prefix.
  });
  try {
    await admin.connect();
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length) await admin.del(...keys);
    } while (cursor !== '0');
  } catch {
    // Nothing to clean when Redis cannot be reached.
  } finally {
    admin.disconnect();
  }
}
