/** Readings from /proc (Linux): CPU time and memory of a process, busy time of the whole box, open fds. */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** Clock ticks per second of /proc's CPU counters (USER_HZ; 100 on every Linux this runs on). */
const TICK_MS = 10;

/** User + system CPU of a process in ms (all its threads), or NaN when it is gone. */
export function cpuMs(pid: number, statPath = `/proc/${pid}/stat`): number {
  try {
    const stat = readFileSync(statPath, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_MS;
  } catch {
    return NaN;
  }
}

/**
 * User + system CPU in ms of a process's main thread (the event loop) and of all its other threads together
 * (the process's total minus the main thread: threads that ended still count there).
 */
export function threadCpuMs(pid: number): { main: number; others: number } {
  const main = cpuMs(pid, `/proc/${pid}/task/${pid}/stat`);
  return { main, others: cpuMs(pid) - main };
}

function statusKb(pid: number, field: string): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** Resident set size now, in bytes. */
export const rssBytes = (pid: number): number => statusKb(pid, 'VmRSS') * 1024;
/** Peak resident set size since the process started, in bytes. */
export const peakRssBytes = (pid: number): number => statusKb(pid, 'VmHWM') * 1024;

export function threadCount(pid: number): number {
  try {
    return Number(/Threads:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  } catch {
    return NaN;
  }
}

export function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

/** CPU time the whole box spent busy, in ms summed over cores. */
export function boxBusyMs(): number {
  const [user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]!
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) * TICK_MS;
}

export function fdHardLimit(): number {
  const m = /Max open files\s+\S+\s+(\S+)/.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m?.[1] === 'unlimited' ? Infinity : Number(m?.[1]);
}

/** CPU of several processes at one instant, for deltas over a window. */
export interface CpuSnapshot {
  at: number;
  box: number;
  byPid: Map<number, number>;
}

export function cpuSnapshot(pids: number[]): CpuSnapshot {
  return { at: performance.now(), box: boxBusyMs(), byPid: new Map(pids.map((p) => [p, cpuMs(p)])) };
}

/** CPU ms a process used between two snapshots (0 when it was not in both). */
export function cpuDelta(a: CpuSnapshot, b: CpuSnapshot, pid: number): number {
  const d = (b.byPid.get(pid) ?? NaN) - (a.byPid.get(pid) ?? NaN);
  return Number.isFinite(d) ? d : 0;
}

/** Open fds of a process by kind (socket, pipe, anon_inode:[eventfd], file...), to tell what a change is made of. */
export function fdKinds(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue; // closed while listing
      }
      const kind = /^(socket|pipe):/.exec(target)?.[1] ?? (target.startsWith('anon_inode:') ? target : 'file');
      out[kind] = (out[kind] ?? 0) + 1;
    }
  } catch {
    // the process is gone
  }
  return out;
}
