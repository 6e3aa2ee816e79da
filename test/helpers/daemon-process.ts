// Starts a real daemon process from dist/ and waits for its "<role> ready" log line, which carries
// the addresses it bound. Every process started here is killed when the test's cleanup runs.
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const distRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface DaemonProcess {
  proc: ChildProcess;
  ready: Record<string, unknown>;
  /** Every JSON log line so far. */
  lines: Array<Record<string, unknown>>;
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Resolves with the first log line (past or future) matching `match`, or rejects on timeout. */
  waitForLog(
    match: (line: Record<string, unknown>) => boolean,
    timeoutMs: number,
  ): Promise<Record<string, unknown>>;
}

export async function startDaemon(
  role: 'mgmtd' | 'meta' | 'storage' | 'fuse',
  args: string[],
  options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<DaemonProcess> {
  const script = path.join(distRoot, 'daemons', role, 'main.js');
  // THREEFS_DAEMON_NODE_ARGS adds node flags to every daemon a test or bench starts, for profiling
  // (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", which NODE_OPTIONS does not accept).
  const nodeArgs = (process.env.THREEFS_DAEMON_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const proc = spawn(process.execPath, [...nodeArgs, '--enable-source-maps', script, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, THREEFS_LOG_LEVEL: 'info', ...options.env },
  });
  const lines: Array<Record<string, unknown>> = [];
  const waiters = new Set<{
    match: (l: Record<string, unknown>) => boolean;
    resolve: (l: Record<string, unknown>) => void;
  }>();
  let stderr = '';
  proc.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-8_000);
  });
  // THREEFS_TEST_LOG_DIR keeps every daemon's log lines, one file per process, for post-mortems of
  // a failure that a rerun does not reproduce.
  const logDir = process.env.THREEFS_TEST_LOG_DIR;
  const logFile = logDir ? path.join(logDir, `${role}-${proc.pid}.log`) : undefined;
  if (logDir) mkdirSync(logDir, { recursive: true });
  createInterface({ input: proc.stdout! }).on('line', (text) => {
    if (logFile) appendFileSync(logFile, `${text}\n`);
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    if (lines.length < 20_000) lines.push(line);
    for (const waiter of waiters) {
      if (waiter.match(line)) {
        waiters.delete(waiter);
        waiter.resolve(line);
      }
    }
  });
  const exited = new Promise<string>((resolve) =>
    proc.once('exit', (code, signal) => resolve(`exited ${code ?? signal}`)),
  );

  const waitForLog = (match: (line: Record<string, unknown>) => boolean, timeoutMs: number) => {
    const seen = lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const waiter = { match, resolve };
      waiters.add(waiter);
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(
          new Error(
            `${role}: no matching log line within ${timeoutMs} ms; stderr: ${stderr.slice(-2_000)}`,
          ),
        );
      }, timeoutMs);
      waiter.resolve = (line) => {
        clearTimeout(timer);
        resolve(line);
      };
      void exited.then((how) => {
        if (waiters.has(waiter)) {
          clearTimeout(timer);
          waiters.delete(waiter);
          reject(
            new Error(
              `${role} ${how} before the expected log line; stderr: ${stderr.slice(-2_000)}`,
            ),
          );
        }
      });
    });
  };

  const ready = await waitForLog((l) => l.msg === `${role} ready`, options.timeoutMs ?? 15_000);
  return {
    proc,
    ready,
    lines,
    waitForLog,
    kill: async (signal = 'SIGTERM') => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill(signal);
      await exited;
    },
  };
}
