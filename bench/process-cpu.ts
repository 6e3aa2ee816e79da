// CPU time of benchmark processes, so a figure can be read as work per operation as well as a rate:
// on a shared 2-core VM the rate moves with the host while the CPU an operation costs moves less.
import { readFileSync } from 'node:fs';
import type { DaemonProcess } from '../test/helpers/daemon-process.js';

/** CPU milliseconds a process has used so far (user + system, all threads), from /proc. */
function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime
  if (!Number.isFinite(ticks)) throw new Error(`cannot read the CPU time of process ${pid}`);
  return ticks * 10; // USER_HZ is 100 on Linux
}

/** CPU milliseconds `daemons` have used so far, together. */
function daemonsCpuMs(daemons: Iterable<DaemonProcess>): number {
  let sum = 0;
  for (const d of daemons) sum += processCpuMs(d.proc.pid ?? 0);
  return sum;
}

/** CPU milliseconds this process has used so far (user + system). */
function ownCpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Runs `work`; returns its result with the CPU milliseconds `daemons` and this process used meanwhile. */
export async function cpuDuring<T>(
  daemons: () => Iterable<DaemonProcess>,
  work: () => Promise<T>,
): Promise<{ result: T; daemonsMs: number; ownMs: number }> {
  const daemonsBefore = daemonsCpuMs(daemons());
  const ownBefore = ownCpuMs();
  const result = await work();
  return {
    result,
    daemonsMs: daemonsCpuMs(daemons()) - daemonsBefore,
    ownMs: ownCpuMs() - ownBefore,
  };
}
