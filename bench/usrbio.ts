// USRBIO against the mount and the raw disk, same run: sequential 1 MiB reads at queue depth 16
// and 4 KiB random reads at queue depth 32 (the reference depths) through the native ring API, through the FUSE mount (fio, io_uring,
// O_DIRECT so the page cache stays out) and on the local disk directory the storage targets live
// on (fio direct: the machine's limit). The cluster is mgmtd, three storage processes, four
// chains of length 3 (every read goes to one replica of a 3-way chain), one meta process, the
// FUSE daemon. The file is the one fio laid out through the mount.
// `node dist/bench/usrbio.js`; prints figures and ratios, writes bench/results/usrbio.json.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { Usrbio, type UsrbioFile } from '../daemons/client/usrbio.js';
import { FuseTestCluster } from '../test/fuse/fuse-cluster.js';
import { testDir } from '../test/helpers/cluster.js';
import { fio, type FioMeasure, RAMP_SECONDS } from './fio.js';

const SECONDS = Number(process.env.BENCH_USRBIO_SECONDS ?? 5);
const FILE_BYTES = 320 * 1024 * 1024; // fio's --size in bench/fio.ts
const MiB = 1024 * 1024;

interface Measure {
  mibPerSec: number;
  iops: number;
}

/**
 * Keeps `depth` reads of `size` in flight for SECONDS; offsets from `next`. The first RAMP_SECONDS
 * are run and not counted, as fio's ramp_time does for the disk and mount figures beside these
 * (the daemons' region read path is still being compiled then).
 */
async function ringReads(
  ring: Usrbio,
  file: UsrbioFile,
  size: number,
  depth: number,
  next: (i: number) => number,
): Promise<Measure> {
  await ringReadsFor(RAMP_SECONDS, ring, file, size, depth, next);
  return ringReadsFor(SECONDS, ring, file, size, depth, next);
}

async function ringReadsFor(
  seconds: number,
  ring: Usrbio,
  file: UsrbioFile,
  size: number,
  depth: number,
  next: (i: number) => number,
): Promise<Measure> {
  const started = performance.now();
  const end = started + seconds * 1000;
  let issued = 0;
  let done = 0;
  let inFlight = 0;
  const free = Array.from({ length: depth }, (_, i) => i);
  while (performance.now() < end || inFlight > 0) {
    while (free.length > 0 && performance.now() < end) {
      const slot = free.pop()!;
      const buffer = ring.data.subarray(slot * size, (slot + 1) * size);
      if (!ring.prepare({ op: 'read', file, offset: next(issued++), buffer, userData: slot }))
        throw new Error('ring full below its depth');
      inFlight++;
    }
    ring.submit();
    for (const c of await ring.wait(1, 30_000)) {
      if (c.result !== size) throw new Error(`read returned ${c.result} (${c.error ?? ''})`);
      free.push(c.userData);
      inFlight--;
      done++;
    }
  }
  const elapsed = (performance.now() - started) / 1000;
  return { mibPerSec: (done * size) / MiB / elapsed, iops: done / elapsed };
}

const SEQ_DEPTH = 16;
const SEQ = ['--rw=read', '--bs=1M', `--iodepth=${SEQ_DEPTH}`];
const RAND = ['--rw=randread', '--bs=4k', '--iodepth=32'];

function measured(m: FioMeasure | null): Measure | null {
  return m ? { mibPerSec: m.mibPerSec, iops: m.iops } : null;
}

