// Making files and directory entries survive a machine crash: fsync the file, then its directory
// (a created or renamed name is metadata of the directory). Shared by the storage target
// registry, the chunk engine's data files and the embedded KV store's log and checkpoints.
import { closeSync, fdatasyncSync, fsyncSync, openSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Opens `target`, runs `sync` on its descriptor, closes it. */
function syncOpened(target: string, flags: string, sync: (fd: number) => void): void {
  const fd = openSync(target, flags);
  try {
    sync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Makes a directory's entries (a file created, renamed or removed in it) durable. */
export function syncDirectory(dir: string): void {
  syncOpened(dir, 'r', fsyncSync);
}

/** Makes a file's data durable (fdatasync: its size too, not its timestamps). */
export function syncFile(file: string): void {
  syncOpened(file, 'r+', fdatasyncSync);
}

/**
 * Replaces `file` with `content` atomically and durably: a reader, or the disk after a crash,
 * sees the old content or the new, never a mix. The temporary name carries the pid, so processes
 * writing the same file never share one.
 */
export function writeFileDurably(file: string, content: string): void {
  const temp = `${file}.tmp-${process.pid}`;
  writeFileSync(temp, content);
  syncFile(temp);
  renameSync(temp, file);
  syncDirectory(path.dirname(file));
}
