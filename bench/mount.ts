// Issue 6's benchmark: fio through the FUSE mount of a cluster with chains of three, beside fio on
// the raw disk directory that holds the targets and fio through a FUSE passthrough (bindfs) of
// that directory, all in the same run, as ratios to the raw disk; plus a metadata workload (one
// process creating and stating files) through the mount and on the local disk. Prints a table and
// writes bench/results/mount.json and bench/results/mount.png.
import { spawnSync } from 'node:child_process';
import { mkdirSync, promises as fs, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { FuseTestCluster } from '../test/fuse/fuse-cluster.js';
import { barChartPng } from './chart.js';
import { fio, type FioMeasure, RAMP_SECONDS } from './fio.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const META_FILES = Number(process.env.BENCH_META_FILES ?? 20_000);

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
    raw?: FioMeasure | null;
    bindfs?: FioMeasure | null;
    mount?: FioMeasure | null;
    metric: string;
    floor?: number;
  }> = [];
  const raw = path.join(cluster.meta.base.dir, 'raw');
  const bindMount = path.join(cluster.meta.base.dir, 'bindfs');
  mkdirSync(raw, { recursive: true });
  mkdirSync(bindMount, { recursive: true });
  const bindfs = spawnSync('bindfs', [raw, bindMount], { encoding: 'utf8' });
  const mountDir = cluster.path('fio');
  await fs.mkdir(mountDir, { recursive: true });
  let meta:
    | { mount: Awaited<ReturnType<typeof metadata>>; local: Awaited<ReturnType<typeof metadata>> }
    | undefined;
  try {
    for (const w of workloads) {
      process.stderr.write(`fio ${w.name}: raw, bindfs, mount...\n`);
      rows.push({
        workload: w.name,
        metric: w.metric,
        floor: w.floor,
        raw: fio(raw, w.args, SECONDS).measure,
        bindfs: bindfs.status === 0 ? fio(bindMount, w.args, SECONDS).measure : null,
        mount: fio(mountDir, w.args, SECONDS).measure,
      });
    }
    process.stderr.write(`metadata: ${META_FILES} files, local disk then mount...\n`);
    meta = {
      local: await metadata(path.join(raw, 'meta'), META_FILES),
      mount: await metadata(cluster.path('meta'), META_FILES),
    };
  } finally {
    spawnSync('fusermount3', ['-u', bindMount]);
    await cluster.stop();
  }

  const value = (m: FioMeasure | null | undefined, metric: string) =>
    m ? (metric === 'iops' ? m.iops : m.mibPerSec) : 0;
  const ratio = (a: number, b: number) => (b > 0 ? Math.round((a / b) * 1000) / 1000 : 0);
  const table = rows.map((r) => {
    const rawValue = value(r.raw, r.metric);
    return {
      workload: r.workload,
      unit: r.metric === 'iops' ? 'IOPS' : 'MiB/s',
      raw: rawValue,
      bindfs: value(r.bindfs, r.metric),
      mount: value(r.mount, r.metric),
      bindfsRatio: ratio(value(r.bindfs, r.metric), rawValue),
      mountRatio: ratio(value(r.mount, r.metric), rawValue),
      floor: r.floor,
    };
  });
  const metaRows = meta
    ? [
        {
          workload: `creates, 1 process, ${META_FILES} files`,
          unit: 'ops/s',
          raw: meta.local.createsPerSec,
          mount: meta.mount.createsPerSec,
          mountRatio: ratio(meta.mount.createsPerSec, meta.local.createsPerSec),
          floor: 0.15,
        },
        {
          workload: `stats, 1 process, ${META_FILES} files`,
          unit: 'ops/s',
          raw: meta.local.statsPerSec,
          mount: meta.mount.statsPerSec,
          mountRatio: ratio(meta.mount.statsPerSec, meta.local.statsPerSec),
          floor: 0.05,
        },
      ]
    : [];
  const load = loadavg().map((l) => Math.round(l * 100) / 100);
  console.log(
    'workload'.padEnd(40),
    'unit'.padEnd(6),
    'raw'.padStart(9),
    'bindfs'.padStart(9),
    'mount'.padStart(9),
    'bindfs/raw'.padStart(11),
    'mount/raw'.padStart(10),
    'floor'.padStart(6),
  );
  for (const r of [...table, ...metaRows]) {
    const b = 'bindfs' in r ? r.bindfs : undefined;
    const br = 'bindfsRatio' in r ? r.bindfsRatio : undefined;
    console.log(
      r.workload.padEnd(40),
      r.unit.padEnd(6),
      String(r.raw).padStart(9),
      String(b ?? '-').padStart(9),
      String(r.mount).padStart(9),
      String(br ?? '-').padStart(11),
      String(r.mountRatio).padStart(10),
      String(r.floor ?? '-').padStart(6),
    );
  }
  console.log(
    `load average ${load.join(' ')} (2 cores); fio ${SECONDS} s per run after ${RAMP_SECONDS} s not counted, direct=1; chains of 3`,
  );
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(
    'bench/results/mount.json',
    `${JSON.stringify({ table, metadata: metaRows, load, seconds: SECONDS }, null, 2)}\n`,
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
