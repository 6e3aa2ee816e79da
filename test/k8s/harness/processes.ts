// Child processes of the test control plane. Each runs in a process group of its own, logs to a
// file, and is remembered by PID so stop() signals exactly the groups this module started, never
// anything found by name. An exit hook kills them if the test runner dies first.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, openSync, closeSync, readFileSync } from 'node:fs';

export interface Managed {
  name: string;
  pid: number;
  logFile: string;
  /** Set once the process has exited. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  exited: Promise<void>;
}

const running = new Set<Managed>();
let hookInstalled = false;

function installExitHook(): void {
  if (hookInstalled) return;
  hookInstalled = true;
  process.on('exit', () => {
    for (const proc of running) killGroup(proc.pid, 'SIGKILL');
  });
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is already gone
  }
}

/** The last lines of a log, for error messages. */
export function tail(file: string, lines = 25): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Starts `command args` detached in its own process group, stdout and stderr to logFile. */
export function startProcess(
  name: string,
  command: string,
  args: readonly string[],
  logFile: string,
  pidFile: string,
): Managed {
  installExitHook();
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(command, args, { detached: true, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  if (child.pid === undefined) throw new Error(`could not start ${name} (${command})`);
  const managed: Managed = {
    name,
    pid: child.pid,
    logFile,
    exit: undefined,
    exited: new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        managed.exit = { code, signal };
        running.delete(managed);
        resolve();
      });
      child.once('error', () => resolve());
    }),
  };
  running.add(managed);
  appendFileSync(pidFile, `${child.pid} ${name}\n`);
  return managed;
}

/** Stops one process group: SIGTERM, then SIGKILL after graceMs. Bounded; never throws. */
export async function stopProcess(proc: Managed, graceMs = 5_000): Promise<void> {
  if (proc.exit) return;
  killGroup(proc.pid, 'SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), graceMs);
  });
  const gone = await Promise.race([proc.exited.then(() => false), timedOut]);
  clearTimeout(timer);
  if (gone) {
    killGroup(proc.pid, 'SIGKILL');
    await Promise.race([proc.exited, new Promise((resolve) => setTimeout(resolve, 2_000))]);
  }
  // The leader may be gone while others in its group live on: sweep the group once more.
  killGroup(proc.pid, 'SIGKILL');
}
