import assert from 'node:assert/strict';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { crc32c } from '../../../daemons/common/crc32c.js';
import { slice } from '../../../daemons/common/pooled-views.js';
import type { ChunkMeta, ReadResult } from '../../../daemons/storage/chunk-store.js';
import type { ChunkEngine } from '../../../daemons/storage/engine/index.js';
import { classBytes, CLASS_COUNT } from '../../../daemons/storage/engine/size-classes.js';
import { chunkId, openTestEngine, pattern, tempDisk } from './helpers.js';

setFlagsFromString('--expose-gc');

const MiB = 2 ** 20;
const CHAIN = 7;

function ok(result: ReadResult | Error | undefined): ReadResult {
  if (result === undefined) throw new Error('no result');
  if (result instanceof Error) throw result;
  return result;
}

async function readAll(engine: ChunkEngine, id: Buffer, chain = CHAIN): Promise<ReadResult> {
  const [result] = await engine.read([
    { chainId: chain, chunkId: id, offset: 0, length: 64 * MiB },
  ]);
  return ok(result);
}

/** Writes as the next version and commits it; returns the committed meta. */
async function writeCommit(
  engine: ChunkEngine,
  id: Buffer,
  change: {
    kind?: 'write' | 'truncate' | 'remove';
    offset?: number;
    data?: Buffer;
    length?: number;
  },
  chunkSize = 64 * MiB,
): Promise<ChunkMeta> {
  const updateVer = (engine.meta(CHAIN, id)?.commitVer ?? 0) + 1;
  await engine.update({
    chainId: CHAIN,
    chunkId: id,
    updateVer,
    chainVer: 1,
    kind: change.kind ?? 'write',
    offset: change.offset ?? 0,
    chunkSize,
    ...(change.data ? { data: change.data } : {}),
    ...(change.length !== undefined ? { length: change.length } : {}),
  });
  return engine.commit(CHAIN, id, updateVer, 1);
}

/** The model of a chunk's content after a write. */
function applyWrite(model: Buffer, offset: number, data: Buffer): Buffer {
  const out = Buffer.alloc(Math.max(model.length, offset + data.length));
  model.copy(out);
  data.copy(out, offset);
  return out;
}

function applyTruncate(model: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  model.copy(out, 0, 0, Math.min(length, model.length));
  return out;
}

