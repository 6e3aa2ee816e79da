// kubectl against one test control plane, with a deadline on every call.
import { spawn } from 'node:child_process';

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface KubectlOptions {
  /** Text for stdin (e.g. a manifest for `apply -f -`). */
  input?: string;
  timeoutMs?: number;
}

const MAX_OUTPUT = 16 * 1024 * 1024;

export function runKubectl(
  kubeconfig: string,
  args: readonly string[],
  opts: KubectlOptions = {},
): Promise<KubectlResult> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = spawn('kubectl', ['--kubeconfig', kubeconfig, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const collect = (which: 'out' | 'err') => (chunk: Buffer) => {
      if (stdout.length + stderr.length > MAX_OUTPUT) return; // bounded: keep the head
      if (which === 'out') stdout += chunk.toString();
      else stderr += chunk.toString();
    };
    child.stdout.on('data', collect('out'));
    child.stderr.on('data', collect('err'));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`kubectl could not run (is it installed?): ${err.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL') {
        reject(new Error(`kubectl ${args.join(' ')} timed out after ${timeoutMs} ms\n${stderr}`));
        return;
      }
      resolve({ code: code ?? 1, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}
