// Placement quality report: for clusters from 3 to 200 nodes, the worst pairwise co-occurrence of
// nodes across chains against the lower bound ceil(r·d·(k−1)/(v−1)), and how long generation took.
// Not a speed benchmark against the machine: a quality table for docs/placement.md.
import { generatePlacement } from '../daemons/mgmtd/placement.js';

export interface PlacementRow {
  nodes: number;
  disks: number;
  targetsPerDisk: number;
  replication: number;
  chains: number;
  maxPairCooccurrence: number;
  lowerBound: number;
  headsMinMax: [number, number];
  generateMs: number;
}

const cases: Array<[number, number, number, number]> = [
  [3, 1, 2, 3],
  [5, 1, 6, 3],
  [6, 4, 6, 3],
  [10, 4, 6, 3],
  [10, 8, 6, 2],
  [16, 8, 6, 3],
  [25, 8, 6, 3],
  [50, 8, 6, 3],
  [100, 8, 6, 3],
  [150, 16, 6, 3],
  [180, 16, 6, 2],
  [200, 16, 6, 3],
];

export async function run(): Promise<PlacementRow[]> {
  const rows: PlacementRow[] = [];
  for (const [v, d, r, k] of cases) {
    const started = performance.now();
    const p = generatePlacement({
      nodeIds: Array.from({ length: v }, (_, i) => 10001 + i),
      disksPerNode: d,
      targetsPerDisk: r,
      replication: k,
    });
    rows.push({
      nodes: v,
      disks: d,
      targetsPerDisk: r,
      replication: k,
      chains: p.chains.length,
      maxPairCooccurrence: p.stats.maxPairCooccurrence,
      lowerBound: p.stats.lowerBound,
      headsMinMax: [p.stats.minHeads, p.stats.maxHeads],
      generateMs: Math.round(performance.now() - started),
    });
  }
  console.log(
    '| v | d | r | k | chains | max co-occurrence | lower bound | heads min–max | time (ms) |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const row of rows) {
    console.log(
      `| ${row.nodes} | ${row.disks} | ${row.targetsPerDisk} | ${row.replication} | ${row.chains} | ` +
        `${row.maxPairCooccurrence} | ${row.lowerBound} | ${row.headsMinMax[0]}–${row.headsMinMax[1]} | ${row.generateMs} |`,
    );
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
