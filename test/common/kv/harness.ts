// Helpers shared by the KV tests and their child processes: key layouts both sides agree on, and
// a child process whose stdout lines can be awaited with a deadline.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { KvConfig } from '../../../daemons/common/kv/config.js';
import { encodeKey } from '../../../daemons/common/kv/keys.js';

export function doctorKey(prefix: Buffer, round: number, doctor: number): Buffer {
  return encodeKey(prefix, 'skew', round, doctor);
}

const childScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'kv-child.js');

export interface KvChild {
  proc: ChildProcess;
  /** Resolves with the next stdout line matching `pattern`; rejects after `timeoutMs` or exit. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  send(line: string): void;
  /** Every stdout line so far. */
  lines(): string[];
  /** Resolves with the exit code (or signal name) once the process is gone. */
  exited: Promise<number | string>;
  stderr(): string;
}

/**
 * A `commit-loop` child killed (SIGKILL) once it has acknowledged commit `last`; resolves after
 * it is gone, with every line it printed still readable.
 */
export async function commitLoopKilledAfter(
  config: KvConfig,
  prefix: Buffer,
  last: number,
): Promise<KvChild> {
  const child = spawnKvChild({ mode: 'commit-loop', config, prefix });
  try {
    await child.waitFor(new RegExp(`^committed ${last}$`));
  } finally {
    child.proc.kill('SIGKILL');
  }
  await child.exited;
  return child;
}

export function spawnKvChild(args: {
  mode: 'skew' | 'commit-loop' | 'stage';
  config: KvConfig;
  prefix: Buffer;
  doctor?: number;
  rounds?: number;
}): KvChild {
  const proc = spawn(
    process.execPath,
    [childScript, JSON.stringify({ ...args, prefix: args.prefix.toString('hex') })],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let errText = '';
  proc.stderr?.on('data', (chunk: Buffer) => {
    if (errText.length < 20_000) errText += chunk.toString();
  });
  const seen: string[] = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    seen.push(line);
    for (const wake of waiters.splice(0)) wake();
  });
  let done = false;
  const exited = new Promise<number | string>((resolve) => {
    proc.on('exit', (code, signal) => {
      done = true;
      for (const wake of waiters.splice(0)) wake();
      resolve(code ?? signal ?? 'unknown');
    });
  });
  let cursor = 0;
  return {
    proc,
    exited,
    stderr: () => errText,
    lines: () => seen.slice(),
    send: (line) => {
      proc.stdin?.write(`${line}\n`);
    },
    waitFor(pattern, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(new Error(`child: no line matching ${pattern} in ${timeoutMs} ms\n${errText}`)),
          timeoutMs,
        );
        const check = () => {
          while (cursor < seen.length) {
            const line = seen[cursor++] as string;
            if (pattern.test(line)) {
              clearTimeout(timer);
              resolve(line);
              return;
            }
          }
          if (done) {
            clearTimeout(timer);
            reject(new Error(`child exited before a line matching ${pattern}\n${errText}`));
            return;
          }
          waiters.push(check);
        };
        check();
      });
    },
  };
}
