import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  generatePlacement,
  type Placement,
  placementLowerBound,
} from '../../daemons/mgmtd/placement.js';

const nodes = (v: number) => Array.from({ length: v }, (_, i) => 10001 + i);

/** Recomputes every property from the output alone, trusting nothing the generator reports. */
function check(p: Placement, v: number, d: number, r: number, k: number): number {
  const byId = new Map(p.targets.map((t) => [t.targetId, t]));
  assert.equal(p.targets.length, v * d * r, 'one target per slot');
  assert.equal(byId.size, p.targets.length, 'target ids are unique');
  assert.equal(p.chains.length, (v * d * r) / k);
  const perNodeDisk = new Map<string, number>();
  for (const t of p.targets)
    perNodeDisk.set(
      `${t.nodeId}/${t.diskIndex}`,
      (perNodeDisk.get(`${t.nodeId}/${t.diskIndex}`) ?? 0) + 1,
    );
  assert.equal(perNodeDisk.size, v * d, 'every disk of every node holds targets');
  for (const count of perNodeDisk.values())
    assert.equal(count, r, 'every disk holds exactly r targets');

  const used = new Set<number>();
  const pair = new Map<string, number>();
  for (const chain of p.chains) {
    assert.equal(chain.targetIds.length, k);
    const chainNodes = chain.targetIds.map((id) => {
      const t = byId.get(id);
      assert.ok(t, `chain ${chain.chainId} names unknown target ${id}`);
      assert.equal(t.chainId, chain.chainId);
      assert.ok(!used.has(id), `target ${id} is in two chains`);
      used.add(id);
      return t.nodeId;
    });
    assert.equal(new Set(chainNodes).size, k, `chain ${chain.chainId} repeats a node`);
    const disks = new Set(chain.targetIds.map((id) => byId.get(id)!.diskIndex));
    assert.equal(disks.size, 1, 'a chain stays on one disk index');
    for (const a of chainNodes)
      for (const b of chainNodes)
        if (a < b) pair.set(`${a},${b}`, (pair.get(`${a},${b}`) ?? 0) + 1);
  }
  assert.equal(used.size, p.targets.length, 'every target is in a chain');
  assert.deepEqual([...p.chainTable.chainIds].sort(), p.chains.map((c) => c.chainId).sort());
  const max = Math.max(0, ...pair.values());
  assert.equal(p.stats.maxPairCooccurrence, max, 'reported co-occurrence matches the output');
  return max;
}

describe('placement', () => {
  it('meets the lower bound on the example of the 3FS guide (v=5, k=3, r=6)', () => {
    const p = generatePlacement({
      nodeIds: nodes(5),
      disksPerNode: 1,
      targetsPerDisk: 6,
      replication: 3,
    });
    assert.equal(check(p, 5, 1, 6, 3), placementLowerBound(5, 1, 6, 3));
    assert.equal(placementLowerBound(5, 1, 6, 3), 3);
  });

  for (const [v, d, r, k] of [
    [3, 1, 1, 3],
    [4, 2, 3, 2],
    [6, 2, 4, 3],
    [10, 4, 6, 3],
    [12, 8, 6, 3],
    [20, 4, 6, 2],
    [50, 4, 6, 3],
  ] as const) {
    it(`v=${v} d=${d} r=${r} k=${k}: balanced, valid, within one of the bound`, () => {
      const p = generatePlacement({
        nodeIds: nodes(v),
        disksPerNode: d,
        targetsPerDisk: r,
        replication: k,
      });
      const max = check(p, v, d, r, k);
      assert.ok(
        max <= placementLowerBound(v, d, r, k) + 1,
        `max ${max} vs bound ${placementLowerBound(v, d, r, k)}`,
      );
      assert.ok(p.stats.maxHeads - p.stats.minHeads <= 2, 'heads spread evenly');
    });
  }

  it('is deterministic, and independent of the order node ids are given in', () => {
    const input = { nodeIds: nodes(9), disksPerNode: 2, targetsPerDisk: 3, replication: 3 };
    const a = generatePlacement(input);
    const b = generatePlacement({ ...input, nodeIds: [...input.nodeIds].reverse() });
    assert.deepEqual(a, b);
  });

  it('uses the 3FS id conventions', () => {
    const p = generatePlacement({
      nodeIds: [10001, 10002, 10003],
      disksPerNode: 2,
      targetsPerDisk: 1,
      replication: 3,
    });
    assert.deepEqual(
      p.targets.map((t) => t.targetId),
      [1000100101, 1000100201, 1000200101, 1000200201, 1000300101, 1000300201],
    );
    assert.deepEqual(p.chainTable.chainIds, [100001, 200001]);
  });

  it('refuses impossible or malformed inputs with a clear error', () => {
    const base = { nodeIds: nodes(4), disksPerNode: 1, targetsPerDisk: 3, replication: 3 };
    assert.throws(() => generatePlacement({ ...base, replication: 5 }), /needs at least 5 nodes/);
    assert.throws(
      () => generatePlacement({ ...base, targetsPerDisk: 2 }),
      /multiple of replication/,
    );
    assert.throws(() => generatePlacement({ ...base, nodeIds: [1, 1, 2, 3] }), /distinct/);
    assert.throws(() => generatePlacement({ ...base, disksPerNode: 0 }), /disks per node/);
    assert.throws(() => generatePlacement({ ...base, targetsPerDisk: 1.5 }), /targets per disk/);
  });
});
