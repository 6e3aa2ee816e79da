// Seeded crash-and-rebuild runs of the embedded engine: random mixes of sets, clears, clearRanges
// and adds, committed by concurrent writers (so group commits hold several transactions), small
// log segments (so records cross segments), checkpoints at random points, then a "machine
// crash" (new boot id, LMDB's file destroyed, garbage after the log's end) and a rebuild, twice
// per seed. After every rebuild the store must hold exactly what a model of the acknowledged
// commits holds. One seed gives one run; a failing seed replays exactly.
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { kvConfig } from '../../../daemons/common/kv/config.js';
import { LmdbKvStore } from '../../../daemons/common/kv/lmdb-store.js';
import type { Transaction } from '../../../daemons/common/kv/types.js';
import type { WalPosition } from '../../../daemons/common/kv/wal.js';
import { Rng } from '../../helpers/rng.js';

const root = mkdtempSync(path.join(tmpdir(), 'threefs-kv-recovery-'));
after(() => rmSync(root, { recursive: true, force: true }));

const SEEDS = [1, 2, 3, 4, 5, 6];
const WRITERS = 4;
const COMMITS_PER_ROUND = 40; // per writer
const KEYS_PER_WRITER = 30;

/** Writer w owns keys `w<w>/<k>`, so concurrent commits never conflict and order does not matter. */
const keyOf = (w: number, k: number) => `w${w}/${String(k).padStart(3, '0')}`;
const COUNTER = 'counter';

type Model = Map<string, string>;

/** One random transaction of writer `w`, applied to the store and to the model alike. */
function randomCommit(
  rng: Rng,
  w: number,
): { apply: (tx: Transaction) => void; model: (m: Model) => void } {
  const ops: Array<(tx: Transaction | undefined, m: Model | undefined) => void> = [];
  for (let n = rng.int(1, 6); n > 0; n--) {
    const kind = rng.int(0, 9);
    const k = keyOf(w, rng.int(0, KEYS_PER_WRITER - 1));
    if (kind < 5) {
      const value = `${k}:${rng.int(0, 1e9)}:`.repeat(rng.int(0, 120));
      ops.push((tx, m) => {
        tx?.set(Buffer.from(k), Buffer.from(value));
        m?.set(k, value);
      });
    } else if (kind < 7) {
      ops.push((tx, m) => {
        tx?.clear(Buffer.from(k));
        m?.delete(k);
      });
    } else if (kind < 8) {
      const a = rng.int(0, KEYS_PER_WRITER - 1);
      const b = Math.min(KEYS_PER_WRITER, a + rng.int(1, 8));
      const [begin, end] = [keyOf(w, a), keyOf(w, b)];
      ops.push((tx, m) => {
        tx?.clearRange(Buffer.from(begin), Buffer.from(end));
        if (m) for (const key of [...m.keys()]) if (key >= begin && key < end) m.delete(key);
      });
    } else {
      const delta = rng.int(1, 1_000);
      ops.push((tx, m) => {
        tx?.add(Buffer.from(COUNTER), BigInt(delta));
        if (m) m.set(COUNTER, String(BigInt(m.get(COUNTER) ?? '0') + BigInt(delta)));
      });
    }
  }
  return {
    apply: (tx) => ops.forEach((op) => op(tx, undefined)),
    model: (m) => ops.forEach((op) => op(undefined, m)),
  };
}

async function contents(store: LmdbKvStore): Promise<Model> {
  const rows = await store.run((tx) => tx.getRange(Buffer.from([0]), Buffer.from([0xff])));
  return new Map(
    rows.map((r) => [
      r.key.toString(),
      r.key.toString() === COUNTER ? String(r.value.readBigInt64LE(0)) : r.value.toString(),
    ]),
  );
}

/** Commits COMMITS_PER_ROUND random transactions per writer, concurrently; a checkpoint maybe. */
async function round(store: LmdbKvStore, rng: Rng, model: Model): Promise<void> {
  const checkpointAt = rng.int(0, COMMITS_PER_ROUND * 2); // past the end: no checkpoint this round
  for (let c = 0; c < COMMITS_PER_ROUND; c++) {
    const commits = Array.from({ length: WRITERS }, (_, w) => randomCommit(rng, w));
    await Promise.all(commits.map((commit) => store.run(async (tx) => commit.apply(tx))));
    for (const commit of commits) commit.model(model); // acknowledged: part of the truth
    if (c === checkpointAt) await store.checkpoint();
  }
}

/**
 * What a machine crash leaves: LMDB's unsynced file is garbage, and maybe a torn record (random
 * bytes) right after the log's last one, where the next append would have gone.
 */
function crash(dir: string, end: WalPosition, rng: Rng): void {
  writeFileSync(path.join(dir, 'data.mdb'), Buffer.alloc(rng.int(0, 3) * 4096, 0xa5));
  if (rng.next() < 0.5) {
    const segment = path.join(dir, 'wal', `${String(end.segment).padStart(16, '0')}.log`);
    const junk = Buffer.from(Array.from({ length: rng.int(1, 3000) }, () => rng.int(0, 255)));
    const fd = openSync(segment, 'r+');
    try {
      writeSync(fd, junk, 0, junk.length, end.offset);
    } finally {
      closeSync(fd);
    }
  }
}

describe('kv embedded engine: seeded crash and rebuild', () => {
  for (const seed of SEEDS) {
    it(`seed ${seed}: every acknowledged commit survives two machine crashes`, async () => {
      const rng = new Rng(seed);
      const config = kvConfig({
        path: path.join(root, `seed-${seed}`),
        walSegmentBytes: 64 << 10,
        checkpointEveryBytes: 1 << 20,
      });
      const model: Model = new Map();
      for (const boot of ['boot-1', 'boot-2', 'boot-3']) {
        const store = await LmdbKvStore.open(config, { bootId: `${seed}-${boot}` });
        let end: WalPosition;
        try {
          assert.deepEqual(await contents(store), model, `after opening in ${boot}`);
          if (boot !== 'boot-3') await round(store, rng, model);
          end = store.logPosition();
        } finally {
          await store.close();
        }
        crash(config.path, end, rng);
      }
    });
  }
});
