// Pure rules of the FUSE daemon and the write buffer, row by row: buffer windows and write
// plans, write-behind order and error reporting (with a recording sink), errno mapping, open
// flags, /proc groups parsing, mountinfo parsing, statfs fields and readdir windows.
import assert from 'node:assert/strict';
import { constants } from 'node:fs';
import { describe, it } from 'node:test';
import { planWrite, WriteBuffer, windowEnd } from '../../daemons/client/write-buffer.js';
import { ByteBudget } from '../../daemons/common/byte-budget.js';
import { ThreeFsError } from '../../daemons/common/errors.js';
import { parseGroupsLine } from '../../daemons/fuse/caller-groups.js';
import { DirHandle } from '../../daemons/fuse/dir-handle.js';
import { errno, errnoOf } from '../../daemons/fuse/errno.js';
import { attrRow, isReadOnly, openFlagsOf, statfsFields } from '../../daemons/fuse/fuse-attrs.js';
import { mountPoints } from '../../daemons/fuse/mount-checks.js';
import type { Attrs } from '../../daemons/client/file-api.js';

const KiB = 1024;
const MiB = 1024 * KiB;

describe('write buffer rules', () => {
  it('windows end at the next chunk boundary or after capacity bytes', () => {
    const rows: Array<[number, number, number, number]> = [
      // start, capacity, chunk, end
      [0, MiB, MiB, MiB],
      [100, MiB, MiB, MiB],
      [MiB - 1, MiB, MiB, MiB],
      [MiB, MiB, MiB, 2 * MiB],
      [0, 256 * KiB, MiB, 256 * KiB],
      [900 * KiB, 256 * KiB, MiB, MiB],
    ];
    for (const [start, capacity, chunk, end] of rows)
      assert.equal(windowEnd(start, capacity, chunk), end, `start ${start}`);
  });

  it('plans: append, flush first, direct, start', () => {
    const rows: Array<[{ start: number; length: number } | undefined, number, number, string]> = [
      [undefined, 0, 4 * KiB, 'start'],
      [undefined, 0, MiB, 'direct'], // fills its whole window: no copy
      [undefined, MiB - 10, 10, 'direct'],
      [undefined, MiB - 10, 20, 'direct'], // crosses the boundary: storage splits it
      [{ start: 0, length: 4 * KiB }, 4 * KiB, 4 * KiB, 'append'],
      [{ start: 0, length: 4 * KiB }, 8 * KiB, 4 * KiB, 'flush-first'], // a gap
      [{ start: 0, length: 4 * KiB }, 0, 4 * KiB, 'flush-first'], // overwrite
      [{ start: 0, length: MiB - 4 * KiB }, MiB - 4 * KiB, 8 * KiB, 'flush-first'], // overflows
    ];
    for (const [buffered, offset, length, kind] of rows)
      assert.equal(planWrite(buffered, offset, length, MiB, MiB).kind, kind, `${offset}+${length}`);
    assert.deepEqual(planWrite({ start: 0, length: MiB - 10 }, MiB - 10, 10, MiB, MiB), {
      kind: 'append',
      full: true,
    });
  });

  const recordingSink = () => {
    const writes: Array<{ offset: number; data: Buffer }> = [];
    const gates: Array<() => void> = [];
    let hold = false;
    const sink = async (offset: number, data: Buffer) => {
      if (hold) await new Promise<void>((r) => gates.push(r));
      writes.push({ offset, data: Buffer.from(data) });
    };
    return {
      writes,
      sink,
      hold: (on: boolean) => {
        hold = on;
        if (!on) gates.splice(0).forEach((g) => g());
      },
    };
  };

  it('coalesces sequential writes into one storage write per window', async () => {
    const rec = recordingSink();
    const wb = new WriteBuffer({
      capacity: 64 * KiB,
      chunkSize: MiB,
      maxInFlight: 2,
      flushDelayMs: 60_000,
      sink: rec.sink,
    });
    const all = Buffer.alloc(160 * KiB);
    for (let at = 0; at < all.length; at += 4 * KiB) {
      const piece = Buffer.alloc(4 * KiB, at / (4 * KiB));
      piece.copy(all, at);
      await wb.write(at, piece);
    }
    await wb.flush();
    assert.deepEqual(
      rec.writes.map((w) => [w.offset, w.data.length]),
      [
        [0, 64 * KiB],
        [64 * KiB, 64 * KiB],
        [128 * KiB, 32 * KiB],
      ],
    );
    assert.ok(Buffer.concat(rec.writes.map((w) => w.data)).equals(all));
    wb.dispose();
  });

  it('an overlapping write waits for the one in flight: the later bytes win', async () => {
    const rec = recordingSink();
    const wb = new WriteBuffer({
      capacity: MiB,
      chunkSize: MiB,
      maxInFlight: 4,
      flushDelayMs: 60_000,
      sink: rec.sink,
    });
    rec.hold(true);
    await wb.write(0, Buffer.alloc(MiB, 1)); // direct, held in flight
    const second = wb.write(0, Buffer.alloc(MiB, 2)); // overlaps: must wait
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(rec.writes.length, 0);
    rec.hold(false);
    await second;
    await wb.flush();
    assert.deepEqual(
      rec.writes.map((w) => w.data[0]),
      [1, 2],
    );
    wb.dispose();
  });

  it("hands every write's bytes back once: after the copy, after its storage write, on failure", async () => {
    const rec = recordingSink();
    let fail = false;
    const wb = new WriteBuffer({
      capacity: MiB,
      chunkSize: MiB,
      maxInFlight: 4,
      flushDelayMs: 60_000,
      sink: async (offset, data) => {
        await rec.sink(offset, data);
        if (fail) throw new ThreeFsError('UNAVAILABLE', 'storage is gone');
      },
    });
    const calls = new Map<string, number>();
    const done = (name: string) => () => calls.set(name, (calls.get(name) ?? 0) + 1);
    // Buffered: copied, so handed back at once although nothing reached storage.
    await wb.write(0, Buffer.alloc(10, 1), done('buffered'));
    assert.equal(calls.get('buffered'), 1);
    // Direct: the storage write holds the bytes until it settles.
    rec.hold(true);
    await wb.write(MiB, Buffer.alloc(MiB, 2), done('direct'));
    assert.equal(calls.get('direct'), undefined, 'handed back while storage still held it');
    rec.hold(false);
    await wb.flush();
    assert.equal(calls.get('direct'), 1);
    await wb.write(4 * MiB, Buffer.alloc(0), done('empty'));
    assert.equal(calls.get('empty'), 1);
    // A failed storage write hands its bytes back too, and so does a write refused up front
    // because of that failure.
    fail = true;
    await wb.write(2 * MiB, Buffer.alloc(MiB, 3), done('failed'));
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(calls.get('failed'), 1);
    await assert.rejects(
      wb.write(3 * MiB, Buffer.alloc(MiB, 4), done('refused')),
      /storage is gone/,
    );
    assert.equal(calls.get('refused'), 1);
    assert.deepEqual(
      rec.writes.map((w) => [w.offset, w.data[0]]),
      [
        [0, 1],
        [MiB, 2],
        [2 * MiB, 3],
      ],
    );
    wb.dispose();
  });

  it('a storage failure is reported by the next flush, once', async () => {
    let fail = true;
    const wb = new WriteBuffer({
      capacity: MiB,
      chunkSize: MiB,
      maxInFlight: 1,
      flushDelayMs: 60_000,
      sink: async () => {
        if (fail) throw new ThreeFsError('UNAVAILABLE', 'storage is gone');
      },
    });
    await wb.write(0, Buffer.alloc(10));
    await assert.rejects(wb.flush(), /storage is gone/);
    fail = false;
    await wb.write(0, Buffer.alloc(10));
    await wb.flush();
    wb.dispose();
  });

  it('a shared byte budget holds writes of every inode back until bytes in flight finish', async () => {
    const rec = recordingSink();
    const budget = new ByteBudget(2 * MiB);
    const make = () =>
      new WriteBuffer({
        capacity: MiB,
        chunkSize: MiB,
        maxInFlight: 8,
        flushDelayMs: 60_000,
        sink: rec.sink,
        budget,
      });
    const [a, b] = [make(), make()];
    rec.hold(true);
    await a.write(0, Buffer.alloc(MiB, 1));
    await b.write(0, Buffer.alloc(MiB, 2));
    assert.equal(budget.inUse, 2 * MiB);
    let third = false;
    const pending = a.write(MiB, Buffer.alloc(MiB, 3)).then(() => (third = true));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(third, false, 'the budget is full: the write waits before it is under way');
    rec.hold(false);
    await pending;
    await Promise.all([a.flush(), b.flush()]);
    assert.equal(budget.inUse, 0);
    assert.deepEqual(
      rec.writes.map((w) => w.data[0]),
      [1, 2, 3],
    );
    a.dispose();
    b.dispose();
  });

  it('the timer flushes buffered bytes', async () => {
    const rec = recordingSink();
    const wb = new WriteBuffer({
      capacity: MiB,
      chunkSize: MiB,
      maxInFlight: 1,
      flushDelayMs: 30,
      sink: rec.sink,
    });
    await wb.write(5, Buffer.from('hello'));
    assert.equal(rec.writes.length, 0);
    for (let i = 0; i < 100 && rec.writes.length === 0; i++)
      await new Promise((r) => setTimeout(r, 10));
    assert.equal(rec.writes[0]?.offset, 5);
    wb.dispose();
  });
});

