// The embedded engine's write-ahead log: record encoding and checks, segments, and what a reader
// of the log accepts (in order, intact, in sequence) and refuses (torn, stale, overwritten), and
// where its syncs run.
import assert from 'node:assert/strict';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import {
  decodeOps,
  parseHeader,
  recordIntact,
  RECORD_HEADER_BYTES,
  WalRecordBuilder,
  type WalOp,
} from '../../../daemons/common/kv/wal-record.js';
import {
  decodePosition,
  encodePosition,
  INITIAL_POSITION,
  SyncPlacement,
  WriteAheadLog,
  type WalPosition,
} from '../../../daemons/common/kv/wal.js';

const root = mkdtempSync(path.join(tmpdir(), 'threefs-wal-'));
after(() => rmSync(root, { recursive: true, force: true }));
let count = 0;
const freshDir = () => path.join(root, `log-${count++}`);

function builderOf(ops: WalOp[]): WalRecordBuilder {
  const b = new WalRecordBuilder();
  for (const op of ops) b.push(op);
  return b;
}

const set = (key: string, value: string | Buffer): WalOp => ({
  kind: 'set',
  key: Buffer.from(key),
  value: typeof value === 'string' ? Buffer.from(value) : value,
});

/** Appends one record per op list; returns the positions after each. */
function appendAll(wal: WriteAheadLog, records: WalOp[][], from = INITIAL_POSITION): WalPosition[] {
  const positions: WalPosition[] = [];
  let at = from;
  for (const ops of records) {
    at = wal.append(at, builderOf(ops));
    positions.push(at);
  }
  return positions;
}

describe('kv write-ahead log records', () => {
  it('round-trip every op kind, binary keys and empty values included', () => {
    const ops: WalOp[] = [
      { kind: 'clearRange', begin: Buffer.from([0x00]), end: Buffer.from([0xff, 0xff]) },
      set('a', ''),
      { kind: 'set', key: Buffer.from([0, 255, 0]), value: Buffer.alloc(70_000, 7) },
      { kind: 'clear', key: Buffer.from('gone') },
    ];
    const record = builderOf(ops).encode(2 ** 40 + 5);
    const header = parseHeader(record, record.length);
    assert.deepEqual(header, {
      lsn: 2 ** 40 + 5,
      payloadBytes: record.length - RECORD_HEADER_BYTES,
    });
    assert.ok(recordIntact(record));
    assert.deepEqual(decodeOps(record.subarray(RECORD_HEADER_BYTES)), ops);
  });

  it('detect a flipped byte anywhere, a bad magic and an impossible length', () => {
    const record = builderOf([set('key', 'value')]).encode(1);
    for (const at of [4, 9, RECORD_HEADER_BYTES, record.length - 1]) {
      const bad = Buffer.from(record);
      bad[at] = (bad[at] as number) ^ 0x10;
      const header = parseHeader(bad, bad.length);
      assert.ok(header === undefined || !recordIntact(bad), `flip at ${at} went unnoticed`);
    }
    const badMagic = Buffer.from(record);
    badMagic[0] = 0;
    assert.equal(parseHeader(badMagic, record.length), undefined);
    assert.equal(parseHeader(record, record.length - RECORD_HEADER_BYTES - 1), undefined);
    assert.equal(parseHeader(Buffer.alloc(RECORD_HEADER_BYTES), 100), undefined); // zero fill
  });

  it('positions survive their encoding', () => {
    const p = { lsn: 123_456_789_012, segment: 99, offset: 16 << 20 };
    assert.deepEqual(decodePosition(encodePosition(p)), p);
  });
});

