// USRBIO against the mount and the raw disk, same run: sequential 1 MiB reads at queue depth 16
// and 4 KiB random reads at queue depth 32 (the reference depths) through the native ring API, through the FUSE mount (fio, io_uring,
// O_DIRECT so the page cache stays out) and on the local disk directory the storage targets live
// on (fio direct: the machine's limit). The cluster is mgmtd, three storage processes, four
// chains of length 3 (every read goes to one replica of a 3-way chain), one meta process, the
// FUSE daemon. The file is the one fio laid out through the mount.
// Every figure is measured in BENCH_ROUNDS rounds (default 3); the printout gives medians, the
// ratios being taken within each round, and the range of the native API's ratios.
// `node dist/bench/usrbio.js`; prints figures and ratios, writes bench/results/usrbio.json.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { Usrbio, type UsrbioFile } from '../daemons/client/usrbio.js';
import { FuseTestCluster } from '../test/fuse/fuse-cluster.js';
import { testDir } from '../test/helpers/cluster.js';
import { fio, type FioMeasure, RAMP_SECONDS } from './fio.js';
import { benchRounds, medianAndRange } from './median.js';

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

interface Pair {
  seq: Measure | null;
  rand: Measure | null;
}

/** One round: the disk, the mount and the native API, back to back. */
interface Round {
  disk: Pair;
  mount: Pair;
  native: Pair;
}

const ratioOf = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || b === 0 ? undefined : a / b;

/** Median and range over the rounds that have both figures. */
function spread(values: ReadonlyArray<number | undefined>) {
  const known = values.filter((v): v is number => v !== undefined);
  return known.length === 0 ? undefined : medianAndRange(known);
}

/** Both native workloads on the file fio laid out through the mount, opened for this round. */
async function nativeReads(ring: Usrbio, cluster: FuseTestCluster): Promise<Pair> {
  const fh = await open(cluster.path('fio.data'), 'r');
  try {
    const file = await ring.registerFile(fh.fd);
    const chunks = FILE_BYTES / MiB;
    const blocks = FILE_BYTES / 4096;
    const seq = await ringReads(ring, file, MiB, SEQ_DEPTH, (i) => (i % chunks) * MiB);
    const rand = await ringReads(
      ring,
      file,
      4096,
      32,
      () => Math.floor(Math.random() * blocks) * 4096,
    );
    await ring.unregisterFile(file);
    return { seq, rand };
  } finally {
    await fh.close();
  }
}

export async function run(): Promise<unknown> {
  const rounds = benchRounds();
  const diskDir = testDir('bench-usrbio-disk');
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
  const measuredRounds: Round[] = [];
  const errors: string[] = [];
  try {
    await cluster.start({ 'usrbio.dir': socketDir });
    let ring: Usrbio | undefined;
    try {
      for (let round = 1; round <= rounds; round++) {
        process.stderr.write(`round ${round}/${rounds}: raw disk, mount, native API...\n`);
        const disk = {
          seq: measured(fio(diskDir, SEQ, SECONDS).measure),
          rand: measured(fio(diskDir, RAND, SECONDS).measure),
        };
        const seqRun = fio(cluster.mountpoint, SEQ, SECONDS); // lays out fio.data through the mount
        const randRun = fio(cluster.mountpoint, RAND, SECONDS);
        for (const e of [seqRun.error, randRun.error]) if (e !== undefined) errors.push(e);
        const mount = { seq: measured(seqRun.measure), rand: measured(randRun.measure) };
        ring ??= await Usrbio.open(cluster.mountpoint, { bytes: 64 * MiB, entries: 64, socketDir });
        measuredRounds.push({ disk, mount, native: await nativeReads(ring, cluster) });
      }
    } finally {
      ring?.close();
    }
  } finally {
    await cluster.stop();
    rmSync(socketDir, { recursive: true, force: true });
    rmSync(diskDir, { recursive: true, force: true });
  }

  const of = (pick: (r: Round) => number | undefined) => spread(measuredRounds.map(pick));
  const figures = {
    seq: {
      disk: of((r) => r.disk.seq?.mibPerSec),
      mount: of((r) => r.mount.seq?.mibPerSec),
      native: of((r) => r.native.seq?.mibPerSec),
    },
    rand: {
      disk: of((r) => r.disk.rand?.iops),
      mount: of((r) => r.mount.rand?.iops),
      native: of((r) => r.native.rand?.iops),
    },
  };
  // Ratios are taken within each round, then their median: the round's passes are seconds apart.
  const ratios = {
    nativeSeqOfDisk: of((r) => ratioOf(r.native.seq?.mibPerSec, r.disk.seq?.mibPerSec)),
    nativeRandOfDisk: of((r) => ratioOf(r.native.rand?.iops, r.disk.rand?.iops)),
    mountSeqOfDisk: of((r) => ratioOf(r.mount.seq?.mibPerSec, r.disk.seq?.mibPerSec)),
    mountRandOfDisk: of((r) => ratioOf(r.mount.rand?.iops, r.disk.rand?.iops)),
    nativeSeqOfMount: of((r) => ratioOf(r.native.seq?.mibPerSec, r.mount.seq?.mibPerSec)),
    nativeRandOfMount: of((r) => ratioOf(r.native.rand?.iops, r.mount.rand?.iops)),
  };
  const n = (s: ReturnType<typeof spread>, unit: string) =>
    s ? `${Math.round(s.median)} ${unit}` : 'n/a';
  const r = (s: ReturnType<typeof spread>) => (s ? s.median.toFixed(2) : 'n/a');
  const range = (s: ReturnType<typeof spread>) =>
    s ? `${s.min.toFixed(2)}–${s.max.toFixed(2)}` : 'n/a';
  console.log(
    `usrbio: medians of ${rounds} rounds, ${SECONDS} s per run, chains of length 3 on three storage processes`,
  );
  console.log(`  sequential 1 MiB (qd ${SEQ_DEPTH}):`);
  console.log(`    raw disk (fio direct): ${n(figures.seq.disk, 'MiB/s')}`);
  console.log(
    `    FUSE mount (fio direct): ${n(figures.seq.mount, 'MiB/s')}  = ${r(ratios.mountSeqOfDisk)} of disk`,
  );
  console.log(
    `    native API: ${n(figures.seq.native, 'MiB/s')}  = ${r(ratios.nativeSeqOfDisk)} of disk (rounds ${range(ratios.nativeSeqOfDisk)}; bar 0.70), ${r(ratios.nativeSeqOfMount)} of mount`,
  );
  console.log(`  random 4 KiB (qd 32):`);
  console.log(`    raw disk (fio direct): ${n(figures.rand.disk, 'IOPS')}`);
  console.log(
    `    FUSE mount (fio direct): ${n(figures.rand.mount, 'IOPS')}  = ${r(ratios.mountRandOfDisk)} of disk`,
  );
  console.log(
    `    native API: ${n(figures.rand.native, 'IOPS')}  = ${r(ratios.nativeRandOfDisk)} of disk (rounds ${range(ratios.nativeRandOfDisk)}; bar 0.25), ${r(ratios.nativeRandOfMount)} of mount`,
  );
  if (errors.length > 0) console.log(`  fio through the mount failed: ${errors.join('; ')}`);
  const result = { seconds: SECONDS, rounds: measuredRounds, figures, ratios };
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/usrbio.json', `${JSON.stringify(result, null, 2)}\n`);
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