export async function run(): Promise<unknown> {
  const diskDir = testDir('bench-usrbio-disk');
  const disk = {
    seq: measured(fio(diskDir, SEQ, SECONDS).measure),
    rand: measured(fio(diskDir, RAND, SECONDS).measure),
  };
  rmSync(diskDir, { recursive: true, force: true });

  const cluster = new FuseTestCluster(
    'bench-usrbio',
    {
      storageNodes: [101, 102, 103],
      chains: [1, 2, 3, 4].map((chainId) => ({
        chainId,
        nodes: [0, 1, 2].map((k) => 101 + ((chainId + k) % 3)),
      })),
    },
    'bench',
  );
  const socketDir = testDir('bench-usrbio-sock');
  let mount: { seq: Measure | null; rand: Measure | null; errors: string[] };
  let native: { seq: Measure; rand: Measure };
  try {
    await cluster.start({ 'usrbio.dir': socketDir });
    const seqRun = fio(cluster.mountpoint, SEQ, SECONDS); // lays out fio.data through the mount
    const randRun = fio(cluster.mountpoint, RAND, SECONDS);
    mount = {
      seq: measured(seqRun.measure),
      rand: measured(randRun.measure),
      errors: [seqRun.error, randRun.error].filter((e): e is string => e !== undefined),
    };
    const ring = await Usrbio.open(cluster.mountpoint, {
      bytes: 64 * MiB,
      entries: 64,
      socketDir,
    });
    const fh = await open(cluster.path('fio.data'), 'r');
    try {
      const file = await ring.registerFile(fh.fd);
      const chunks = FILE_BYTES / MiB;
      const seq = await ringReads(ring, file, MiB, SEQ_DEPTH, (i) => (i % chunks) * MiB);
      const blocks = FILE_BYTES / 4096;
      const rand = await ringReads(
        ring,
        file,
        4096,
        32,
        () => Math.floor(Math.random() * blocks) * 4096,
      );
      native = { seq, rand };
    } finally {
      ring.close();
      await fh.close();
    }
  } finally {
    await cluster.stop();
    rmSync(socketDir, { recursive: true, force: true });
  }

  const r = (n: number | undefined) => (n === undefined ? 'n/a' : n.toFixed(2));
  const ratio = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined ? undefined : a / b;
  const ratios = {
    nativeSeqOfDisk: ratio(native.seq.mibPerSec, disk.seq?.mibPerSec),
    nativeRandOfDisk: ratio(native.rand.iops, disk.rand?.iops),
    mountSeqOfDisk: ratio(mount.seq?.mibPerSec, disk.seq?.mibPerSec),
    mountRandOfDisk: ratio(mount.rand?.iops, disk.rand?.iops),
    nativeSeqOfMount: ratio(native.seq.mibPerSec, mount.seq?.mibPerSec),
    nativeRandOfMount: ratio(native.rand.iops, mount.rand?.iops),
  };
  const fig = (m: Measure | null | undefined) =>
    m ? `${Math.round(m.mibPerSec)} MiB/s, ${Math.round(m.iops)} IOPS` : 'n/a';
  console.log(`usrbio: ${SECONDS} s per run, chains of length 3 on three storage processes`);
  console.log(`  sequential 1 MiB (qd ${SEQ_DEPTH}):`);
  console.log(`    raw disk (fio direct): ${fig(disk.seq)}`);
  console.log(
    `    FUSE mount (fio direct): ${fig(mount.seq)}  = ${r(ratios.mountSeqOfDisk)} of disk`,
  );
  console.log(
    `    native API: ${fig(native.seq)}  = ${r(ratios.nativeSeqOfDisk)} of disk (bar 0.70), ${r(ratios.nativeSeqOfMount)} of mount`,
  );
  console.log(`  random 4 KiB (qd 32):`);
  console.log(`    raw disk (fio direct): ${fig(disk.rand)}`);
  console.log(
    `    FUSE mount (fio direct): ${fig(mount.rand)}  = ${r(ratios.mountRandOfDisk)} of disk`,
  );
  console.log(
    `    native API: ${fig(native.rand)}  = ${r(ratios.nativeRandOfDisk)} of disk (bar 0.25), ${r(ratios.nativeRandOfMount)} of mount`,
  );
  if (mount.errors.length > 0)
    console.log(`  fio through the mount failed: ${mount.errors.join('; ')}`);
  const result = { seconds: SECONDS, disk, mount, native, ratios };
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/usrbio.json', `${JSON.stringify(result, null, 2)}\n`);
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
