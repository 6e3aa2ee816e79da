import assert from 'node:assert/strict';
import { closeSync, constants, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { crc32c } from '../../../daemons/common/crc32c.js';
import { usrbioAddon } from '../../../daemons/common/usrbio-native.js';
import {
  CHECKSUM_MISMATCH_BASE,
  ChunkIo,
  crc32cCombine,
  crc32cConcat,
  mapRegion,
  unmapRegion,
} from '../../../daemons/storage/engine/chunk-io.js';
import { pattern, tempDisk } from './helpers.js';

describe('CRC32C combine', () => {
  it('combine(crc(a), crc(b), |b|) = crc(a‖b) for many splits', () => {
    const data = pattern(9, 20_000);
    for (const cut of [0, 1, 7, 4096, 12_345, 20_000]) {
      const a = data.subarray(0, cut);
      const b = data.subarray(cut);
      assert.equal(crc32cCombine(crc32c(a), crc32c(b), b.length), crc32c(data), `cut ${cut}`);
    }
  });

  it('concat of granule CRCs (last granule partial) = CRC of the whole', () => {
    for (const length of [1, 4096, 4097, 100_000]) {
      const data = pattern(length, length);
      const crcs = new Uint32Array(Math.ceil(length / 4096));
      for (let i = 0; i < crcs.length; i++)
        crcs[i] = crc32c(data.subarray(i * 4096, (i + 1) * 4096));
      assert.equal(crc32cConcat(crcs, 4096, length), crc32c(data));
    }
    assert.equal(crc32cConcat(new Uint32Array(0), 4096, 0), 0);
    assert.throws(() => crc32cConcat(new Uint32Array(2), 4096, 10), /one CRC per granule/);
  });
});

// Every case runs on the I/O thread's ring, on the thread pool, and with gather reads up to
// 1 MiB on a ring the event loop drives (loopReadBytes).
const executors = [
  { name: 'io_uring', backend: 'io_uring', loopReadBytes: 0 },
  { name: 'threads', backend: 'threads', loopReadBytes: 0 },
  { name: 'io_uring, reads on the loop', backend: 'io_uring', loopReadBytes: 1 << 20 },
] as const;

for (const { name, backend, loopReadBytes } of executors) {
  describe(`chunk I/O executor (${name})`, () => {
    const disk = tempDisk(`io-${name.replace(/\W+/g, '-')}`);
    let io: ChunkIo;
    let direct: number;
    let buffered: number;
    const file = path.join(disk.dir, 'data');
    before(() => {
      io = new ChunkIo({ backend, loopReadBytes });
      direct = openSync(file, constants.O_RDWR | constants.O_CREAT | constants.O_DIRECT, 0o600);
      buffered = openSync(file, constants.O_RDWR);
    });
    after(async () => {
      await io.close();
      closeSync(direct);
      closeSync(buffered);
      disk.cleanup();
    });

    it(`runs on ${backend}`, () => {
      assert.equal(io.backend, backend);
    });

    it('fallocate, gathered O_DIRECT write + fdatasync, read back with granule CRCs', async () => {
      const a = pattern(1, 5000);
      const b = pattern(2, 3000);
      const results = await io.submit([
        { op: 'fallocate', fd: direct, offset: 0, length: 1 << 20, mode: 0 },
        { op: 'fdatasync', fd: direct },
        {
          op: 'write',
          fd: direct,
          offset: 8192,
          length: 12_288,
          pieces: [a, 100, b],
          granule: 4096,
        },
        { op: 'fdatasync', fd: direct },
        { op: 'read', fd: direct, offset: 8192, length: 12_288, granule: 4096, crcLength: 8100 },
      ]);
      assert.deepEqual(
        results.map((r) => r.result),
        [0, 0, 12_288, 0, 12_288],
      );
      const content = Buffer.concat([a, Buffer.alloc(100), b]);
      const write = results[2]!;
      assert.equal(write.crc, crc32c(content));
      assert.deepEqual(Array.from(write.crcs!), [
        crc32c(content.subarray(0, 4096)),
        crc32c(content.subarray(4096)),
      ]);
      const read = results[4]!;
      assert.ok(read.data!.subarray(0, 8100).equals(content));
      assert.ok(read.data!.subarray(8100).equals(Buffer.alloc(12_288 - 8100)), 'zero padding');
      assert.deepEqual(Array.from(read.crcs!), Array.from(write.crcs!));
      assert.ok(
        readFileSync(file)
          .subarray(8192, 8192 + 8100)
          .equals(content),
      );
    });

    it('a write of one aligned piece goes from its memory; any other through a copy', async () => {
      const content = pattern(9, 64 * 1024);
      await io.submit([
        {
          op: 'write',
          fd: direct,
          offset: 128 << 10,
          length: content.length,
          pieces: [content],
          granule: 0,
        },
        { op: 'fdatasync', fd: direct },
      ]);
      // A read's data is page-aligned memory: the source of an in-place write.
      const [read] = await io.submit([
        {
          op: 'read',
          fd: direct,
          offset: 128 << 10,
          length: content.length,
          granule: 0,
          crcLength: 0,
        },
      ]);
      const aligned = read!.data!;
      // One byte into an aligned buffer is never aligned.
      const shifted = Buffer.alloc(content.length + 1);
      aligned.copy(shifted, 1);
      const unaligned = shifted.subarray(1);
      const before = io.writesInPlace;
      const results = await io.submit([
        {
          op: 'write',
          fd: direct,
          offset: 256 << 10,
          length: 65_536,
          pieces: [aligned],
          granule: 4096,
        },
        {
          op: 'write',
          fd: direct,
          offset: 512 << 10,
          length: 65_536,
          pieces: [unaligned],
          granule: 4096,
        },
        // Shorter than the write (zero-padded): copied, whatever its alignment.
        {
          op: 'write',
          fd: direct,
          offset: 768 << 10,
          length: 69_632,
          pieces: [aligned],
          granule: 4096,
        },
        { op: 'fdatasync', fd: direct },
      ]);
      assert.deepEqual(
        results.map((r) => r.result),
        [65_536, 65_536, 69_632, 0],
      );
      assert.equal(io.writesInPlace - before, 1, 'only the aligned whole-length piece');
      assert.equal(results[0]!.crc, crc32c(content), 'checksummed from the caller memory');
      assert.equal(results[1]!.crc, crc32c(content));
      const disk = readFileSync(file);
      for (const at of [256 << 10, 512 << 10, 768 << 10]) {
        assert.ok(disk.subarray(at, at + content.length).equals(content), `bytes at ${at}`);
      }
      assert.ok(
        disk
          .subarray((768 << 10) + content.length, (768 << 10) + 69_632)
          .equals(Buffer.alloc(4096)),
      );
      assert.ok(aligned.equals(content), 'the source is left as it was');
    });

    it('reports errors per op as negative errno, not as a failed batch', async () => {
      const dirFd = openSync(disk.dir, 'r');
      const results = await io.submit([
        { op: 'read', fd: direct, offset: 0, length: 4096, granule: 0, crcLength: 0 },
        { op: 'read', fd: dirFd, offset: 0, length: 4096, granule: 0, crcLength: 0 },
        { op: 'fdatasync', fd: 999_999 },
      ]);
      closeSync(dirFd);
      assert.equal(results[0]!.result, 4096);
      assert.equal(results[1]!.result, -21); // EISDIR
      assert.equal(results[2]!.result, -9);
    });

    it('unaligned edges go through the buffered fd', async () => {
      const data = pattern(3, 777);
      const [w, , r] = await io.submit([
        { op: 'write', fd: buffered, offset: 3, length: 777, pieces: [data], granule: 0 },
        { op: 'fdatasync', fd: buffered },
        { op: 'read', fd: buffered, offset: 3, length: 777, granule: 512, crcLength: 777 },
      ]);
      assert.equal(w!.result, 777);
      assert.ok(r!.data!.equals(data));
      assert.equal(crc32cConcat(r!.crcs!, 512, 777), crc32c(data));
    });

    it('a read past the end of the file is short', async () => {
      const [r] = await io.submit([
        { op: 'read', fd: direct, offset: 1 << 20, length: 4096, granule: 0, crcLength: 0 },
      ]);
      assert.equal(r!.result, 0);
    });

    it('bad batches fail with INVALID_ARGUMENT, never a crash', async () => {
      await assert.rejects(io.submit([]), { code: 'INVALID_ARGUMENT' });
      await assert.rejects(
        io.submit([{ op: 'read', fd: -1, offset: 0, length: 1, granule: 0, crcLength: 0 }]),
        { code: 'INVALID_ARGUMENT' },
      );
      await assert.rejects(
        io.submit([
          { op: 'write', fd: direct, offset: 0, length: 1, pieces: [Buffer.alloc(2)], granule: 0 },
        ]),
        /more than op.length/,
      );
      await assert.rejects(
        io.submit([
          { op: 'read', fd: direct, offset: 0, length: 2 ** 30, granule: 0, crcLength: 0 },
        ]),
        { code: 'INVALID_ARGUMENT' },
      );
    });

    it('many batches at once (more than the in-flight bound) all complete', async () => {
      const small = new ChunkIo({ backend, loopReadBytes, maxInFlight: 4 });
      try {
        const results = await Promise.all(
          Array.from({ length: 64 }, (_, i) =>
            small.submit([
              {
                op: 'read',
                fd: direct,
                offset: (i % 4) * 4096,
                length: 4096,
                granule: 4096,
                crcLength: 4096,
              },
            ]),
          ),
        );
        assert.ok(results.every((r) => r[0]!.result === 4096));
      } finally {
        await small.close();
      }
      await assert.rejects(small.submit([{ op: 'fsync', fd: direct }]), { code: 'UNAVAILABLE' });
    });

    describe('gather reads', () => {
      const content = pattern(77, 64 * 4096);
      const granuleCrcs = (from: number, bytes: number, granule = 4096) =>
        Uint32Array.from({ length: Math.ceil(bytes / granule) }, (_, k) =>
          crc32c(
            content.subarray(from + k * granule, Math.min(from + bytes, from + (k + 1) * granule)),
          ),
        );
      before(async () => {
        const [w, s] = await io.submit([
          {
            op: 'write',
            fd: direct,
            offset: 0,
            length: content.length,
            pieces: [content],
            granule: 0,
          },
          { op: 'fdatasync', fd: direct },
        ]);
        assert.equal(w!.result, content.length);
        assert.equal(s!.result, 0);
      });

      /** A gather read of content bytes [start, end) through whole 4 KiB granules. */
      const readOf = (start: number, end: number, expected?: Uint32Array) => {
        const from = Math.floor(start / 4096) * 4096;
        const to = Math.ceil(end / 4096) * 4096;
        return {
          fd: direct,
          offset: from,
          length: to - from,
          crcLength: to - from,
          granule: 4096,
          expected: expected ?? granuleCrcs(from, to - from),
          skip: start - from,
          copyLength: end - start,
        };
      };

      it('places each read after the previous one: aligned in place, unaligned copied', async () => {
        const ranges: Array<[number, number]> = [
          [0, 4096], // aligned, lands in place
          [8192, 8192 + 3 * 4096], // aligned, in place
          [5000, 6000], // inside one granule
          [4095, 4097], // across a granule boundary
          [40_000, 4096 * 20], // unaligned start, several granules
          [4096 * 30, 4096 * 31], // aligned again, but after unaligned places: copied
          [4096 * 63 + 10, 4096 * 64], // the last, short of its granule at the front
        ];
        const { statuses, data } = await io.submitGather(ranges.map(([a, b]) => readOf(a, b)));
        let at = 0;
        ranges.forEach(([a, b], i) => {
          assert.equal(statuses[i], b - a, `read ${i}`);
          assert.ok(
            data.subarray(at, at + b - a).equals(content.subarray(a, b)),
            `bytes of read ${i}`,
          );
          at += b - a;
        });
        assert.equal(data.length, at);
      });

      it('a granule that fails its CRC fails only its read, naming the granule', async () => {
        const wrong = granuleCrcs(4096, 3 * 4096);
        wrong[1] = wrong[1]! ^ 1;
        const { statuses, data } = await io.submitGather([
          readOf(0, 4096),
          readOf(4096, 4 * 4096, wrong),
          readOf(8 * 4096, 9 * 4096),
        ]);
        assert.equal(statuses[0], 4096);
        assert.equal(statuses[1], -(CHECKSUM_MISMATCH_BASE + 1));
        assert.equal(statuses[2], 4096);
        assert.ok(data.subarray(0, 4096).equals(content.subarray(0, 4096)));
        assert.ok(data.subarray(4 * 4096, 5 * 4096).equals(content.subarray(8 * 4096, 9 * 4096)));
      });

      it('an I/O error fails its read with the errno; bad rows are INVALID_ARGUMENT', async () => {
        const { statuses } = await io.submitGather([{ ...readOf(0, 4096), fd: 987_654 }]);
        assert.equal(statuses[0], -9); // EBADF
        await assert.rejects(io.submitGather([]), { code: 'INVALID_ARGUMENT' });
        await assert.rejects(io.submitGather([{ ...readOf(0, 4096), granule: 100 }]), {
          code: 'INVALID_ARGUMENT',
        });
        await assert.rejects(io.submitGather([{ ...readOf(0, 4096), copyLength: 5000 }]), {
          code: 'INVALID_ARGUMENT',
        });
        await assert.rejects(
          io.submitGather([{ ...readOf(0, 8192), expected: new Uint32Array(1) }]),
          { code: 'INVALID_ARGUMENT' },
        );
      });

      it('into a shared region: each read at its own target, checked against the region', async () => {
        const ring = new (usrbioAddon().ProgramRing)(8, 1 << 20);
        const region = mapRegion(`/proc/self/fd/${ring.fd}`, ring.regionBytes);
        try {
          const at = (dataOffset: number) => ring.dataOffset + dataOffset;
          const { statuses, data } = await io.submitGather(
            [
              { ...readOf(0, 8192), target: at(0) }, // page-aligned and exact: lands in place
              { ...readOf(5000, 6000), target: at(100_000) },
              { ...readOf(4096 * 3, 4096 * 4), target: at(4096 * 40) },
            ],
            region,
          );
          assert.deepEqual([...statuses], [8192, 1000, 4096]);
          assert.equal(data.length, 0, 'nothing comes back but statuses');
          assert.ok(ring.data.subarray(0, 8192).equals(content.subarray(0, 8192)));
          assert.ok(ring.data.subarray(100_000, 101_000).equals(content.subarray(5000, 6000)));
          assert.ok(
            ring.data.subarray(4096 * 40, 4096 * 41).equals(content.subarray(4096 * 3, 4096 * 4)),
          );
          assert.equal(ring.data[8192], 0, 'bytes outside the targets are untouched');
          await assert.rejects(
            io.submitGather([{ ...readOf(0, 4096), target: ring.regionBytes - 100 }], region),
            { code: 'INVALID_ARGUMENT' },
          );
          await assert.rejects(io.submitGather([{ ...readOf(0, 4096) }], region), {
            code: 'INVALID_ARGUMENT',
          });
          await assert.rejects(io.submitGather([{ ...readOf(0, 4096), target: 0 }]), {
            code: 'INVALID_ARGUMENT',
          });
        } finally {
          assert.equal(unmapRegion(region), true);
        }
        assert.equal(unmapRegion(region), false, 'an unknown region');
        await assert.rejects(io.submitGather([{ ...readOf(0, 4096), target: 0 }], region), {
          code: 'INVALID_ARGUMENT',
        });
        assert.throws(() => mapRegion(file, 4096), /not sealed|not a region/);
        assert.throws(() => mapRegion(`/proc/self/fd/${ring.fd}`, 4096), /not a region/);
        assert.throws(() => mapRegion('/nonexistent/region', 4096), /cannot map/);
      });

      it('past the read pool, the destination is a one-off buffer with the same bytes', async () => {
        const unpooled = new ChunkIo({ backend, loopReadBytes, readPoolBytes: 0 });
        try {
          const { statuses, data } = await unpooled.submitGather([
            readOf(100, 9000),
            readOf(4096 * 10, 4096 * 12),
          ]);
          assert.deepEqual([...statuses], [8900, 8192]);
          assert.ok(data.subarray(0, 8900).equals(content.subarray(100, 9000)));
          assert.ok(data.subarray(8900).equals(content.subarray(4096 * 10, 4096 * 12)));
        } finally {
          await unpooled.close();
        }
      });

      it('small batches run on the loop only where asked; a larger one goes to the I/O thread', async () => {
        const before = io.loopReads;
        await io.submitGather([readOf(0, 4096), readOf(4096 * 5, 4096 * 7)]);
        // 5 × 256 KiB from the disk: past 1 MiB.
        const big = Array.from({ length: 5 }, (_, k) => readOf(0, 64 * 4096 - k));
        const { statuses } = await io.submitGather(big);
        assert.deepEqual(
          [...statuses],
          big.map((r) => r.copyLength),
        );
        const onLoop = backend === 'io_uring' && loopReadBytes > 0 ? 1 : 0;
        assert.equal(io.loopReads - before, onLoop, 'only the small batch counts');
      });

      it('more reads in flight than the ring has entries all complete, byte-exact', async () => {
        // 48 batches of 16 reads: 768 reads against rings of 256 entries.
        const batches = Array.from({ length: 48 }, (_, b) =>
          Array.from({ length: 16 }, (_, k) => {
            const page = (b * 16 + k) % 64;
            return readOf(page * 4096, page * 4096 + 4096);
          }),
        );
        const results = await Promise.all(batches.map((reads) => io.submitGather(reads)));
        results.forEach(({ statuses, data }, b) => {
          assert.ok(
            statuses.every((s) => s === 4096),
            `batch ${b}`,
          );
          for (let k = 0; k < 16; k++) {
            const page = (b * 16 + k) % 64;
            assert.ok(
              data
                .subarray(k * 4096, k * 4096 + 4096)
                .equals(content.subarray(page * 4096, page * 4096 + 4096)),
              `batch ${b} read ${k}`,
            );
          }
        });
      });

      it('close() with reads in flight still answers them', async () => {
        const closing = new ChunkIo({ backend, loopReadBytes });
        const pending = Array.from({ length: 8 }, (_, k) =>
          closing.submitGather([readOf(k * 4096, k * 4096 + 4096)]),
        );
        await closing.close();
        const results = await Promise.all(pending);
        results.forEach(({ statuses, data }, k) => {
          assert.equal(statuses[0], 4096);
          assert.ok(data.equals(content.subarray(k * 4096, k * 4096 + 4096)));
        });
      });
    });
  });
}