describe('kv write-ahead log segments', () => {
  it('reads back every record in order, with the position after each', () => {
    const wal = new WriteAheadLog(freshDir(), 1 << 20);
    const records = Array.from({ length: 50 }, (_, i) => [set(`k${i}`, `v${i}`)]);
    const positions = appendAll(wal, records);
    const read = [...wal.recordsAfter(INITIAL_POSITION)];
    assert.equal(read.length, 50);
    read.forEach((r, i) => {
      assert.deepEqual(decodeOps(r.payload), records[i]);
      assert.deepEqual(r.next, positions[i]);
    });
    // From the middle: only what follows.
    assert.equal([...wal.recordsAfter(positions[29] as WalPosition)].length, 20);
  });

  it('stops at a torn record, a stale one, and the leftover of a longer one overwritten', () => {
    const dir = freshDir();
    const wal = new WriteAheadLog(dir, 1 << 20);
    const positions = appendAll(wal, [[set('a', '1')], [set('b', '2')], [set('c', '3')]]);
    const end = positions[2] as WalPosition;
    // A long record whose LMDB transaction failed, then the next append over it, shorter: what
    // follows the short one is the middle of the long one, never a record.
    wal.append(end, builderOf([set('long', Buffer.alloc(5_000, 0x11))]));
    const short = wal.append(end, builderOf([set('d', '4')]));
    assert.equal([...wal.recordsAfter(INITIAL_POSITION)].length, 4);
    assert.equal([...wal.recordsAfter(short)].length, 0);
    // Torn: half a record after the end.
    const torn = builderOf([set('e', Buffer.alloc(4_000, 1))]).encode(5);
    const segment = path.join(dir, readdirSync(dir)[0] as string);
    const fd = openSync(segment, 'r+');
    writeSync(fd, torn, 0, torn.length >> 1, short.offset);
    closeSync(fd);
    assert.equal([...new WriteAheadLog(dir, 1 << 20).recordsAfter(INITIAL_POSITION)].length, 4);
    // Stale: an intact record whose lsn is not the next one.
    const other = new WriteAheadLog(dir, 1 << 20);
    other.append({ ...short, lsn: 7 }, builderOf([set('f', '6')]));
    assert.equal([...new WriteAheadLog(dir, 1 << 20).recordsAfter(INITIAL_POSITION)].length, 4);
  });

  it('starts a new segment when a record does not fit, reads across, and drops covered ones', async () => {
    const dir = freshDir();
    const wal = new WriteAheadLog(dir, 64 << 10);
    const big = (i: number) => [set(`k${i}`, Buffer.alloc(20_000, i))];
    const positions = appendAll(
      wal,
      Array.from({ length: 10 }, (_, i) => big(i)),
    );
    const segments = () => readdirSync(dir).filter((n) => n.endsWith('.log'));
    assert.ok(segments().length >= 3, `expected several segments, got ${segments().join(' ')}`);
    const read = [...wal.recordsAfter(INITIAL_POSITION)];
    assert.equal(read.length, 10);
    read.forEach((r, i) => assert.deepEqual(decodeOps(r.payload), big(i)));
    // A record larger than a segment gets a segment of its own size.
    const huge = wal.append(
      positions[9] as WalPosition,
      builderOf([set('h', Buffer.alloc(200_000))]),
    );
    assert.equal(huge.segment, huge.lsn); // it began a segment of its own, named by its lsn
    assert.equal([...wal.recordsAfter(positions[9] as WalPosition)].length, 1);
    // Everything through lsn 6 is covered by a checkpoint: segments holding only those go.
    const before = segments().length;
    wal.removeThrough(6);
    assert.ok(segments().length < before);
    const rest = [...wal.recordsAfter(positions[5] as WalPosition)];
    assert.equal(rest.length, 5); // lsn 7..11 still readable
    const durable = wal.durable(11, huge.segment);
    assert.ok(durable !== undefined);
    await durable;
    assert.equal(wal.durable(11, huge.segment), undefined);
    await wal.close();
  });

  it('zero-fills the next segment in the background and rotates into it by rename', async () => {
    const dir = freshDir();
    const wal = new WriteAheadLog(dir, 64 << 10);
    const spare = path.join(dir, `spare.tmp-${process.pid}`);
    const positions = appendAll(
      wal,
      Array.from({ length: 2 }, (_, i) => [set(`k${i}`, Buffer.alloc(20_000, i))]),
    );
    await wal.prepareSpare(); // past half of the first segment: the append started it
    assert.equal(statSync(spare).size, 64 << 10);
    const more = appendAll(
      wal,
      Array.from({ length: 2 }, (_, i) => [set(`m${i}`, Buffer.alloc(20_000, i))]),
      positions[1],
    );
    assert.ok(!existsSync(spare), 'the spare became the second segment');
    assert.equal((more[1] as WalPosition).segment, 4); // lsn 4 did not fit and began it
    assert.equal([...wal.recordsAfter(INITIAL_POSITION)].length, 4);
    await wal.prepareSpare();
    await wal.close(); // an unused spare is removed
    assert.ok(!existsSync(spare));
  });

  it('treats a zero-filled or foreign file as an empty log', () => {
    const dir = freshDir();
    const wal = new WriteAheadLog(dir, 1 << 20);
    writeFileSync(path.join(dir, '0000000000000001.log'), Buffer.alloc(8_192));
    assert.equal([...wal.recordsAfter(INITIAL_POSITION)].length, 0);
    writeFileSync(path.join(dir, '0000000000000001.log'), 'not a log at all');
    assert.equal([...new WriteAheadLog(dir, 1 << 20).recordsAfter(INITIAL_POSITION)].length, 0);
  });
});