describe('FUSE daemon rules', () => {
  it('maps codes to errno; anything else is EIO', () => {
    const rows: Array<[unknown, number]> = [
      [new ThreeFsError('ENOENT', ''), errno.ENOENT],
      [new ThreeFsError('EEXIST', ''), errno.EEXIST],
      [new ThreeFsError('ENOTEMPTY', ''), errno.ENOTEMPTY],
      [new ThreeFsError('EDQUOT', ''), errno.EDQUOT],
      [new ThreeFsError('EXDEV', ''), errno.EXDEV],
      [new ThreeFsError('NOT_FOUND', ''), errno.ENOENT],
      [new ThreeFsError('NO_SPACE', ''), errno.ENOSPC],
      [new ThreeFsError('UNAVAILABLE', ''), errno.EIO],
      [new ThreeFsError('DEADLINE_EXCEEDED', ''), errno.EIO],
      [new ThreeFsError('INTERNAL', ''), errno.EIO],
      [new Error('boom'), errno.EIO],
      ['not an error', errno.EIO],
    ];
    for (const [err, expected] of rows) assert.equal(errnoOf(err), expected, String(err));
  });

  it('open flags', () => {
    const { O_RDONLY, O_WRONLY, O_RDWR, O_TRUNC, O_APPEND, O_EXCL } = constants;
    assert.deepEqual(openFlagsOf(O_RDONLY), {
      read: true,
      write: false,
      truncate: false,
      append: false,
      exclusive: false,
    });
    assert.equal(openFlagsOf(O_WRONLY).read, false);
    assert.equal(openFlagsOf(O_WRONLY).write, true);
    assert.equal(openFlagsOf(O_RDWR).read && openFlagsOf(O_RDWR).write, true);
    assert.equal(openFlagsOf(O_WRONLY | O_TRUNC).truncate, true);
    assert.equal(openFlagsOf(O_WRONLY | O_APPEND).append, true);
    assert.equal(openFlagsOf(O_WRONLY | O_EXCL).exclusive, true);
  });

  it('only a handle that can never write is opened without FLUSH on close', () => {
    const { O_RDONLY, O_WRONLY, O_RDWR, O_TRUNC, O_APPEND, O_DIRECT } = constants;
    const rows: Array<[number, boolean]> = [
      [O_RDONLY, true],
      [O_RDONLY | O_DIRECT, true],
      [O_RDONLY | O_TRUNC, true], // truncated at open, by meta: nothing buffered
      [O_WRONLY, false],
      [O_RDWR, false],
      [O_WRONLY | O_APPEND, false],
      [O_RDWR | O_DIRECT, false],
    ];
    for (const [flags, expected] of rows) assert.equal(isReadOnly(flags), expected, String(flags));
  });

  it('attribute rows carry the type bits and sizes', () => {
    const base = {
      id: 77,
      mode: 0o4755,
      uid: 1,
      gid: 2,
      nlink: 3,
      length: 12345,
      atimeMs: 1,
      mtimeMs: 2,
      ctimeMs: 3,
      dynStripe: 0,
      truncateVer: 0,
    };
    const file = attrRow({ ...base, type: 'file' } as Attrs);
    assert.deepEqual([...file.subarray(0, 6)], [77, constants.S_IFREG | 0o4755, 3, 1, 2, 12345]);
    const link = attrRow({ ...base, type: 'symlink', target: 'héllo' } as Attrs);
    assert.equal(link[1], constants.S_IFLNK | 0o4755);
    assert.equal(link[5], 6); // bytes, not characters
    assert.equal(attrRow({ ...base, type: 'dir' } as Attrs)[1], constants.S_IFDIR | 0o4755);
  });

  it('parses the Groups line of /proc/<pid>/status', () => {
    assert.deepEqual(parseGroupsLine('Name:\tx\nGroups:\t4 24 27 \nNgid:\t0\n'), [4, 24, 27]);
    assert.deepEqual(parseGroupsLine('Groups:\t\n'), []);
    assert.deepEqual(parseGroupsLine('Name:\tx\n'), []);
  });

  it('parses mount points from mountinfo, with escapes', () => {
    const info =
      '36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw\n' +
      '37 35 0:40 / /work/x rw - fuse.threefs threefs:c rw\n';
    assert.deepEqual(mountPoints(info), ['/mnt/with space', '/work/x']);
  });

  it('statfs fields from a space report', () => {
    const f = statfsFields({
      totalBytes: 4096 * 100,
      usedBytes: 4096 * 40,
      freeBytes: 4096 * 60,
      totalInodes: 0,
      usedInodes: 5,
    });
    assert.deepEqual([...f.subarray(0, 5)], [4096, 4096, 100, 60, 60]);
    assert.equal(f[8], 255);
    assert.ok(f[6]! > 0);
  });

  it('readdir windows: offsets are stable, pages load lazily, seeking back restarts', async () => {
    const names = Array.from({ length: 1300 }, (_, i) => `n${String(i).padStart(4, '0')}`);
    const attrs = { id: 1, type: 'dir' } as Attrs;
    const loads: string[] = [];
    const dir = new DirHandle(attrs, async (after, limit) => {
      loads.push(after);
      const start = after === '' ? 0 : names.indexOf(after) + 1;
      const page = names.slice(start, start + limit);
      return {
        entries: page.map((name, i) => ({ name, id: 100 + start + i, type: 'file', attrs })),
        more: start + limit < names.length,
      };
    });
    const seen: string[] = [];
    let offset = 0;
    for (let guard = 0; guard < 1000; guard++) {
      const { first, items } = await dir.from(offset, 100);
      if (items.length === 0) break;
      assert.equal(first, offset);
      seen.push(...items.map((i) => i.name));
      offset = first + items.length;
    }
    assert.deepEqual(seen, ['.', '..', ...names]);
    assert.equal(loads.length, 3); // 1300 names in pages of 512
    const again = await dir.from(0, 3);
    assert.deepEqual(
      again.items.map((i) => i.name),
      ['.', '..', 'n0000'],
    );
  });
});
