// The room kept at the end of LMDB's data file: the bound on what a batch adds, how much to
// append, and the appending itself on a real file.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import {
  batchGrowthBound,
  bytesToAppend,
  DataFileReserve,
  type LmdbFileStats,
} from '../../../daemons/common/kv/data-file-reserve.js';

const PAGE = 4096;
const stats = (lastPageNumber: number, treeDepth = 3): LmdbFileStats => ({
  pageSize: PAGE,
  lastPageNumber,
  treeDepth,
});

describe('batchGrowthBound', () => {
  const rows: Array<[string, LmdbFileStats, { ops: number; bytes: number }, number]> = [
    // 16 fixed pages, then (2 × depth + 2) per operation, then the value bytes in pages.
    ['an empty batch', stats(10), { ops: 0, bytes: 0 }, 16],
    ['one small set, depth 3', stats(10), { ops: 1, bytes: 100 }, 16 + 8 + 1],
    ['four sets, depth 3', stats(10), { ops: 4, bytes: 900 }, 16 + 32 + 1],
    ['one large value', stats(10), { ops: 1, bytes: 100_000 }, 16 + 8 + 25],
    ['depth 0 counts as 1', stats(1, 0), { ops: 1, bytes: 0 }, 16 + 4],
    ['deeper trees cost more', stats(10, 5), { ops: 2, bytes: 0 }, 16 + 24],
  ];
  for (const [name, s, batch, pages] of rows) {
    it(name, () => assert.equal(batchGrowthBound(s, batch), pages * PAGE));
  }
});

describe('bytesToAppend', () => {
  const step = 16 * PAGE;
  const rows: Array<[string, number, number, number, number]> = [
    // [name, file bytes, last page, need, expected append]
    ['room enough', 100 * PAGE, 49, 40 * PAGE, 0],
    ['room exactly enough', 100 * PAGE, 49, 50 * PAGE, 0],
    ['one page short: a whole step', 100 * PAGE, 50, 50 * PAGE, step],
    ['short by more than a step', 10 * PAGE, 9, 40 * PAGE, 40 * PAGE],
    ['a file LMDB has written to its end', 10 * PAGE, 9, 1, step],
    ['a short need rounds up to whole pages', 10 * PAGE, 9, 20 * PAGE + 1, 21 * PAGE],
    ['a file shorter than its last page (no room, not negative)', 5 * PAGE, 9, PAGE, step],
  ];
  for (const [name, fileBytes, last, need, expected] of rows) {
    it(name, () => assert.equal(bytesToAppend(fileBytes, stats(last), need, step), expected));
  }
});

describe('DataFileReserve', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'threefs-reserve-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('appends zeros after the file until a batch fits, and only then', () => {
    const file = path.join(dir, 'data.mdb');
    const used = Buffer.alloc(4 * PAGE, 0xab);
    writeFileSync(file, used);
    // LMDB's side, as the store reports it: the last page moves as commits use the room.
    const lmdb = { pageSize: PAGE, last: 3, depth: 3, depthAsked: 0 };
    const reserve = new DataFileReserve(
      file,
      {
        pageSize: PAGE,
        lastPageNumber: () => lmdb.last,
        treeDepth: () => (lmdb.depthAsked++, lmdb.depth),
      },
      8 * PAGE,
      32 * PAGE,
    );
    try {
      const batch = { ops: 1, bytes: 10 };
      reserve.ensure(batch);
      // The depth was asked and taken one level deeper, for growth since.
      const need = 8 * PAGE + batchGrowthBound(stats(3, 4), batch);
      const grown = statSync(file).size;
      assert.equal(grown, 4 * PAGE + Math.max(need, 32 * PAGE));
      const bytes = readFileSync(file);
      assert.deepEqual(bytes.subarray(0, used.length), used, 'the used pages are untouched');
      assert.ok(bytes.subarray(used.length).every((b) => b === 0));
      assert.equal(lmdb.depthAsked, 1);
      reserve.ensure(batch);
      assert.equal(statSync(file).size, grown, 'room enough: nothing appended');
      assert.equal(lmdb.depthAsked, 1, 'room enough: the depth was not asked again');
      // LMDB used most of the room: the file grows again.
      lmdb.last = grown / PAGE - 10;
      reserve.ensure(batch);
      assert.ok(statSync(file).size >= grown + need - 10 * PAGE);
      assert.equal(lmdb.depthAsked, 2);
      // Another process grew the file meanwhile: zeros go after its end, not over it.
      const other = Buffer.alloc(PAGE, 0xcd);
      const before = statSync(file).size;
      writeFileSync(file, other, { flag: 'a' });
      lmdb.last = (before + PAGE) / PAGE - 1;
      reserve.ensure(batch);
      assert.deepEqual(readFileSync(file).subarray(before, before + PAGE), other);
    } finally {
      reserve.close();
    }
  });

  it('refuses bounds that cannot hold', () => {
    const lmdb = { pageSize: PAGE, lastPageNumber: () => 0, treeDepth: () => 1 };
    assert.throws(() => new DataFileReserve(path.join(dir, 'x'), lmdb, -1, 1), /bounds/);
    assert.throws(() => new DataFileReserve(path.join(dir, 'x'), lmdb, 0, 0), /bounds/);
  });
});
