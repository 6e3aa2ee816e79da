// Issue 6's benchmark: fio through the FUSE mount of a cluster with chains of three, beside fio on
// the raw disk directory that holds the targets and fio through a FUSE passthrough (bindfs) of
// that directory, all in the same run, as ratios to the raw disk; plus a metadata workload (one
// process creating and stating files) through the mount, through bindfs and on the local disk, and
// local creates each made durable (as the mount's are). Prints a table and writes
// bench/results/mount.json and bench/results/mount.png.
import { spawnSync } from 'node:child_process';
import { mkdirSync, promises as fs, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { FuseTestCluster } from '../test/fuse/fuse-cluster.js';
import { barChartPng } from './chart.js';
import { fio, type FioMeasure, RAMP_SECONDS } from './fio.js';
import { benchRounds, median, medianAndRange } from './median.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const META_FILES = Number(process.env.BENCH_META_FILES ?? 20_000);
/** Rounds (benchRounds): the table shows medians over them and the range of the mount's ratio. */
const ROUNDS = benchRounds();
/**
 * Seconds of one pass of every fio workload through the mount before round 1, not counted
 * (BENCH_WARMUP_SECONDS; 0 skips it). The daemons' data paths are JIT-compiled while they run: a
 * storage process gets a few hundred write calls a second, so V8 was still optimizing its write
 * path well into the first 6 s pass, and without this pass sequential writes through the mount
 * rose round by round (230, 278, 311 MiB/s in one run) while the raw disk did not. The raw disk
 * and bindfs have no JIT to warm. The warm-up figures are printed and kept in mount.json.
 */
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 5);
if (!(Number.isInteger(WARMUP_SECONDS) && WARMUP_SECONDS >= 0 && WARMUP_SECONDS <= 120)) {
  throw new Error(
    `BENCH_WARMUP_SECONDS must be an integer 0..120, got '${process.env.BENCH_WARMUP_SECONDS}'`,
  );
}

const ratio = (a: number, b: number) => (b > 0 ? Math.round((a / b) * 1000) / 1000 : 0);
const round2 = (value: number) => Math.round(value * 100) / 100;

/** One workload's rounds: the median of each target, and of the per-round ratios to raw. */
function summarize(rounds: ReadonlyArray<{ raw: number; bindfs?: number; mount: number }>) {
  const mountRatio = medianAndRange(rounds.map((r) => ratio(r.mount, r.raw)));
  // Left out (printed as '-') when no round has a bindfs figure.
  const withBindfs = rounds.some((r) => r.bindfs !== undefined);
  return {
    raw: round2(median(rounds.map((r) => r.raw))),
    bindfs: withBindfs ? round2(median(rounds.map((r) => r.bindfs ?? 0))) : undefined,
    mount: round2(median(rounds.map((r) => r.mount))),
    bindfsRatio: withBindfs ? median(rounds.map((r) => ratio(r.bindfs ?? 0, r.raw))) : undefined,
    mountRatio: mountRatio.median,
    mountRatioRange: [mountRatio.min, mountRatio.max] as const,
    rounds,
  };
}

interface Workload {
  name: string;
  args: string[];
  metric: 'mibPerSec' | 'iops';
  /** Floor for the mount as a ratio to the raw disk (issue 6). */
  floor?: number;
}

const workloads: Workload[] = [
  {
    name: 'seq write 1 MiB, 1 job, qd16',
    args: ['--rw=write', '--bs=1M', '--iodepth=16'],
    metric: 'mibPerSec',
    floor: 0.08,
  },
  {
    name: 'seq write 1 MiB, 4 jobs, qd16',
    args: [
      '--rw=write',
      '--bs=1M',
      '--iodepth=16',
      '--numjobs=4',
      '--group_reporting',
      '--size=80M',
    ],
    metric: 'mibPerSec',
  },
  {
    name: 'seq read 1 MiB, 1 job, qd16',
    args: ['--rw=read', '--bs=1M', '--iodepth=16'],
    metric: 'mibPerSec',
    floor: 0.4,
  },
  {
    name: 'seq read 1 MiB, 4 jobs, qd16',
    args: [
      '--rw=read',
      '--bs=1M',
      '--iodepth=16',
      '--numjobs=4',
      '--group_reporting',
      '--size=80M',
    ],
    metric: 'mibPerSec',
  },
  {
    name: 'rand read 4 KiB, io_uring qd32',
    args: ['--rw=randread', '--bs=4k', '--iodepth=32'],
    metric: 'iops',
    floor: 0.1,
  },
];

