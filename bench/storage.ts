// Storage service throughput through the real daemons: 1 MiB chunk writes on a chain of one and a
// chain of three (every byte stored three times), and 1 MiB reads, each beside fio's direct
// sequential write and read on the same disk and the loopback TCP limit (iperf3), measured in the
// same run (ratios). Uses the test cluster helper: one mgmtd and three storage processes on
// loopback. Each case also prints the CPU it cost per MiB, in the client and in the storage
// processes (all their threads, kernel time included): on a shared machine throughput follows the
// neighbours' load, CPU per MiB much less.
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { chunkId } from '../daemons/common/layout.js';
import { TestCluster } from '../test/helpers/cluster.js';
import { fio } from './fio.js';
import { iperf3LoopbackBytesPerSecond } from './loopback-limit.js';
import { cpuDuring } from './process-cpu.js';

const MiB = 1024 * 1024;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
/** Writes and reads in flight, as many as fio's queue depth in the same run. */
const CONCURRENCY = 16;

interface Row {
  case: string;
  mibPerSec: number;
  ratio?: number;
  against?: string;
  /** CPU milliseconds per MiB moved: this (client) process, and the storage processes together. */
  clientCpuMsPerMiB?: number;
  storageCpuMsPerMiB?: number;
}

/** Runs `work` (which moves MiB) and reports the CPU it cost per MiB on each side. */
async function withCpu<T extends { mib: number }>(
  cluster: TestCluster,
  work: () => Promise<T>,
): Promise<T & { clientCpuMsPerMiB: number; storageCpuMsPerMiB: number }> {
  const { result, daemonsMs, ownMs } = await cpuDuring(() => cluster.storage.values(), work);
  const perMiB = (ms: number) => Math.round((ms / Math.max(1, result.mib)) * 100) / 100;
  return { ...result, clientCpuMsPerMiB: perMiB(ownMs), storageCpuMsPerMiB: perMiB(daemonsMs) };
}

async function timedWrites(
  cluster: TestCluster,
  chainId: number,
  inode: number,
): Promise<{ mibPerSec: number; chunks: number; mib: number }> {
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
  return { mibPerSec: next / ((Date.now() - started) / 1000), chunks: next, mib: next };
}

async function timedReads(
  cluster: TestCluster,
  chainId: number,
  inode: number,
  chunks: number,
): Promise<{ mibPerSec: number; mib: number }> {
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
  return { mibPerSec: done / ((Date.now() - started) / 1000), mib: done };
}

export async function run(): Promise<{ rows: Row[]; load: number[] }> {
  const cluster = new TestCluster({
    name: 'bench-storage',
    storageNodes: [101, 102, 103],
    chains: [
      { chainId: 1, nodes: [101] },
      { chainId: 3, nodes: [101, 102, 103] },
    ],
    cadence: 'bench',
  });
  await cluster.start();
  const rows: Row[] = [];
  try {
    const disk = path.join(cluster.dir, 'fio');
    mkdirSync(disk, { recursive: true });
    const fioWrite = fio(disk, ['--rw=write', '--bs=1M', '--iodepth=16'], SECONDS).measure;
    // The durable ceiling: every acknowledged chunk write is on disk, fio's plain writes are not.
    const fioWriteSync = fio(
      disk,
      ['--rw=write', '--bs=1M', '--iodepth=16', '--fdatasync=16'],
      SECONDS,
    ).measure;
    const fioRead = fio(disk, ['--rw=read', '--bs=1M', '--iodepth=16'], SECONDS).measure;
    // Every byte a client writes crosses loopback TCP once before any disk sees it.
    const loopbackBytes = await iperf3LoopbackBytesPerSecond(SECONDS);
    const loopback = loopbackBytes === undefined ? undefined : loopbackBytes / MiB;
    const ratio = (value: number, base: number | undefined) =>
      base ? Math.round((value / base) * 100) / 100 : undefined;
    rows.push({
      case: 'fio direct sequential write 1 MiB qd16 (raw disk)',
      mibPerSec: fioWrite?.mibPerSec ?? 0,
    });
    rows.push({
      case: 'fio direct sequential write 1 MiB qd16, fdatasync every 16',
      mibPerSec: fioWriteSync?.mibPerSec ?? 0,
    });
    rows.push({
      case: 'fio direct sequential read 1 MiB qd16 (raw disk)',
      mibPerSec: fioRead?.mibPerSec ?? 0,
    });
    rows.push({
      case: 'iperf3 loopback TCP, 1 stream',
      mibPerSec: Math.round(loopback ?? 0),
    });
    const cpu = (m: { clientCpuMsPerMiB: number; storageCpuMsPerMiB: number }) => ({
      clientCpuMsPerMiB: m.clientCpuMsPerMiB,
      storageCpuMsPerMiB: m.storageCpuMsPerMiB,
    });
    const w1 = await withCpu(cluster, () => timedWrites(cluster, 1, 1));
    rows.push({
      case: `chain-1 1 MiB writes, ${CONCURRENCY} in flight`,
      mibPerSec: Math.round(w1.mibPerSec),
      ratio: ratio(w1.mibPerSec, fioWrite?.mibPerSec),
      against: 'fio write (bar 0.6)',
      ...cpu(w1),
    });
    rows.push({
      case: `chain-1 1 MiB writes vs the durable ceiling`,
      mibPerSec: Math.round(w1.mibPerSec),
      ratio: ratio(w1.mibPerSec, fioWriteSync?.mibPerSec),
      against: 'fio write + fdatasync',
    });
    rows.push({
      case: `chain-1 1 MiB writes vs loopback TCP`,
      mibPerSec: Math.round(w1.mibPerSec),
      ratio: ratio(w1.mibPerSec, loopback),
      against: 'iperf3 loopback',
    });
    const w3 = await withCpu(cluster, () => timedWrites(cluster, 3, 3));
    rows.push({
      case: `chain-3 1 MiB writes, ${CONCURRENCY} in flight`,
      mibPerSec: Math.round(w3.mibPerSec),
      ratio: ratio(w3.mibPerSec, w1.mibPerSec),
      against: 'chain-1 writes',
      ...cpu(w3),
    });
    const r1 = await withCpu(cluster, () => timedReads(cluster, 1, 1, w1.chunks));
    rows.push({
      case: 'chain-1 1 MiB reads',
      mibPerSec: Math.round(r1.mibPerSec),
      ratio: ratio(r1.mibPerSec, fioRead?.mibPerSec),
      against: 'fio read',
      ...cpu(r1),
    });
    const r3 = await withCpu(cluster, () => timedReads(cluster, 3, 3, w3.chunks));
    rows.push({
      case: 'chain-3 1 MiB reads (any replica)',
      mibPerSec: Math.round(r3.mibPerSec),
      ratio: ratio(r3.mibPerSec, fioRead?.mibPerSec),
      against: 'fio read',
      ...cpu(r3),
    });
  } finally {
    await cluster.stop();
  }
  const load = loadavg().map((l) => Math.round(l * 100) / 100);
  for (const row of rows) {
    const cpu =
      row.storageCpuMsPerMiB !== undefined
        ? `  cpu ms/MiB client ${row.clientCpuMsPerMiB?.toFixed(2)} storage ${row.storageCpuMsPerMiB.toFixed(2)}`
        : '';
    console.log(
      `${row.case.padEnd(52)} ${String(row.mibPerSec).padStart(7)} MiB/s${row.ratio !== undefined ? `  ${row.ratio.toFixed(2)} × ${row.against}` : ''}${cpu}`,
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