describe('chunk engine', () => {
  const disk = tempDisk('engine');
  let engine: ChunkEngine;
  before(async () => {
    engine = await openTestEngine(disk.dir);
  });
  after(async () => {
    await engine.close();
    disk.cleanup();
  });

  it('uses io_uring and O_DIRECT on this file system', () => {
    const status = engine.status();
    assert.equal(status.ioBackend, 'io_uring', String(status.ioFallbackReason));
    assert.equal(status.directIo, true);
  });

  it('round-trips a chunk of every size class, byte-exact with its CRC32C', async () => {
    for (let cls = 0; cls < CLASS_COUNT; cls++) {
      const id = chunkId(100, cls);
      const data = pattern(cls, classBytes(cls) - 3);
      const meta = await writeCommit(engine, id, { data });
      assert.equal(meta.chunkSize, classBytes(cls));
      assert.equal(meta.length, data.length);
      assert.equal(meta.checksum, crc32c(data));
      const read = await readAll(engine, id);
      assert.ok(read.data.equals(data), `class ${cls}`);
      // and a small read in the middle, verified by its own granules only
      const [mid] = await engine.read([{ chainId: CHAIN, chunkId: id, offset: 5000, length: 3 }]);
      assert.ok(ok(mid).data.equals(data.subarray(5000, 5003)));
      await writeCommit(engine, id, { kind: 'remove' });
    }
  });

  it('every update kind, against a model, with copy-on-write or in place as planned', async () => {
    const id = chunkId(1, 1);
    let model: Buffer = Buffer.alloc(0);
    const steps: Array<{
      name: string;
      change: Parameters<typeof writeCommit>[2];
      apply: (m: Buffer) => Buffer;
      where: 'new' | 'same';
    }> = [
      {
        name: 'create',
        change: { data: pattern(1, 10_000) },
        apply: (m) => applyWrite(m, 0, pattern(1, 10_000)),
        where: 'new',
      },
      {
        name: 'append',
        change: { offset: 10_000, data: pattern(2, 5000) },
        apply: (m) => applyWrite(m, 10_000, pattern(2, 5000)),
        where: 'same',
      },
      {
        name: 'append after a gap',
        change: { offset: 20_000, data: pattern(3, 100) },
        apply: (m) => applyWrite(m, 20_000, pattern(3, 100)),
        where: 'same',
      },
      {
        name: 'overwrite inside',
        change: { offset: 4000, data: pattern(4, 300) },
        apply: (m) => applyWrite(m, 4000, pattern(4, 300)),
        where: 'new',
      },
      {
        name: 'truncate shorter',
        change: { kind: 'truncate', length: 6001 },
        apply: (m) => applyTruncate(m, 6001),
        where: 'same',
      },
      {
        name: 'truncate longer',
        change: { kind: 'truncate', length: 9000 },
        apply: (m) => applyTruncate(m, 9000),
        where: 'same',
      },
      {
        name: 'append past the block',
        change: { offset: 9000, data: pattern(5, 100_000) },
        apply: (m) => applyWrite(m, 9000, pattern(5, 100_000)),
        where: 'new',
      },
      {
        name: 'overwrite across the end',
        change: { offset: 100_000, data: pattern(6, 20_000) },
        apply: (m) => applyWrite(m, 100_000, pattern(6, 20_000)),
        where: 'new',
      },
      {
        name: 'truncate to zero',
        change: { kind: 'truncate', length: 0 },
        apply: () => Buffer.alloc(0),
        where: 'same',
      },
      {
        name: 'write into empty',
        change: { offset: 3, data: pattern(7, 3) },
        apply: (m) => applyWrite(m, 3, pattern(7, 3)),
        where: 'new',
      },
    ];
    for (const step of steps) {
      const before = engine.locate(CHAIN, id)?.committed ?? null;
      const updateVer = (engine.meta(CHAIN, id)?.commitVer ?? 0) + 1;
      const pendingMeta = await engine.update({
        chainId: CHAIN,
        chunkId: id,
        updateVer,
        chainVer: 1,
        kind: step.change?.kind ?? 'write',
        offset: step.change?.offset ?? 0,
        chunkSize: 64 * MiB,
        ...(step.change?.data ? { data: step.change.data } : {}),
        ...(step.change?.length !== undefined ? { length: step.change.length } : {}),
      });
      const next = step.apply(model);
      assert.equal(pendingMeta.updateVer, updateVer);
      assert.equal(pendingMeta.pendingLength, next.length, step.name);
      assert.equal(pendingMeta.pendingChecksum, crc32c(next), step.name);
      // readers still see the committed version while the update is pending
      assert.ok((await readAll(engine, id)).data.equals(model), `${step.name}: committed intact`);
      assert.ok((await engine.readPending(CHAIN, id)).equals(next), `${step.name}: pending`);
      const pending = engine.locate(CHAIN, id)?.pending ?? null;
      if (step.where === 'same' && next.length > 0) assert.deepEqual(pending, before, step.name);
      if (step.where === 'new') assert.notDeepEqual(pending, before, step.name);
      const meta = await engine.commit(CHAIN, id, updateVer, 1);
      model = next;
      assert.equal(meta.length, model.length);
      assert.equal(meta.checksum, crc32c(model), step.name);
      assert.ok((await readAll(engine, id)).data.equals(model), step.name);
    }
  });

  it('remove is pending until committed, then the chunk is gone', async () => {
    const id = chunkId(1, 2);
    await writeCommit(engine, id, { data: pattern(9, 1000) });
    const pending = await engine.update({
      chainId: CHAIN,
      chunkId: id,
      updateVer: 2,
      chainVer: 1,
      kind: 'remove',
      offset: 0,
      chunkSize: MiB,
    });
    assert.equal(pending.pendingRemove, true);
    assert.ok((await readAll(engine, id)).data.equals(pattern(9, 1000)));
    const final = await engine.commit(CHAIN, id, 2, 1);
    assert.equal(final.commitVer, 2);
    assert.equal(engine.meta(CHAIN, id), undefined);
    await assert.rejects(engine.commit(CHAIN, id, 2, 1), { code: 'NOT_FOUND' });
    const [gone] = await engine.read([{ chainId: CHAIN, chunkId: id, offset: 0, length: 1 }]);
    assert.ok(gone instanceof Error && 'code' in gone && gone.code === 'NOT_FOUND');
  });

  it('apply-and-commit (the last replica) commits in one metadata commit, COW, in place and remove', async () => {
    const id = chunkId(1, 3);
    const step = (updateVer: number, change: Partial<Parameters<ChunkEngine['update']>[0]>) =>
      engine.update({
        chainId: CHAIN,
        chunkId: id,
        updateVer,
        chainVer: 2,
        kind: 'write',
        offset: 0,
        chunkSize: MiB,
        commitChainVer: 3,
        ...change,
      });
    const commitsBefore = engine.metadataCommits();
    const first = await step(1, { data: pattern(40, 10_000) });
    assert.equal(engine.metadataCommits() - commitsBefore, 1);
    assert.deepEqual(
      [first.commitVer, first.updateVer, first.chainVer, first.length, first.pendingLength],
      [1, 1, 3, 10_000, undefined],
    );
    assert.equal(first.checksum, crc32c(pattern(40, 10_000)));
    const firstBlock = engine.locate(CHAIN, id)!.committed;
    assert.equal(engine.locate(CHAIN, id)!.pending, null);
    // An append that fits: written in place, committed at once.
    const appended = await step(2, { offset: 10_000, data: pattern(41, 5_000) });
    assert.deepEqual(engine.locate(CHAIN, id)!.committed, firstBlock);
    const model = Buffer.concat([pattern(40, 10_000), pattern(41, 5_000)]);
    assert.equal(appended.checksum, crc32c(model));
    assert.ok((await readAll(engine, id)).data.equals(model));
    // An overwrite: copy-on-write, the old block goes back to the allocator.
    await step(3, { offset: 0, data: pattern(42, 100), commitChainVer: 1 });
    assert.notDeepEqual(engine.locate(CHAIN, id)!.committed, firstBlock);
    assert.equal(engine.meta(CHAIN, id)!.chainVer, 3, 'the chain version never goes back');
    model.set(pattern(42, 100), 0);
    assert.ok((await readAll(engine, id)).data.equals(model));
    // A next version must still follow the committed one.
    await assert.rejects(step(5, { data: pattern(43, 1) }), { code: 'FAILED_PRECONDITION' });
    assert.equal(
      engine.usedBytes(CHAIN),
      engine.listMeta(CHAIN).reduce((sum, m) => sum + m.length, 0),
    );
    const removed = await step(4, { kind: 'remove' });
    assert.deepEqual([removed.commitVer, removed.length], [4, 0]);
    assert.equal(engine.meta(CHAIN, id), undefined);
    await assert.rejects(step(1, { data: pattern(43, 1), commitChainVer: -1 }), {
      code: 'INVALID_ARGUMENT',
    });
  });
  it('commit, stale commit, abort, and version rules', async () => {
    const id = chunkId(1, 3);
    await writeCommit(engine, id, { data: pattern(10, 5000) });
    // wrong next version, and a second pending version, are refused
    await assert.rejects(
      engine.update({
        chainId: CHAIN,
        chunkId: id,
        updateVer: 3,
        chainVer: 1,
        kind: 'write',
        offset: 0,
        data: Buffer.from('x'),
        chunkSize: MiB,
      }),
      { code: 'FAILED_PRECONDITION' },
    );
    await engine.update({
      chainId: CHAIN,
      chunkId: id,
      updateVer: 2,
      chainVer: 2,
      kind: 'write',
      offset: 0,
      data: Buffer.from('abc'),
      chunkSize: MiB,
      requestId: 42,
    });
    await assert.rejects(
      engine.update({
        chainId: CHAIN,
        chunkId: id,
        updateVer: 2,
        chainVer: 2,
        kind: 'write',
        offset: 0,
        data: Buffer.from('x'),
        chunkSize: MiB,
      }),
      { code: 'FAILED_PRECONDITION' },
    );
    await assert.rejects(engine.commit(CHAIN, id, 3, 2), { code: 'FAILED_PRECONDITION' });
    // a stale commit changes nothing
    const stale = await engine.commit(CHAIN, id, 1, 1);
    assert.equal(stale.commitVer, 1);
    assert.equal(stale.updateVer, 2);
    assert.equal(stale.lastRequestId, 42);
    // abort drops the pending version and keeps the committed bytes
    await engine.abortPending(CHAIN, id);
    const meta = engine.meta(CHAIN, id)!;
    assert.equal(meta.updateVer, 1);
    assert.equal(meta.pendingLength, undefined);
    assert.ok((await readAll(engine, id)).data.equals(pattern(10, 5000)));
    await engine.abortPending(CHAIN, id); // nothing pending: a no-op
    // commit records the higher chain version
    await engine.update({
      chainId: CHAIN,
      chunkId: id,
      updateVer: 2,
      chainVer: 3,
      kind: 'truncate',
      offset: 0,
      length: 10,
      chunkSize: MiB,
    });
    assert.equal((await engine.commit(CHAIN, id, 2, 3)).chainVer, 3);
    // a chunk that never committed disappears on abort
    const fresh = chunkId(1, 4);
    await engine.update({
      chainId: CHAIN,
      chunkId: fresh,
      updateVer: 1,
      chainVer: 1,
      kind: 'write',
      offset: 0,
      data: Buffer.from('new'),
      chunkSize: MiB,
    });
    assert.equal(engine.meta(CHAIN, fresh)?.commitVer, 0);
    await engine.abortPending(CHAIN, fresh);
    assert.equal(engine.meta(CHAIN, fresh), undefined);
  });

  it('a syncing update replaces the whole chunk and takes the sender numbering', async () => {
    const id = chunkId(1, 5);
    await writeCommit(engine, id, { data: pattern(11, 3000) });
    await engine.update({
      chainId: CHAIN,
      chunkId: id,
      updateVer: 2,
      chainVer: 1,
      kind: 'write',
      offset: 3000,
      data: pattern(12, 10),
      chunkSize: MiB,
    });
    const synced = await engine.update({
      chainId: CHAIN,
      chunkId: id,
      updateVer: 9,
      chainVer: 2,
      kind: 'write',
      offset: 0,
      data: pattern(13, 700),
      chunkSize: MiB,
      syncing: true,
    });
    assert.equal(synced.commitVer, 8);
    assert.equal(synced.updateVer, 9);
    assert.ok((await engine.readPending(CHAIN, id)).equals(pattern(13, 700)));
    await engine.commit(CHAIN, id, 9, 2);
    assert.ok((await readAll(engine, id)).data.equals(pattern(13, 700)));
  });

  it('readers during a stream of updates always see exactly one committed version', async () => {
    const id = chunkId(2, 0);
    const versions = new Map<number, Buffer>();
    let model: Buffer = pattern(20, 50_000);
    versions.set((await writeCommit(engine, id, { data: model })).commitVer, model);
    let writing = true;
    const writer = (async () => {
      for (let i = 0; i < 30; i++) {
        const change =
          i % 3 === 0
            ? { offset: model.length, data: pattern(100 + i, 2000) } // in place
            : { offset: (i * 997) % model.length, data: pattern(100 + i, 3000) }; // copy-on-write
        const next = applyWrite(model, change.offset, change.data);
        const updateVer = engine.meta(CHAIN, id)!.commitVer + 1;
        versions.set(updateVer, next); // known before any reader can see it
        await writeCommit(engine, id, change);
        model = next;
      }
      writing = false;
    })();
    let reads = 0;
    while (writing && reads < 2000) {
      const results = await engine.read(
        Array.from({ length: 4 }, (_, k) => ({
          chainId: CHAIN,
          chunkId: id,
          offset: k * 7000,
          length: 30_000,
        })),
      );
      results.forEach((result, k) => {
        const r = ok(result);
        const expected = versions.get(r.meta.commitVer);
        assert.ok(expected, `version ${r.meta.commitVer} was never written`);
        assert.ok(
          r.data.equals(expected.subarray(k * 7000, k * 7000 + 30_000)),
          `torn read of v${r.meta.commitVer}`,
        );
      });
      reads++;
    }
    await writer;
    assert.ok(reads > 5, `only ${reads} read rounds ran during the writes`);
  });

  it('listMeta: chain prefixes, ranges and limits in chunk id order', async () => {
    for (const [chain, inode, index] of [
      [30, 5, 2],
      [30, 5, 0],
      [30, 6, 0],
      [31, 5, 1],
      [29, 9, 9],
    ] as const) {
      await engine.update({
        chainId: chain,
        chunkId: chunkId(inode, index),
        updateVer: 1,
        chainVer: 1,
        kind: 'write',
        offset: 0,
        data: Buffer.from([index]),
        chunkSize: MiB,
      });
    }
    const ids = (metas: ChunkMeta[]) =>
      metas.map((m) => `${m.chunkId.readBigUInt64BE(2)}:${m.chunkId.readUInt32BE(12)}`);
    assert.deepEqual(ids(engine.listMeta(30)), ['5:0', '5:2', '6:0']);
    assert.deepEqual(ids(engine.listMeta(30, chunkId(5, 1), chunkId(6, 0))), ['5:2']);
    assert.deepEqual(ids(engine.listMeta(30, undefined, undefined, 2)), ['5:0', '5:2']);
    assert.deepEqual(ids(engine.listMeta(31)), ['5:1']);
    assert.deepEqual(engine.listMeta(32), []);
    assert.equal(engine.listMeta(30)[0]!.pendingLength, 1);
    await engine.dropChain(30);
    assert.deepEqual(engine.listMeta(30), []);
    assert.deepEqual(ids(engine.listMeta(31)), ['5:1']);
  });

  it('read bytes stay valid while any slice of them lives, though pool blocks are reused', async () => {
    const gc = runInNewContext('gc') as () => void;
    const ids = [0, 1, 2, 3].map((i) => chunkId(9_100, i));
    for (const [i, id] of ids.entries())
      await writeCommit(engine, id, { data: pattern(90 + i, MiB) });
    // A slice outlives the result it came from; the result's view is then collected.
    const sliceOfRead = async (cut: (data: Buffer) => Buffer) => {
      const [first] = await engine.read([
        { chainId: CHAIN, chunkId: ids[0]!, offset: 0, length: MiB },
      ]);
      return cut(ok(first).data);
    };
    const kept = await sliceOfRead((data) => slice(data, 4096, 8192));
    const poolBefore = engine.status().readPool;
    for (let round = 0; round < 8; round++) {
      gc();
      await new Promise((resolve) => setImmediate(resolve));
      // Other chunks only: blocks the slice's memory went back to would get different bytes.
      const batch = await engine.read(
        ids.slice(1).map((id) => ({ chainId: CHAIN, chunkId: id, offset: 0, length: MiB })),
      );
      for (const [i, r] of batch.entries()) assert.ok(ok(r).data.equals(pattern(91 + i, MiB)));
    }
    assert.ok(kept.equals(pattern(90, MiB).subarray(4096, 8192)), 'the slice was overwritten');
    assert.ok(poolBefore.totalBytes > 0, 'reads came from the pool');
    assert.equal(engine.status().readPool.badReleases, 0);
  });

  it('reuses a freed block for the next chunk of its class', async () => {
    const a = chunkId(3, 0);
    await writeCommit(engine, a, { data: pattern(30, 200_000) });
    const first = engine.locate(CHAIN, a)!.committed!;
    await writeCommit(engine, a, { offset: 0, data: pattern(31, 100) }); // COW: frees `first`
    assert.notDeepEqual(engine.locate(CHAIN, a)!.committed, first);
    const b = chunkId(3, 1);
    await writeCommit(engine, b, { data: pattern(32, 200_000) });
    assert.deepEqual(engine.locate(CHAIN, b)!.committed, first);
    assert.ok((await readAll(engine, b)).data.equals(pattern(32, 200_000)));
  });

  it('a flipped byte on disk is CHECKSUM_MISMATCH for reads and updates that touch it', async () => {
    const id = chunkId(4, 0);
    const data = pattern(40, 300_000);
    await writeCommit(engine, id, { data });
    const where = engine.blockLocation(engine.locate(CHAIN, id)!.committed!);
    const fd = openSync(where.file, 'r+');
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, where.offset + 123_456);
    byte[0] = byte[0]! ^ 0x01;
    writeSync(fd, byte, 0, 1, where.offset + 123_456);
    closeSync(fd);
    const [whole, elsewhere] = await engine.read([
      { chainId: CHAIN, chunkId: id, offset: 0, length: MiB },
      { chainId: CHAIN, chunkId: id, offset: 200_000, length: 4096 },
    ]);
    assert.ok(whole instanceof Error && 'code' in whole && whole.code === 'CHECKSUM_MISMATCH');
    assert.ok(ok(elsewhere).data.equals(data.subarray(200_000, 204_096)));
    await assert.rejects(
      engine.update({
        chainId: CHAIN,
        chunkId: id,
        updateVer: 2,
        chainVer: 1,
        kind: 'write',
        offset: 0,
        data: Buffer.from('z'),
        chunkSize: MiB,
      }),
      { code: 'CHECKSUM_MISMATCH' },
    );
    assert.equal(engine.meta(CHAIN, id)!.updateVer, 1, 'the failed update left nothing pending');
    // re-sync repairs it with a full replace
    await engine.update({
      chainId: CHAIN,
      chunkId: id,
      updateVer: 2,
      chainVer: 1,
      kind: 'write',
      offset: 0,
      data,
      chunkSize: MiB,
      syncing: true,
    });
    await engine.commit(CHAIN, id, 2, 1);
    assert.ok((await readAll(engine, id)).data.equals(data));
  });

  it('bad requests get clear errors', async () => {
    const id = chunkId(5, 0);
    const base = {
      chainId: CHAIN,
      chunkId: id,
      updateVer: 1,
      chainVer: 1,
      offset: 0,
      chunkSize: MiB,
    };
    await assert.rejects(engine.update({ ...base, kind: 'write' }), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(
      engine.update({ ...base, kind: 'write', data: Buffer.alloc(10), chunkSize: 5 }),
      { code: 'INVALID_ARGUMENT' },
    );
    await assert.rejects(engine.update({ ...base, kind: 'truncate' }), {
      code: 'INVALID_ARGUMENT',
    });
    await assert.rejects(engine.update({ ...base, kind: 'remove' }), { code: 'NOT_FOUND' });
    await assert.rejects(
      engine.update({ ...base, kind: 'bogus' as 'write', data: Buffer.alloc(1) }),
      { code: 'INVALID_ARGUMENT' },
    );
    await assert.rejects(
      engine.update({ ...base, updateVer: 0, kind: 'write', data: Buffer.alloc(1) }),
      { code: 'INVALID_ARGUMENT' },
    );
    await assert.rejects(
      engine.update({ ...base, chunkId: Buffer.alloc(3), kind: 'write', data: Buffer.alloc(1) }),
      { code: 'INVALID_ARGUMENT' },
    );
    await assert.rejects(engine.readPending(CHAIN, id), { code: 'NOT_FOUND' });
    const [bad, missing] = await engine.read([
      { chainId: CHAIN, chunkId: id, offset: -1, length: 1 },
      { chainId: CHAIN, chunkId: id, offset: 0, length: 1 },
    ]);
    assert.ok(bad instanceof Error && 'code' in bad && bad.code === 'INVALID_ARGUMENT');
    assert.ok(missing instanceof Error && 'code' in missing && missing.code === 'NOT_FOUND');
    assert.throws(() => engine.listMeta(-5), { code: 'INVALID_ARGUMENT' });
  });

  it('space info reports the disk with thresholds', () => {
    const space = engine.spaceInfo();
    assert.ok(space.capacityBytes > 0);
    assert.equal(space.usedBytes + space.freeBytes, space.capacityBytes);
    assert.equal(typeof space.lowSpace, 'boolean');
  });
});

