// Benchmark of the embedded KV engine: transactions/s of a create-like transaction (2 reads,
// 3 writes) and a stat-like one (1 read), with 1 and 16 concurrent transactions in one process and
// with 2 processes on one store, every commit fully durable. Printed beside the disk's own
// fsync rate measured in the same run, so group commit shows as commits/s well above fsyncs/s.
// Also counts LMDB commits (one fdatasync each) and, when strace is installed, the fdatasync
// calls themselves. Run: `node dist/bench/kv.js`; results go to bench/results/kv.json.
import { spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  fdatasyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { hasCode } from '../daemons/common/errors.js';
import { kvConfig } from '../daemons/common/kv/config.js';
import { encodeKey } from '../daemons/common/kv/keys.js';
import { LmdbKvStore } from '../daemons/common/kv/lmdb-store.js';
import { packageRoot } from '../daemons/common/native.js';

type Workload = 'create' | 'stat';

interface WorkerSpec {
  dir: string;
  workload: Workload;
  concurrency: number;
  durationMs: number;
  maxTxns: number;
  /** Separates the key spaces of workers so creates never collide across processes. */
  worker: number;
}

interface WorkerResult {
  txns: number;
  conflicts: number;
  elapsedMs: number;
}

export interface KvBenchCase {
  workload: Workload;
  processes: number;
  concurrencyPerProcess: number;
  txns: number;
  seconds: number;
  txnPerSec: number;
  /** txn/s divided by the disk's fsync/s: above 1 only through group commit (for writes). */
  ratioToDiskFsync: number;
  conflicts: number;
  lmdbCommits: number;
  /** null for read-only workloads, which never commit to LMDB. */
  txnsPerLmdbCommit: number | null;
}

export interface KvBenchResults {
  bench: 'kv';
  engine: 'embedded (LMDB)';
  directory: string;
  disk: { fsyncPerSec: number; method: string };
  cases: KvBenchCase[];
  straceCheck: { txns: number; fdatasyncs: number; txnsPerFdatasync: number } | string;
  note: string;
}

const STAT_INODES = 10_000;
const CASE_MS = Number(process.env.KV_BENCH_CASE_MS ?? 2_000);
const MAX_TXNS_PER_CASE = 200_000;
const INODE_VALUE = Buffer.alloc(128, 0x69); // about a 3FS inode record
const DENTRY_VALUE = Buffer.alloc(48, 0x64);

const inodeKey = (id: number) => encodeKey('INOD', id);

/** One worker: `concurrency` loops of the workload until the time or count bound. */
async function runWorker(spec: WorkerSpec): Promise<WorkerResult> {
  const store = await LmdbKvStore.open(kvConfig({ path: spec.dir, maxRetries: 1_000 }));
  let issued = 0;
  let conflicts = 0;
  const started = performance.now();
  const deadline = started + spec.durationMs;
  const loop = async (lane: number) => {
    // Each lane creates in its own directory, like independent clients: no logical conflicts.
    const parent = 1_000_000 + spec.worker * 1_000 + lane;
    while (issued < spec.maxTxns && performance.now() < deadline) {
      const n = issued++;
      try {
        if (spec.workload === 'create') {
          await store.run(
            async (tx) => {
              const dentry = encodeKey('DENT', parent, `file-${n}`);
              if ((await tx.get(dentry)) !== undefined) throw new Error('file exists');
              await tx.get(inodeKey(parent)); // the parent's inode: is it a directory?
              const id = 10_000_000 + spec.worker * 10_000_000 + n;
              tx.set(dentry, DENTRY_VALUE);
              tx.set(inodeKey(id), INODE_VALUE);
              tx.add(encodeKey('DCNT', parent), 1n); // the parent's entry count
            },
            { maxRetries: 1_000 },
          );
        } else {
          await store.run(async (tx) => tx.get(inodeKey((n * 7_919) % STAT_INODES)));
        }
      } catch (err) {
        if (!hasCode(err, 'TXN_CONFLICT')) throw err;
        conflicts++;
      }
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency }, (_, lane) => loop(lane)));
  const elapsedMs = performance.now() - started;
  await store.close();
  return { txns: issued, conflicts, elapsedMs };
}

