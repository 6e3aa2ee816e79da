// The deterministic update stream of the crash test: version v of chunk i is the result of a
// seeded op applied to version v-1, so the killed child and the checking parent agree on every
// byte of every version without talking to each other.
import type { UpdateRequest } from '../../../daemons/storage/chunk-store.js';
import { mulberry32 } from '../../helpers/rng.js';
import { pattern } from './helpers.js';

export const CRASH_CHUNK_SIZE = 256 * 1024;

export interface ModelOp {
  kind: 'write' | 'truncate';
  offset: number;
  data?: Buffer;
  length?: number;
}

/** The op that makes version v of chunk i from `previous`. */
export function opAt(seed: number, chunk: number, version: number, previous: Buffer): ModelOp {
  const rng = mulberry32(seed * 1_000_003 + chunk * 10_007 + version);
  const int = (max: number) => Math.floor(rng() * max);
  const dataSeed = seed * 7919 + chunk * 104_729 + version;
  const len = previous.length;
  const room = CRASH_CHUNK_SIZE - len;
  const roll = rng();
  if (version === 1 || roll < 0.15) {
    return { kind: 'write', offset: 0, data: pattern(dataSeed, 1 + int(120_000)) };
  }
  if (roll < 0.55 && room > 0) {
    const gap = rng() < 0.3 ? int(Math.min(room, 5000)) : 0;
    return {
      kind: 'write',
      offset: len + gap,
      data: pattern(dataSeed, 1 + int(Math.min(room - gap, 20_000))),
    };
  }
  if (roll < 0.85 && len > 0) {
    const offset = int(len);
    return {
      kind: 'write',
      offset,
      data: pattern(dataSeed, 1 + int(Math.min(CRASH_CHUNK_SIZE - offset, 30_000))),
    };
  }
  return { kind: 'truncate', offset: 0, length: int(CRASH_CHUNK_SIZE / 2) };
}

export function applyOp(previous: Buffer, op: ModelOp): Buffer {
  if (op.kind === 'truncate') {
    const out = Buffer.alloc(op.length ?? 0);
    previous.copy(out, 0, 0, Math.min(out.length, previous.length));
    return out;
  }
  const data = op.data ?? Buffer.alloc(0);
  const out = Buffer.alloc(Math.max(previous.length, op.offset + data.length));
  previous.copy(out);
  data.copy(out, op.offset);
  return out;
}

/** Content of every version of a chunk, computed once per chunk and extended as needed. */
export class ChunkModel {
  private readonly versions: Buffer[] = [Buffer.alloc(0)];
  constructor(
    private readonly seed: number,
    private readonly chunk: number,
  ) {}

  content(version: number): Buffer {
    while (this.versions.length <= version) {
      const v = this.versions.length;
      this.versions.push(
        applyOp(
          this.versions[v - 1] as Buffer,
          opAt(this.seed, this.chunk, v, this.versions[v - 1] as Buffer),
        ),
      );
    }
    return this.versions[version] as Buffer;
  }

  request(chainId: number, chunkId: Buffer, version: number): UpdateRequest {
    const op = opAt(this.seed, this.chunk, version, this.content(version - 1));
    return {
      chainId,
      chunkId,
      updateVer: version,
      chainVer: 1,
      kind: op.kind,
      offset: op.offset,
      chunkSize: CRASH_CHUNK_SIZE,
      ...(op.data ? { data: op.data } : {}),
      ...(op.length !== undefined ? { length: op.length } : {}),
    };
  }
}
