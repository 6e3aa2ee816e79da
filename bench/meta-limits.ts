// The machine's own limits for the metadata benchmark, measured in the same run so meta's figures
// can be read as ratios: (1) the RPC floor, Core.echo round trips to the same meta process with the
// same number of sequential clients (a stat can never beat it); (2) the durable-commit ceiling,
// the embedded KV store itself (its write-ahead log group commit) with N sequential committers
// each writing five random keys per transaction, in this process (a create can never beat it);
// (3) the disk's fdatasync rate. Every loop is bounded by a count and a time.
import { randomBytes } from 'node:crypto';
import { closeSync, fdatasyncSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { kvConfig } from '../daemons/common/kv/config.js';
import { LmdbKvStore } from '../daemons/common/kv/lmdb-store.js';
import { CoreService, RpcClient } from '../daemons/common/rpc/index.js';
import { quietLog } from '../test/helpers/cluster.js';

/** Runs `worker` on `clients` sequential workers until `total` calls or `maxMs`; calls per second. */
async function rate(
  clients: number,
  total: number,
  maxMs: number,
  once: (client: number) => Promise<unknown>,
): Promise<number> {
  let started = 0;
  let finished = 0;
  const t0 = performance.now();
  const until = t0 + maxMs;
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      while (started < total && performance.now() < until) {
        started++;
        await once(c);
        finished++;
      }
    }),
  );
  return Math.round(finished / ((performance.now() - t0) / 1000));
}

/** Core.echo round trips per second with `clients` connections, one call in flight on each. */
export async function rpcEchoFloor(
  address: string,
  clusterId: string,
  clients: number,
  calls: number,
): Promise<number> {
  const rpcs = Array.from(
    { length: clients },
    () => new RpcClient({ address, clusterId, log: quietLog }),
  );
  try {
    const echo = (c: number) => rpcs[c]!.call(CoreService.methods.echo, { message: 'ping' });
    await rate(clients, clients * 200, 2_000, echo); // connect and warm up
    return await rate(clients, calls, 20_000, echo);
  } finally {
    await Promise.all(rpcs.map((r) => r.close()));
  }
}

export interface CommitCeiling {
  txnPerSec: number;
  /** Group commits (LMDB transactions, one log fdatasync each at most) per second. */
  commitsPerSec: number;
}

/**
 * Durable transactions per second of the embedded KV store with `committers` sequential
 * committers: commits queued while one batch syncs share the next.
 */
export async function kvCommitCeiling(
  dir: string,
  committers: number,
  txns: number,
): Promise<CommitCeiling> {
  rmSync(dir, { recursive: true, force: true });
  const store = await LmdbKvStore.open(kvConfig({ path: dir }));
  try {
    // Random bytes are drawn before timing: randomBytes per key took a third of this loop's CPU.
    const perTxn = 5 * (16 + 120);
    const random = randomBytes(Math.min(txns * perTxn, 16 << 20));
    let at = 0;
    const take = (n: number) => {
      if (at + n > random.length) at = 0;
      at += n;
      return random.subarray(at - n, at);
    };
    const before = store.lastCommitId();
    const t0 = performance.now();
    const txnPerSec = await rate(committers, txns, 20_000, () =>
      store.run(async (tx) => {
        // Fresh keys for every transaction of the run (as creates insert), up to 16 MiB of them.
        for (let k = 0; k < 5; k++) tx.set(take(16), take(120));
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const commits = store.lastCommitId() - before;
    return { txnPerSec, commitsPerSec: Math.round(commits / seconds) };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** 4 KiB write + fdatasync per second on one file in `dir` (at most 2 s, 20,000 syncs). */
export function diskFdatasyncRate(dir: string): number {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'fdatasync-probe');
  const fd = openSync(file, 'w');
  const block = Buffer.alloc(4_096, 1);
  let count = 0;
  const t0 = performance.now();
  try {
    while (performance.now() - t0 < 2_000 && count < 20_000) {
      writeSync(fd, block, 0, block.length, (count % 256) * block.length);
      fdatasyncSync(fd);
      count++;
    }
  } finally {
    closeSync(fd);
    rmSync(file);
  }
  return Math.round(count / ((performance.now() - t0) / 1000));
}
