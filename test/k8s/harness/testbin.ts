// Finds the control-plane binaries test/k8s/testbin.sh built. The script owns the versions and the
// cache key; this asks it for the directory instead of repeating them.
import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const TESTBIN_BINARIES = [
  'etcd',
  'kube-apiserver',
  'kwok',
  'kube-controller-manager',
  'kube-scheduler',
  'csi-sanity',
  'helm',
] as const;
export type TestbinBinary = (typeof TESTBIN_BINARIES)[number];

export interface Testbin {
  dir: string;
  bin(name: TestbinBinary): string;
  /** kwok's Stage documents (copied from its Go module by testbin.sh). */
  kwokStages: string;
}

/** The repository root, from dist/test/k8s/harness or test/k8s/harness. */
export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    dir = path.dirname(dir);
  }
  throw new Error('cannot find the repository root above ' + fileURLToPath(import.meta.url));
}

/**
 * Locates the testbin and checks that the given binaries are there; throws a message saying how
 * to build them otherwise. Kubernetes tests call this first, so a missing binary fails them
 * loudly instead of skipping.
 */
export function findTestbin(needed: readonly TestbinBinary[] = TESTBIN_BINARIES): Testbin {
  const script = path.join(repoRoot(), 'test', 'k8s', 'testbin.sh');
  const dir =
    process.env.THREEFS_TESTBIN_DIR ??
    execFileSync('bash', [script, '--print-dir'], { encoding: 'utf8', timeout: 10_000 }).trim();
  const missing = needed.filter((name) => {
    try {
      accessSync(path.join(dir, 'bin', name), constants.X_OK);
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length > 0) {
    throw new Error(
      `Kubernetes test binaries missing from ${dir}/bin: ${missing.join(', ')}. ` +
        `Build them with: bash test/k8s/testbin.sh (npm test runs it; a cold build takes 15-30 min)`,
    );
  }
  return {
    dir,
    bin: (name) => path.join(dir, 'bin', name),
    kwokStages: path.join(dir, 'kwok-stages'),
  };
}
