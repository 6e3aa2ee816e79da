// CPU time of benchmark processes, so a figure can be read as work per operation as well as a rate:
// on a shared 2-core VM the rate moves with the host while the CPU an operation costs moves less.
import { readFileSync } from 'node:fs';

/** CPU milliseconds a process has used so far (user + system, all threads), from /proc. */
export function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime
  if (!Number.isFinite(ticks)) throw new Error(`cannot read the CPU time of process ${pid}`);
  return ticks * 10; // USER_HZ is 100 on Linux
}

/** CPU milliseconds this process has used so far (user + system). */
export function ownCpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}
