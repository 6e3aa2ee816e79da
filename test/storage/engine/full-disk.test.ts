import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hasCode } from '../../../daemons/common/errors.js';
import { packageRoot } from '../../../daemons/common/native.js';
import type { ChunkEngine } from '../../../daemons/storage/engine/index.js';
import { chunkId, openTestEngine, pattern } from './helpers.js';

// A real full disk: a 64 MiB ext4 image loop-mounted (needs root, as in CI). Writes must fail with
// NO_SPACE, and every committed byte must stay readable, before and after a reopen.
const MiB = 2 ** 20;
const CHAIN = 3;
const MAX_CHUNKS = 200; // bound on the fill loop: far more than 64 MiB holds

const isRoot = process.getuid?.() === 0;

describe(
  'full disk',
  { skip: isRoot ? false : 'needs root to loop-mount a small file system' },
  () => {
    const base = mkdtempSync(path.join(path.dirname(packageRoot), '.engine-test-full-'));
    const image = path.join(base, 'disk.img');
    const mountPoint = path.join(base, 'mnt');
    let mounted = false;

    before(() => {
      mkdirSync(mountPoint);
      execFileSync('truncate', ['-s', '64M', image]);
      execFileSync('mkfs.ext4', ['-q', '-m', '0', image]);
      execFileSync('mount', ['-o', 'loop', image, mountPoint]);
      mounted = true;
    });

    after(() => {
      if (mounted) execFileSync('umount', [mountPoint]);
      rmSync(base, { recursive: true, force: true });
    });

    async function fill(engine: ChunkEngine, prefix: number) {
      const committed = new Map<number, Buffer>();
      let failure: unknown;
      for (let i = 0; i < MAX_CHUNKS; i++) {
        const id = chunkId(prefix, i);
        const data = pattern(prefix * 1000 + i, MiB);
        try {
          await engine.update({
            chainId: CHAIN,
            chunkId: id,
            updateVer: 1,
            chainVer: 1,
            kind: 'write',
            offset: 0,
            data,
            chunkSize: MiB,
          });
          await engine.commit(CHAIN, id, 1, 1);
          committed.set(i, data);
        } catch (err) {
          failure = err;
          break;
        }
      }
      return { committed, failure };
    }

    async function checkAll(engine: ChunkEngine, prefix: number, committed: Map<number, Buffer>) {
      const results = await engine.read(
        [...committed.keys()].map((i) => ({
          chainId: CHAIN,
          chunkId: chunkId(prefix, i),
          offset: 0,
          length: MiB,
        })),
      );
      [...committed.values()].forEach((data, k) => {
        const r = results[k];
        if (r === undefined || r instanceof Error) throw r ?? new Error('missing');
        assert.ok(r.data.equals(data), `chunk ${k} changed`);
      });
    }

    it('the reject-new-chunk threshold stops new chunks before the disk is full', async () => {
      const engine = await openTestEngine(mountPoint, {
        rejectNewChunksThreshold: 0.5,
        lowSpaceThreshold: 0.4,
      });
      try {
        const { committed, failure } = await fill(engine, 1);
        assert.ok(hasCode(failure, 'NO_SPACE'), `expected NO_SPACE, got ${String(failure)}`);
        assert.match((failure as Error).message, /reject-new-chunk threshold/);
        const space = engine.spaceInfo();
        assert.ok(space.rejectNewChunks && space.lowSpace);
        assert.ok(committed.size > 5 && committed.size < 40, `${committed.size} chunks`);
        // existing chunks may still be written
        const id = chunkId(1, 0);
        await engine.update({
          chainId: CHAIN,
          chunkId: id,
          updateVer: 2,
          chainVer: 1,
          kind: 'write',
          offset: 0,
          data: Buffer.from('still writable'),
          chunkSize: MiB,
        });
        await engine.commit(CHAIN, id, 2, 1);
        committed.set(
          0,
          Buffer.concat([Buffer.from('still writable'), committed.get(0)!.subarray(14)]),
        );
        await checkAll(engine, 1, committed);
        await engine.dropChain(CHAIN);
      } finally {
        await engine.close();
      }
    });

    it('a truly full disk fails writes with NO_SPACE and keeps committed data, across a reopen', async () => {
      let engine = await openTestEngine(mountPoint, {
        rejectNewChunksThreshold: 1,
        lowSpaceThreshold: 1,
      });
      let committed: Map<number, Buffer>;
      try {
        const filled = await fill(engine, 2);
        committed = filled.committed;
        assert.ok(
          hasCode(filled.failure, 'NO_SPACE'),
          `expected NO_SPACE, got ${String(filled.failure)}`,
        );
        assert.ok(committed.size > 20, `only ${committed.size} chunks fit`);
        assert.ok(engine.spaceInfo().freeBytes < 2 * MiB);
        // growing a chunk into a bigger class needs a new block: also NO_SPACE, nothing pending left
        const id = chunkId(2, 0);
        await assert.rejects(
          engine.update({
            chainId: CHAIN,
            chunkId: id,
            updateVer: 2,
            chainVer: 1,
            kind: 'write',
            offset: MiB,
            data: Buffer.alloc(MiB),
            chunkSize: 4 * MiB,
          }),
          { code: 'NO_SPACE' },
        );
        assert.equal(engine.meta(CHAIN, id)!.updateVer, 1);
        await checkAll(engine, 2, committed);
      } finally {
        await engine.close();
      }
      engine = await openTestEngine(mountPoint, {
        rejectNewChunksThreshold: 1,
        lowSpaceThreshold: 1,
      });
      try {
        await checkAll(engine, 2, committed);
        // freeing space makes writes work again, on the blocks just freed
        await engine.dropChain(CHAIN);
        const again = await fill(engine, 3);
        assert.ok(
          again.committed.size >= committed.size - 2,
          `${again.committed.size} after freeing`,
        );
      } finally {
        await engine.close();
      }
    });
  },
);