describe('chunk engine reopen', () => {
  it('keeps committed and pending versions and rebuilds allocation from the records', async () => {
    const disk = tempDisk('reopen');
    try {
      let engine = await openTestEngine(disk.dir);
      const ids = Array.from({ length: 20 }, (_, i) => chunkId(8, i));
      for (const [i, id] of ids.entries()) {
        await writeCommit(engine, id, { data: pattern(i, 70_000 + i) });
      }
      await engine.update({
        chainId: CHAIN,
        chunkId: ids[0]!,
        updateVer: 2,
        chainVer: 1,
        kind: 'write',
        offset: 0,
        data: pattern(99, 10),
        chunkSize: MiB,
      });
      // Committed bytes per chain, counted as records change and rebuilt on open.
      const committedBytes = ids.reduce((sum, _, i) => sum + 70_000 + i, 0);
      assert.equal(engine.usedBytes(CHAIN), committedBytes);
      await engine.close();
      engine = await openTestEngine(disk.dir);
      assert.equal(engine.usedBytes(CHAIN), committedBytes);
      assert.equal(engine.usedBytes(CHAIN + 1), 0);
      // new chunks after reopen must not land on blocks still in use
      for (let i = 0; i < 20; i++)
        await writeCommit(engine, chunkId(9, i), { data: pattern(500 + i, 70_000) });
      for (const [i, id] of ids.entries()) {
        assert.ok((await readAll(engine, id)).data.equals(pattern(i, 70_000 + i)), `chunk ${i}`);
      }
      assert.equal(engine.meta(CHAIN, ids[0]!)!.updateVer, 2);
      const expected = applyWrite(pattern(0, 70_000), 0, pattern(99, 10));
      assert.ok((await engine.readPending(CHAIN, ids[0]!)).equals(expected));
      await engine.commit(CHAIN, ids[0]!, 2, 1);
      await engine.dropChain(CHAIN);
      assert.equal(engine.usedBytes(CHAIN), 0);
      await engine.close();
      await assert.rejects(engine.read([]), { code: 'UNAVAILABLE' });
    } finally {
      disk.cleanup();
    }
  });

  it('the thread-pool backend and buffered I/O give the same results', async () => {
    const disk = tempDisk('threads');
    try {
      const engine = await openTestEngine(disk.dir, {
        io: { backend: 'threads' },
        directIo: 'off',
      });
      assert.equal(engine.status().ioBackend, 'threads');
      assert.equal(engine.status().directIo, false);
      const id = chunkId(1, 0);
      await writeCommit(engine, id, { data: pattern(1, 100_000) });
      await writeCommit(engine, id, { offset: 100_000, data: pattern(2, 1000) });
      await writeCommit(engine, id, { offset: 10, data: pattern(3, 10) });
      const model = applyWrite(
        applyWrite(pattern(1, 100_000), 100_000, pattern(2, 1000)),
        10,
        pattern(3, 10),
      );
      const read = await readAll(engine, id);
      assert.ok(read.data.equals(model));
      assert.equal(read.meta.checksum, crc32c(model));
      await engine.close();
    } finally {
      disk.cleanup();
    }
  });

  it('refuses bad options with the field named', async () => {
    await assert.rejects(
      openTestEngine('/nonexistent-never', { filesPerClass: 0 }),
      /filesPerClass/,
    );
  });
});