async function metadata(
  dir: string,
  files: number,
): Promise<{ createsPerSec: number; statsPerSec: number }> {
  await fs.mkdir(dir, { recursive: true });
  let started = performance.now();
  for (let i = 0; i < files; i++) await (await fs.open(path.join(dir, `f${i}`), 'w')).close();
  const createsPerSec = files / ((performance.now() - started) / 1000);
  started = performance.now();
  for (let i = 0; i < files; i++) await fs.stat(path.join(dir, `f${i}`));
  const statsPerSec = files / ((performance.now() - started) / 1000);
  return { createsPerSec: Math.round(createsPerSec), statsPerSec: Math.round(statsPerSec) };
}

/**
 * Creates on the local disk made durable one by one, as a create through the mount is (meta
 * acknowledges it once its commit is in the synced log): each create and close is followed by an
 * fsync of the directory, which commits the new entry to the file system's journal. Plain local
 * creates, the floor's reference, are durable only at the journal's next periodic commit.
 */
async function durableCreates(dir: string, files: number): Promise<number> {
  await fs.mkdir(dir, { recursive: true });
  const directory = await fs.open(dir, 'r');
  try {
    const started = performance.now();
    for (let i = 0; i < files; i++) {
      await (await fs.open(path.join(dir, `f${i}`), 'w')).close();
      await directory.sync();
    }
    return Math.round(files / ((performance.now() - started) / 1000));
  } finally {
    await directory.close();
  }
}

