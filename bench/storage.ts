// Storage service throughput through the real daemons: 1 MiB chunk writes on a chain of one and a
// chain of three (every byte stored three times), and 1 MiB reads, each beside fio's direct
// sequential write and read on the same disk measured in the same run (ratios). Uses the test
// cluster helper: one mgmtd and three storage processes on loopback.
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { chunkId } from '../daemons/common/layout.js';
import { TestCluster } from '../test/helpers/cluster.js';
import { fio } from './fio.js';

const MiB = 1024 * 1024;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONCURRENCY = 8;

interface Row {
  case: string;
  mibPerSec: number;
  ratio?: number;
  against?: string;
}

async function timedWrites(
  cluster: TestCluster,
  chainId: number,
  inode: number,
): Promise<{ mibPerSec: number; chunks: number }> {
  const data = Buffer.alloc(MiB, 0xab);
  const deadline = Date.now() + SECONDS * 1000;
  let next = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < deadline) {
        const index = next++;
        await cluster.client.writeChunk(chainId, chunkId(inode, index), 0, data, MiB);
      }
    }),
  );
  return { mibPerSec: next / ((Date.now() - started) / 1000), chunks: next };
}

async function timedReads(
  cluster: TestCluster,
  chainId: number,
  inode: number,
  chunks: number,
): Promise<number> {
  const deadline = Date.now() + SECONDS * 1000;
  let done = 0;
  let next = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < deadline) {
        const index = next++ % chunks;
        const [data] = await cluster.client.readChunks([
          { chainId, chunkId: chunkId(inode, index), offset: 0, length: MiB },
        ]);
        if (data?.length !== MiB) throw new Error(`chunk ${index} read ${data?.length} bytes`);
        done++;
      }
    }),
  );
  return done / ((Date.now() - started) / 1000);
}

export async function run(): Promise<{ rows: Row[]; load: number[] }> {
  const cluster = new TestCluster({
    name: 'bench-storage',
    storageNodes: [101, 102, 103],
    chains: [
      { chainId: 1, nodes: [101] },
      { chainId: 3, nodes: [101, 102, 103] },
    ],
  });
  await cluster.start();
  const rows: Row[] = [];
  try {
    const disk = path.join(cluster.dir, 'fio');
    mkdirSync(disk, { recursive: true });
    const fioWrite = fio(disk, ['--rw=write', '--bs=1M', '--iodepth=16'], SECONDS).measure;
    const fioRead = fio(disk, ['--rw=read', '--bs=1M', '--iodepth=16'], SECONDS).measure;
    const ratio = (value: number, base: number | undefined) =>
      base ? Math.round((value / base) * 100) / 100 : undefined;
    rows.push({
      case: 'fio direct sequential write 1 MiB qd16 (raw disk)',
      mibPerSec: fioWrite?.mibPerSec ?? 0,
    });
    rows.push({
      case: 'fio direct sequential read 1 MiB qd16 (raw disk)',
      mibPerSec: fioRead?.mibPerSec ?? 0,
    });
    const w1 = await timedWrites(cluster, 1, 1);
    rows.push({
      case: `chain-1 1 MiB writes, ${CONCURRENCY} in flight`,
      mibPerSec: Math.round(w1.mibPerSec),
      ratio: ratio(w1.mibPerSec, fioWrite?.mibPerSec),
      against: 'fio write (bar 0.6)',
    });
    const w3 = await timedWrites(cluster, 3, 3);
    rows.push({
      case: `chain-3 1 MiB writes, ${CONCURRENCY} in flight`,
      mibPerSec: Math.round(w3.mibPerSec),
      ratio: ratio(w3.mibPerSec, w1.mibPerSec),
      against: 'chain-1 writes',
    });
    const r1 = await timedReads(cluster, 1, 1, w1.chunks);
    rows.push({
      case: 'chain-1 1 MiB reads',
      mibPerSec: Math.round(r1),
      ratio: ratio(r1, fioRead?.mibPerSec),
      against: 'fio read',
    });
    const r3 = await timedReads(cluster, 3, 3, w3.chunks);
    rows.push({
      case: 'chain-3 1 MiB reads (any replica)',
      mibPerSec: Math.round(r3),
      ratio: ratio(r3, fioRead?.mibPerSec),
      against: 'fio read',
    });
  } finally {
    await cluster.stop();
  }
  const load = loadavg().map((l) => Math.round(l * 100) / 100);
  for (const row of rows) {
    console.log(
      `${row.case.padEnd(52)} ${String(row.mibPerSec).padStart(7)} MiB/s${row.ratio !== undefined ? `  ${row.ratio.toFixed(2)} × ${row.against}` : ''}`,
    );
  }
  console.log(`load average ${load.join(' ')} (2 cores)`);
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(
    'bench/results/storage.json',
    `${JSON.stringify({ rows, load, seconds: SECONDS }, null, 2)}\n`,
  );
  return { rows, load };
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
