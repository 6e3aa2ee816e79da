// fio on a directory, the machine's own disk limit that every storage benchmark is compared with
// in the same run. Returns null when fio is missing or fails (the caller says so).
import { spawnSync } from 'node:child_process';

export interface FioMeasure {
  ops: number;
  seconds: number;
  mibPerSec: number;
  iops: number;
}

const MiB = 1024 * 1024;
/** Seconds each fio pass runs before it counts (fio's ramp_time; added to the runtime). */
export const RAMP_SECONDS = 1;
const round = (value: number) => Math.round(value * 100) / 100;

/** Runs one fio job (direct I/O, io_uring) for `seconds` in `dir`; `args` choose the workload. */
export function fio(
  dir: string,
  args: string[],
  seconds: number,
): { measure: FioMeasure | null; command: string; error?: string } {
  const full = [
    '--name=bench',
    `--directory=${dir}`,
    '--filename=fio.data',
    '--size=320M',
    '--ioengine=io_uring',
    '--direct=1',
    `--runtime=${seconds}`,
    // Not counted: the first second of every pass, on every target alike. A pass on the mount
    // starts on daemons that have not run that workload yet (JIT, first use of pools and chunk
    // slots): 3 s of sequential 1 MiB writes measured 101 MiB/s cold, 177-193 MiB/s by hand on a
    // cluster that had written before.
    `--ramp_time=${RAMP_SECONDS}`,
    '--time_based',
    '--output-format=json',
    ...args,
  ];
  const command = `fio ${full.filter((a) => !a.startsWith('--directory') && !a.startsWith('--output')).join(' ')}`;
  const result = spawnSync('fio', full, {
    encoding: 'utf8',
    timeout: (seconds + RAMP_SECONDS + 60) * 1000,
  });
  if (result.status !== 0) {
    return { measure: null, command, error: result.error?.message ?? result.stderr.slice(0, 200) };
  }
  const job = (
    JSON.parse(result.stdout) as {
      jobs: Array<
        Record<string, { io_bytes: number; iops: number; runtime: number; total_ios: number }>
      >;
    }
  ).jobs[0];
  const side = args.some((a) => a.includes('read')) ? job?.read : job?.write;
  if (!side) return { measure: null, command };
  const elapsed = side.runtime / 1000;
  return {
    measure: {
      ops: side.total_ios,
      seconds: round(elapsed),
      mibPerSec: round(side.io_bytes / MiB / elapsed),
      iops: Math.round(side.iops),
    },
    command,
  };
}
