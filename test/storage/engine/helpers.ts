// Shared by the engine tests: temp disk directories on a real file system (so O_DIRECT is
// exercised), quiet loggers, chunk ids, deterministic bytes.
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { packageRoot } from '../../../daemons/common/native.js';
import { openChunkEngine, type ChunkEngine } from '../../../daemons/storage/engine/index.js';
import type { ChunkEngineOptions } from '../../../daemons/storage/engine/config.js';

export const quietLog = pino({ level: 'silent' });

/** A fresh directory next to the repository (/work is ext4 here; /tmp may be tmpfs elsewhere). */
export function tempDisk(name: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(path.dirname(packageRoot), `.engine-test-${name}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function openTestEngine(
  dir: string,
  options: Partial<ChunkEngineOptions> = {},
): Promise<ChunkEngine> {
  return openChunkEngine(
    { path: dir, filesPerClass: 2, extendBytes: 4 * 2 ** 20, ...options },
    quietLog,
  );
}

export function chunkId(inode: number, index: number): Buffer {
  const id = Buffer.alloc(16);
  id.writeBigUInt64BE(BigInt(inode), 2);
  id.writeUInt32BE(index, 12);
  return id;
}

/** Deterministic bytes from a seed (xorshift32), different for every seed. */
export function pattern(seed: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}