const thisFile = fileURLToPath(import.meta.url);

/** Runs workers in child processes that start together on a 'go' line. */
async function runProcesses(specs: WorkerSpec[]): Promise<WorkerResult[]> {
  const children = specs.map((spec) => {
    const child = spawn(process.execPath, [thisFile, '--worker', JSON.stringify(spec)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    // Listen for exit from the start: a worker may finish before we get to wait for it.
    const exited = new Promise((resolve) => child.on('exit', resolve));
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    return { child, exited, lines };
  });
  for (const { lines } of children) {
    const ready = await lines.next();
    if (ready.value !== 'ready')
      throw new Error(`bench worker did not start: ${String(ready.value)}`);
  }
  for (const { child } of children) child.stdin.write('go\n');
  const results: WorkerResult[] = [];
  for (const { lines } of children) {
    const line = await lines.next();
    if (line.done === true) throw new Error('bench worker exited without a result');
    results.push(JSON.parse(String(line.value)) as WorkerResult);
  }
  await Promise.all(children.map(({ exited }) => exited));
  return results;
}

/** The disk's own rate of small durable writes: fio if installed, else a Node write+fdatasync loop. */
function measureDiskFsync(dir: string): { fsyncPerSec: number; method: string } {
  const fio = spawnSync(
    'fio',
    [
      '--name=fsync',
      `--directory=${dir}`,
      '--rw=write',
      '--bs=4k',
      '--size=16m',
      '--fdatasync=1',
      '--time_based',
      '--runtime=3',
      '--ioengine=sync',
      '--output-format=json',
    ],
    { encoding: 'utf8' },
  );
  if (fio.status === 0) {
    const report = JSON.parse(fio.stdout) as { jobs: Array<{ write: { iops: number } }> };
    const iops = report.jobs[0]?.write.iops ?? 0;
    return { fsyncPerSec: Math.round(iops), method: 'fio --rw=write --bs=4k --fdatasync=1, 3 s' };
  }
  const file = path.join(dir, 'fsync-probe');
  const fd = openSync(file, 'w');
  const block = Buffer.alloc(4_096, 1);
  let count = 0;
  const started = performance.now();
  while (performance.now() - started < 3_000 && count < 1_000_000) {
    writeSync(fd, block, 0, block.length, (count % 4_096) * block.length);
    fdatasyncSync(fd);
    count++;
  }
  const seconds = (performance.now() - started) / 1_000;
  closeSync(fd);
  rmSync(file);
  return {
    fsyncPerSec: Math.round(count / seconds),
    method: 'node write+fdatasync loop, 4 KiB, 3 s (fio missing)',
  };
}

/** Runs a short create workload under strace to count fdatasync calls against transactions. */
function straceCheck(dir: string): KvBenchResults['straceCheck'] {
  const which = spawnSync('strace', ['-V'], { encoding: 'utf8' });
  if (which.status !== 0) return 'strace not installed: fdatasync calls not counted';
  const spec: WorkerSpec = {
    dir,
    workload: 'create',
    concurrency: 16,
    durationMs: 1_000,
    maxTxns: 20_000,
    worker: 90,
  };
  const traced = spawnSync(
    'strace',
    [
      '-f',
      '-c',
      '-e',
      'trace=fdatasync,fsync',
      process.execPath,
      thisFile,
      '--worker',
      JSON.stringify(spec),
      '--no-wait',
    ],
    { encoding: 'utf8' },
  );
  const result = JSON.parse(traced.stdout.trim().split('\n').pop() ?? '{}') as WorkerResult;
  let fdatasyncs = 0;
  for (const line of traced.stderr.split('\n')) {
    const match = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(fdatasync|fsync)$/.exec(line);
    if (match) fdatasyncs += Number(match[1]);
  }
  return {
    txns: result.txns,
    fdatasyncs,
    txnsPerFdatasync: round(result.txns / Math.max(1, fdatasyncs)),
  };
}

/** Progress goes to stderr so stdout stays the result table. */
const progress = (what: string) => console.error(`kv bench: ${what}`);

const round = (value: number) => Math.round(value * 100) / 100;

export async function run(): Promise<KvBenchResults> {
  const resultsDir = path.join(packageRoot, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const dir = mkdtempSync(path.join(resultsDir, 'kv-tmp-'));
  try {
    progress('measuring the disk fsync rate');
    const disk = measureDiskFsync(dir);
    const storeDir = path.join(dir, 'store');
    // Inodes for the stat workload.
    const setup = await LmdbKvStore.open(kvConfig({ path: storeDir }));
    for (let first = 0; first < STAT_INODES; first += 1_000) {
      await setup.run(async (tx) => {
        for (let id = first; id < first + 1_000; id++) tx.set(inodeKey(id), INODE_VALUE);
      });
    }
    const cases: KvBenchCase[] = [];
    const shapes: Array<[number, number]> = [
      [1, 1],
      [1, 16],
      [2, 8],
    ];
    let worker = 0;
    for (const workload of ['create', 'stat'] as const) {
      for (const [processes, concurrency] of shapes) {
        const specs = Array.from({ length: processes }, () => ({
          dir: storeDir,
          workload,
          concurrency,
          durationMs: CASE_MS,
          maxTxns: MAX_TXNS_PER_CASE,
          worker: worker++,
        }));
        progress(`${workload}: ${processes} process(es) x ${concurrency} concurrent`);
        const commitsBefore = setup.lastCommitId();
        const results =
          processes === 1 ? [await runWorker(specs[0] as WorkerSpec)] : await runProcesses(specs);
        const lmdbCommits = setup.lastCommitId() - commitsBefore;
        const txns = results.reduce((sum, r) => sum + r.txns, 0);
        const seconds = Math.max(...results.map((r) => r.elapsedMs)) / 1_000;
        const txnPerSec = txns / seconds;
        cases.push({
          workload,
          processes,
          concurrencyPerProcess: concurrency,
          txns,
          seconds: round(seconds),
          txnPerSec: Math.round(txnPerSec),
          ratioToDiskFsync: round(txnPerSec / Math.max(1, disk.fsyncPerSec)),
          conflicts: results.reduce((sum, r) => sum + r.conflicts, 0),
          lmdbCommits,
          txnsPerLmdbCommit: lmdbCommits === 0 ? null : round(txns / lmdbCommits),
        });
      }
    }
    await setup.close();
    const results: KvBenchResults = {
      bench: 'kv',
      engine: 'embedded (LMDB)',
      directory: dir,
      disk,
      cases,
      straceCheck: (progress('counting fdatasync calls under strace'), straceCheck(storeDir)),
      note:
        'Every create commit is acknowledged only after its fdatasync (overlappingSync off, no noSync). ' +
        'Stat transactions are read-only and commit without writing. The machine is shared: figures ' +
        'may read low while others build.',
    };
    writeFileSync(path.join(resultsDir, 'kv.json'), `${JSON.stringify(results, null, 2)}\n`);
    return results;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function print(results: KvBenchResults): void {
  console.log(`disk: ${results.disk.fsyncPerSec} fsync/s (${results.disk.method})`);
  console.log('workload  procs x conc     txn/s   x disk fsync/s   txns/LMDB commit  conflicts');
  for (const c of results.cases) {
    console.log(
      `${c.workload.padEnd(8)}  ${`${c.processes} x ${c.concurrencyPerProcess}`.padEnd(12)}` +
        `${String(c.txnPerSec).padStart(8)}   ${String(c.ratioToDiskFsync).padStart(14)}` +
        `   ${String(c.txnsPerLmdbCommit ?? '-').padStart(16)}  ${String(c.conflicts).padStart(9)}`,
    );
  }
  const check = results.straceCheck;
  console.log(
    typeof check === 'string'
      ? check
      : `strace: ${check.txns} create txns, ${check.fdatasyncs} fdatasync calls (${check.txnsPerFdatasync} txns per fdatasync)`,
  );
}

async function workerMain(spec: WorkerSpec, wait: boolean): Promise<void> {
  if (wait) {
    console.log('ready');
    const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
    await lines.next();
  }
  console.log(JSON.stringify(await runWorker(spec)));
  process.exit(0);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv[2] === '--worker') {
    await workerMain(
      JSON.parse(process.argv[3] ?? '{}') as WorkerSpec,
      process.argv[4] !== '--no-wait',
    );
  } else {
    print(await run());
  }
}