describe('where a log sync runs', () => {
  it('on the event loop while syncs are short, on the thread pool once they are slow', () => {
    const placement = new SyncPlacement(1);
    assert.equal(placement.inline, true, 'a new log assumes a fast disk');
    placement.record(0.3);
    assert.equal(placement.inline, true);
    // A slow disk: a few long syncs move the mean past the limit.
    for (let i = 0; i < 3; i++) placement.record(10);
    assert.equal(placement.inline, false);
    // Pooled syncs that still take longer than the limit keep it there.
    for (let i = 0; i < 50; i++) placement.record(1.5);
    assert.equal(placement.inline, false);
    // The disk is fast again: the mean comes back under the limit.
    for (let i = 0; i < 50; i++) placement.record(0.4);
    assert.equal(placement.inline, true);
    // One slow sync among fast ones is not enough to leave the loop.
    placement.record(3);
    assert.equal(placement.inline, true);
  });

  it('never on the event loop with a limit of 0', () => {
    const placement = new SyncPlacement(0);
    assert.equal(placement.inline, false);
    placement.record(0);
    assert.equal(placement.inline, false);
  });

  it('an inline sync is done when durable() returns; a pooled one lets the loop go on', async () => {
    const inline = new WriteAheadLog(freshDir(), 1 << 20, { inlineSyncBelowMs: 100 });
    const pooled = new WriteAheadLog(freshDir(), 1 << 20, { inlineSyncBelowMs: 0 });
    for (const wal of [inline, pooled]) {
      const [first, second] = appendAll(wal, [[set('a', '1')], [set('b', '2')]]);
      let idle = false;
      const waiting = wal.durable(first!.lsn, first!.segment);
      wal.whenIdle(() => (idle = true));
      assert.equal(idle, wal === inline, 'only a pooled sync is still running after durable()');
      await waiting;
      assert.equal(idle, true);
      assert.equal(wal.durable(first!.lsn, first!.segment), undefined);
      await wal.durable(second!.lsn, second!.segment);
      assert.equal(wal.durable(second!.lsn, second!.segment), undefined);
    }
    assert.deepEqual(inline.syncCounts(), { inline: 2, pooled: 0 });
    assert.deepEqual(pooled.syncCounts(), { inline: 0, pooled: 2 });
    await inline.close();
    await pooled.close();
  });
});