export async function run() {
  const nodes = [101, 102, 103];
  const cluster = new FuseTestCluster(
    'bench-mount',
    {
      storageNodes: nodes,
      chains: [1, 2, 3, 4, 5, 6].map((chainId) => ({
        chainId,
        nodes: [0, 1, 2].map((i) => nodes[(chainId + i) % 3]!),
      })),
    },
    'bench',
  );
  await cluster.start({ allowOther: true });
  const rows: Array<{
    workload: string;
    metric: Workload['metric'];
    floor?: number;
    rounds: Array<{ raw: number; bindfs?: number; mount: number }>;
  }> = workloads.map((w) => ({ workload: w.name, metric: w.metric, floor: w.floor, rounds: [] }));
  const raw = path.join(cluster.meta.base.dir, 'raw');
  const bindMount = path.join(cluster.meta.base.dir, 'bindfs');
  mkdirSync(raw, { recursive: true });
  mkdirSync(bindMount, { recursive: true });
  const bindfs = spawnSync('bindfs', [raw, bindMount], { encoding: 'utf8' });
  const mountDir = cluster.path('fio');
  await fs.mkdir(mountDir, { recursive: true });
  const value = (m: FioMeasure | null | undefined, metric: Workload['metric']) =>
    m ? (metric === 'iops' ? m.iops : m.mibPerSec) : 0;
  const meta: Array<{
    mount: Awaited<ReturnType<typeof metadata>>;
    local: Awaited<ReturnType<typeof metadata>>;
    bindfs: Awaited<ReturnType<typeof metadata>> | undefined;
    localDurableCreatesPerSec: number;
  }> = [];
  const warmup: Array<{ workload: string; mount: number }> = [];
  try {
    if (WARMUP_SECONDS > 0) {
      for (const w of workloads) {
        process.stderr.write(`warm-up: fio ${w.name} through the mount (not counted)...\n`);
        warmup.push({
          workload: w.name,
          mount: value(fio(mountDir, w.args, WARMUP_SECONDS).measure, w.metric),
        });
      }
      await metadata(cluster.path('meta-warmup'), Math.ceil(META_FILES / 10));
    }
    for (let round = 1; round <= ROUNDS; round++) {
      workloads.forEach((w, i) => {
        process.stderr.write(`round ${round}/${ROUNDS}: fio ${w.name}: raw, bindfs, mount...\n`);
        rows[i]!.rounds.push({
          raw: value(fio(raw, w.args, SECONDS).measure, w.metric),
          bindfs:
            bindfs.status === 0
              ? value(fio(bindMount, w.args, SECONDS).measure, w.metric)
              : undefined,
          mount: value(fio(mountDir, w.args, SECONDS).measure, w.metric),
        });
      });
      process.stderr.write(
        `round ${round}/${ROUNDS}: metadata, ${META_FILES} files: local disk, durable local creates, bindfs, mount...\n`,
      );
      meta.push({
        local: await metadata(path.join(raw, `meta-${round}`), META_FILES),
        localDurableCreatesPerSec: await durableCreates(
          path.join(raw, `meta-durable-${round}`),
          META_FILES,
        ),
        bindfs:
          bindfs.status === 0
            ? await metadata(path.join(bindMount, `meta-bindfs-${round}`), META_FILES)
            : undefined,
        mount: await metadata(cluster.path(`meta-${round}`), META_FILES),
      });
    }
  } finally {
    spawnSync('fusermount3', ['-u', bindMount]);
    await cluster.stop();
  }

  const table = rows.map((r) => ({
    workload: r.workload,
    unit: r.metric === 'iops' ? 'IOPS' : 'MiB/s',
    ...summarize(r.rounds),
    floor: r.floor,
  }));
  /** A metadata row; `reference` replaces the local disk's figure (and drops bindfs's). */
  const metaRow = (
    name: string,
    pick: (m: Awaited<ReturnType<typeof metadata>>) => number,
    floor?: number,
    reference?: (m: (typeof meta)[number]) => number,
  ) => ({
    workload: `${name}, 1 process, ${META_FILES} files`,
    unit: 'ops/s',
    ...summarize(
      meta.map((m) => ({
        raw: reference ? reference(m) : pick(m.local),
        bindfs: m.bindfs && !reference ? pick(m.bindfs) : undefined,
        mount: pick(m.mount),
      })),
    ),
    floor,
  });
  const metaRows =
    meta.length > 0
      ? [
          metaRow('creates', (m) => m.createsPerSec, 0.15),
          // The same creates through the mount, against local creates each made durable.
          metaRow(
            'creates, durable local',
            (m) => m.createsPerSec,
            undefined,
            (m) => m.localDurableCreatesPerSec,
          ),
          metaRow('stats', (m) => m.statsPerSec, 0.05),
        ]
      : [];
  const load = loadavg().map((l) => Math.round(l * 100) / 100);
  console.log(
    'workload'.padEnd(48),
    'unit'.padEnd(6),
    'raw'.padStart(9),
    'bindfs'.padStart(9),
    'mount'.padStart(9),
    'bindfs/raw'.padStart(11),
    'mount/raw'.padStart(10),
    'range'.padStart(13),
    'floor'.padStart(6),
  );
  for (const r of [...table, ...metaRows]) {
    const b = 'bindfs' in r ? r.bindfs : undefined;
    const br = 'bindfsRatio' in r ? r.bindfsRatio : undefined;
    console.log(
      r.workload.padEnd(48),
      r.unit.padEnd(6),
      String(r.raw).padStart(9),
      String(b ?? '-').padStart(9),
      String(r.mount).padStart(9),
      String(br ?? '-').padStart(11),
      String(r.mountRatio).padStart(10),
      r.mountRatioRange.join('–').padStart(13),
      String(r.floor ?? '-').padStart(6),
    );
  }
  console.log(
    `medians of ${ROUNDS} rounds (range: the mount's ratio in each); load average ${load.join(' ')} (2 cores); fio ${SECONDS} s per run after ${RAMP_SECONDS} s not counted, direct=1; chains of 3`,
  );
  if (warmup.length > 0) {
    console.log(
      `warm-up pass through the mount before round 1 (${WARMUP_SECONDS} s each, not counted): ${warmup
        .map((w) => `${w.workload} ${Math.round(w.mount)}`)
        .join('; ')}`,
    );
  }
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(
    'bench/results/mount.json',
    `${JSON.stringify({ table, metadata: metaRows, load, seconds: SECONDS, rounds: ROUNDS, warmup }, null, 2)}\n`,
  );
  const bars = [...table, ...metaRows].flatMap((r) => [
    { label: `${r.workload} (mount)`, ratio: r.mountRatio, floor: r.floor },
    ...('bindfsRatio' in r && r.bindfs
      ? [{ label: `${r.workload} (bindfs)`, ratio: r.bindfsRatio as number }]
      : []),
  ]);
  writeFileSync(
    'bench/results/mount.png',
    barChartPng('threefs mount vs raw disk (ratio, dashed tick = floor)', bars),
  );
  console.log('wrote bench/results/mount.json and bench/results/mount.png');
  return { table, metadata: metaRows, load };
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
