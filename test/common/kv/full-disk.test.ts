// The embedded engine on a full disk: a small tmpfs of our own fills up under a stream of commits.
// Commits that cannot be written fail with a clear error; every acknowledged one stays readable,
// also after reopening; once space is freed, commits succeed again.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ThreeFsError } from '../../../daemons/common/errors.js';
import { kvConfig } from '../../../daemons/common/kv/config.js';
import { LmdbKvStore } from '../../../daemons/common/kv/lmdb-store.js';

const FS_BYTES = 1536 << 10;
const MAX_COMMITS = 2_000; // the disk is full long before this
const RESERVE_BYTES = 64 << 10;

const mountpoint = mkdtempSync(path.join(tmpdir(), 'threefs-kv-full-'));
let mounted = false;
let whyNot = '';

before(() => {
  const result = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${FS_BYTES}`, 'tmpfs', mountpoint]);
  mounted = result.status === 0;
  if (!mounted) whyNot = `cannot mount a tmpfs (needs root): ${result.stderr.toString().trim()}`;
});

after(() => {
  if (mounted) spawnSync('umount', [mountpoint]);
  rmSync(mountpoint, { recursive: true, force: true });
});

describe('kv embedded engine on a full disk', () => {
  it('fails commits clearly, keeps every acknowledged one, and recovers when space returns', async (t) => {
    if (!mounted) {
      t.skip(whyNot);
      return;
    }
    const dir = path.join(mountpoint, 'kv');
    mkdirSync(dir);
    // Room to free later, so the store can go on after the disk filled.
    const filler = path.join(mountpoint, 'filler');
    writeFileSync(filler, Buffer.alloc(256 << 10, 1));
    const config = kvConfig({
      path: dir,
      walSegmentBytes: 64 << 10,
      dataFileReserveBytes: RESERVE_BYTES,
    });
    const acknowledged = new Map<string, string>();
    const store = await LmdbKvStore.open(config, { bootId: 'full-disk' });
    let failure: unknown;
    try {
      for (let i = 0; i < MAX_COMMITS && failure === undefined; i++) {
        const key = `k${String(i).padStart(5, '0')}`;
        const value = `${key}:`.repeat(300);
        try {
          await store.run(async (tx) => tx.set(Buffer.from(key), Buffer.from(value)));
          acknowledged.set(key, value);
        } catch (err) {
          failure = err;
        }
      }
      assert.ok(failure instanceof ThreeFsError, `expected a clear error, got ${String(failure)}`);
      t.diagnostic(`after ${acknowledged.size} commits: ${failure.message}`);
      assert.equal(failure.code, 'UNAVAILABLE');
      assert.match(failure.message, /space|ENOSPC|MDB_MAP_FULL|full/i);
      assert.ok(acknowledged.size > 10, `only ${acknowledged.size} commits before the disk filled`);
      // LMDB never wrote into the room kept at its data file's end, so it never met the full
      // disk (lmdb-js's own handling of a failed page write has corrupted its heap: docs/kv.md).
      const data = readFileSync(path.join(dir, 'data.mdb'));
      const tail = data.subarray(data.length - RESERVE_BYTES);
      assert.ok(tail.length === RESERVE_BYTES && tail.every((b) => b === 0), 'no room kept');
      const rows = await store.run((tx) => tx.getRange(Buffer.from('k'), Buffer.from('l')));
      assert.deepEqual(
        new Map(rows.map((r) => [r.key.toString(), r.value.toString()])),
        acknowledged,
      );
      unlinkSync(filler);
      await store.run(async (tx) => tx.set(Buffer.from('after'), Buffer.from('space')));
    } finally {
      await store.close();
    }
    const reopened = await LmdbKvStore.open(config, { bootId: 'full-disk' });
    try {
      const rows = await reopened.run((tx) => tx.getRange(Buffer.from('k'), Buffer.from('l')));
      assert.equal(rows.length, acknowledged.size);
      for (const r of rows) assert.equal(r.value.toString(), acknowledged.get(r.key.toString()));
      assert.equal((await reopened.run((tx) => tx.get(Buffer.from('after'))))?.toString(), 'space');
    } finally {
      await reopened.close();
    }
  });
});
