// Restore points of the embedded engine (docs/kv.md, "Durability"). LMDB runs without its own
// fsyncs, so after an operating-system crash its file may hold any mix of old and new pages; it is
// then rebuilt from the newest checkpoint (an LMDB snapshot copy, fsynced) plus the write-ahead log
// after it. A process crash alone loses nothing (the page cache survives it), so rebuilding is
// needed only once per boot: the boot marker names the boot that last opened the store, and the
// first process of a new boot rebuilds before anyone opens LMDB, under a lock file.
import {
  copyFileSync,
  existsSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { ThreeFsError } from '../errors.js';
import { syncDirectory, syncFile, writeFileDurably } from '../durable-files.js';

const MARKER = 'boot-id';
const LOCK = 'recovery.lock';
export const DATA_FILE = 'data.mdb';
const LOCK_WAIT_MS = 120_000;
const LOCK_POLL_MS = 20;

export function currentBootId(): string {
  return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
}

const checkpointName = (lsn: number) => `checkpoint-${String(lsn).padStart(16, '0')}.mdb`;

/** Checkpoint lsns in `dir`, ascending. */
export function listCheckpoints(dir: string): number[] {
  return readdirSync(dir)
    .filter((name) => /^checkpoint-\d{16}\.mdb$/.test(name))
    .map((name) => Number(name.slice(11, 27)))
    .sort((a, b) => a - b);
}

/** The boot id of the boot whose processes have this store open (or last had). */
export function readBootMarker(dir: string): string | undefined {
  try {
    return readFileSync(path.join(dir, MARKER), 'utf8').trim();
  } catch {
    return undefined;
  }
}

export function writeBootMarker(dir: string, bootId: string): void {
  writeFileDurably(path.join(dir, MARKER), `${bootId}\n`);
}

/**
 * Publishes a snapshot copy `tmpFile` (already written) as the checkpoint for `lsn`, then
 * deletes older checkpoints. `lsn` must be at most the lsn inside the copy.
 */
export function publishCheckpoint(dir: string, tmpFile: string, lsn: number): void {
  syncFile(tmpFile);
  renameSync(tmpFile, path.join(dir, checkpointName(lsn)));
  syncDirectory(dir);
  for (const older of listCheckpoints(dir)) {
    if (older < lsn) unlinkSync(path.join(dir, checkpointName(older)));
  }
}

/** Replaces LMDB's data file with the newest checkpoint; LMDB must not be open anywhere. */
export function restoreNewestCheckpoint(dir: string): number | undefined {
  const newest = listCheckpoints(dir).at(-1);
  if (newest === undefined) return undefined;
  const tmp = path.join(dir, `${DATA_FILE}.restore-${process.pid}`);
  copyFileSync(path.join(dir, checkpointName(newest)), tmp);
  syncFile(tmp);
  renameSync(tmp, path.join(dir, DATA_FILE));
  syncDirectory(dir);
  return newest;
}

/**
 * Deletes what processes of earlier boots left half-made (checkpoint copies, restore copies, log
 * segments being zero-filled). Only under the recovery lock, when no process of this boot runs.
 */
export function removeLeftovers(dir: string, logDir: string): void {
  for (const name of readdirSync(dir)) {
    if (/^checkpoint\.tmp-|^data\.mdb\.restore-/.test(name)) {
      rmSync(path.join(dir, name), { recursive: true, force: true });
    }
  }
  if (!existsSync(logDir)) return;
  for (const name of readdirSync(logDir)) {
    if (/\.tmp-\d+$/.test(name)) rmSync(path.join(logDir, name), { force: true });
  }
}

/**
 * Takes the recovery lock of `dir` for boot `bootId`, or returns undefined once another process
 * of this boot has finished recovery (the marker names this boot). A lock left by an earlier boot
 * or by a process that no longer runs is taken over.
 */
export async function acquireRecoveryLock(
  dir: string,
  bootId: string,
): Promise<(() => void) | undefined> {
  const lockPath = path.join(dir, LOCK);
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    if (readBootMarker(dir) === bootId) return undefined;
    try {
      writeFileSync(lockPath, `${bootId} ${process.pid}\n`, { flag: 'wx' });
      return () => {
        if (existsSync(lockPath)) unlinkSync(lockPath);
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (lockIsStale(lockPath, bootId)) {
      try {
        unlinkSync(lockPath);
      } catch {
        // another process took it over first
      }
      continue;
    }
    if (Date.now() > deadline) {
      throw new ThreeFsError(
        'UNAVAILABLE',
        `the embedded KV store at ${dir} is being recovered by another process for over ${LOCK_WAIT_MS / 1000} s (${lockPath})`,
      );
    }
    await new Promise((r) => setTimeout(r, LOCK_POLL_MS));
  }
}

function lockIsStale(lockPath: string, bootId: string): boolean {
  let owner: string[];
  try {
    owner = readFileSync(lockPath, 'utf8').trim().split(' ');
  } catch {
    return false; // just released; the next attempt will see
  }
  if (owner[0] !== bootId) return true;
  const pid = Number(owner[1]);
  if (!Number.isInteger(pid) || pid <= 0) return true;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
