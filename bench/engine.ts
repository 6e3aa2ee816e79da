// Benchmark of the per-disk chunk engine beside fio on the same directory in the same run: 1 MiB
// chunk writes and reads (qd16) and 4 KiB random reads and overwrites (qd32), printed as MiB/s or
// IOPS with the ratio to fio's direct I/O. Engine writes are durable (data fdatasync, shared by
// concurrent writes, then an LMDB commit) while fio's plain direct writes are not, so fio is also
// run with an fdatasync after every write. Run: `node dist/bench/engine.js` (ENGINE_BENCH_SECONDS, ENGINE_BENCH_DIR to
// override); results go to bench/results/engine.json.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import { packageRoot } from '../daemons/common/native.js';
import { openChunkEngine, type ChunkEngine } from '../daemons/storage/engine/index.js';
import { fio as runFio } from './fio.js';

const SECONDS = Number(process.env.ENGINE_BENCH_SECONDS ?? 3);
const MiB = 2 ** 20;
const CHAIN = 1;
/** 1 MiB chunks in the data set: reads pick among them; writes beyond it overwrite (COW). */
const CHUNKS = 320;
const MAX_OPS = 1_000_000;

interface Measure {
  /** CPU seconds this process used per second of the case (2.0 = both cores busy). */
  cpuPerSec?: number;
  ops: number;
  seconds: number;
  mibPerSec: number;
  iops: number;
}

export interface EngineBenchCase {
  name: string;
  engine: Measure;
  fio: Measure | null;
  fioCommand: string;
  /** engine ÷ fio, in the unit that matters for the case (MiB/s or IOPS). */
  ratio: number | null;
}

export interface EngineBenchResults {
  bench: 'engine';
  directory: string;
  ioBackend: string;
  directIo: boolean;
  loadAverageBefore: number[];
  loadAverageAfter: number[];
  cpus: number;
  cases: EngineBenchCase[];
  extra: Record<string, unknown>;
}

const progress = (what: string) => console.error(`engine bench: ${what}`);
const round = (v: number) => Math.round(v * 100) / 100;

function chunkId(index: number): Buffer {
  const id = Buffer.alloc(16);
  id.writeBigUInt64BE(1n, 2);
  id.writeUInt32BE(index, 12);
  return id;
}

/** `concurrency` loops of `op` for SECONDS (and at most MAX_OPS in all). */
async function timed(
  concurrency: number,
  bytesPerOp: number,
  op: (n: number, worker: number, k: number) => Promise<void>,
): Promise<Measure> {
  let next = 0;
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  const end = start + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      // k counts this worker's own ops, so a worker can own chunks (one chunk's updates are
      // serialized by design; two writers on one chunk would race on its version).
      for (let k = 0; performance.now() < end && next < MAX_OPS; k++) await op(next++, worker, k);
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  return {
    cpuPerSec: round((cpu.user + cpu.system) / 1e6 / seconds),
    ops: next,
    seconds: round(seconds),
    mibPerSec: round((next * bytesPerOp) / MiB / seconds),
    iops: Math.round(next / seconds),
  };
}

function fio(dir: string, args: string[]): { measure: Measure | null; command: string } {
  const result = runFio(dir, args, SECONDS);
  if (result.error !== undefined) progress(`fio failed or missing (${result.error})`);
  return { measure: result.measure, command: result.command };
}

/**
 * 1 MiB writes of whole chunks. `steps` 1 applies and commits in one durable step, as the last
 * replica of a chain does (every write of a chain of one); 2 applies a pending version, then
 * commits it, as the head and middle replicas of longer chains do.
 */
async function writeChunks(
  engine: ChunkEngine,
  concurrency: number,
  steps: 1 | 2,
): Promise<Measure> {
  const data = Buffer.alloc(MiB, 0x5a);
  return timed(concurrency, MiB, async (n) => {
    const id = chunkId(n % CHUNKS);
    const updateVer = (engine.meta(CHAIN, id)?.commitVer ?? 0) + 1;
    await engine.update({
      chainId: CHAIN,
      chunkId: id,
      updateVer,
      chainVer: 1,
      kind: 'write',
      offset: 0,
      data,
      chunkSize: MiB,
      commitChainVer: steps === 1 ? 1 : undefined,
    });
    if (steps === 2) await engine.commit(CHAIN, id, updateVer, 1);
  });
}

async function readRandom(
  engine: ChunkEngine,
  concurrency: number,
  length: number,
  chunks: number,
): Promise<Measure> {
  let seed = 12345;
  const rand = (max: number) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % max;
  };
  return timed(concurrency, length, async () => {
    const offset = length === MiB ? 0 : rand(MiB / length) * length;
    const [result] = await engine.read([
      { chainId: CHAIN, chunkId: chunkId(rand(chunks)), offset, length },
    ]);
    if (!result || result instanceof Error || result.data.length !== length) {
      throw result instanceof Error ? result : new Error('short read');
    }
  });
}

async function overwriteSmall(
  engine: ChunkEngine,
  concurrency: number,
  chunks: number,
): Promise<Measure> {
  const data = Buffer.alloc(4096, 0x33);
  const perWorker = Math.max(1, Math.floor(chunks / concurrency));
  return timed(concurrency, 4096, async (n, worker, k) => {
    const id = chunkId(worker * perWorker + (k % perWorker));
    const updateVer = engine.meta(CHAIN, id)!.commitVer + 1;
    await engine.update({
      chainId: CHAIN,
      chunkId: id,
      updateVer,
      chainVer: 1,
      kind: 'write',
      offset: (n % 256) * 4096,
      data,
      chunkSize: MiB,
    });
    await engine.commit(CHAIN, id, updateVer, 1);
  });
}

async function appendSmall(engine: ChunkEngine, concurrency: number): Promise<Measure> {
  const data = Buffer.alloc(4096, 0x44);
  return timed(concurrency, 4096, async (_n, worker, k) => {
    // Each worker appends to its own chunk, 256 appends fill it, then it moves to a fresh one.
    const id = chunkId(100_000 + worker * 10_000 + Math.floor(k / 256));
    const updateVer = (engine.meta(CHAIN, id)?.commitVer ?? 0) + 1;
    await engine.update({
      chainId: CHAIN,
      chunkId: id,
      updateVer,
      chainVer: 1,
      kind: 'write',
      offset: (k % 256) * 4096,
      data,
      chunkSize: MiB,
    });
    await engine.commit(CHAIN, id, updateVer, 1);
  });
}

export async function run(): Promise<EngineBenchResults> {
  const root = process.env.ENGINE_BENCH_DIR ?? path.dirname(packageRoot);
  mkdirSync(root, { recursive: true });
  const dir = mkdtempSync(path.join(root, '.engine-bench-'));
  const loadAverageBefore = loadavg().map(round);
  const cases: EngineBenchCase[] = [];
  const extra: Record<string, unknown> = {};
  let engine: ChunkEngine | undefined;
  try {
    const fioDir = path.join(dir, 'fio');
    mkdirSync(fioDir);
    engine = await openChunkEngine(
      {
        path: path.join(dir, 'engine'),
        filesPerClass: 16,
        zeroNewExtents: process.env.ENGINE_BENCH_ZERO === '1',
      },
      pino({ level: 'warn' }),
    );
    const open = engine;
    // fio runs right before and right after its engine counterpart and the two are averaged, so
    // both sides see about the same machine load (it changes by the second here).
    const bracket = async (args: string[], what: string, body: () => Promise<Measure>) => {
      progress(`fio ${args.join(' ')}`);
      const before = fio(fioDir, args);
      progress(`engine ${what}`);
      const measured = await body();
      const after = fio(fioDir, args);
      const mean = (a: number, b: number) => round((a + b) / 2);
      const fioMean =
        before.measure && after.measure
          ? {
              ops: before.measure.ops + after.measure.ops,
              seconds: before.measure.seconds + after.measure.seconds,
              mibPerSec: mean(before.measure.mibPerSec, after.measure.mibPerSec),
              iops: Math.round(mean(before.measure.iops, after.measure.iops)),
            }
          : (before.measure ?? after.measure);
      return { engine: measured, fio: fioMean, command: before.command };
    };
    const commitsBefore = engine.metadataCommits();
    const syncsBefore = engine.dataSyncs();
    const write = await bracket(
      ['--rw=write', '--bs=1M', '--iodepth=16'],
      '1 MiB writes, qd16, apply+commit in one step',
      () => writeChunks(open, 16, 1),
    );
    const w = write.engine;
    extra.updatesPerLmdbCommit = round(
      w.ops / Math.max(1, engine.metadataCommits() - commitsBefore),
    );
    const syncs = engine.dataSyncs();
    extra.writesPerDataSyncRound = round(
      (syncs.requests - syncsBefore.requests) / Math.max(1, syncs.rounds - syncsBefore.rounds),
    );
    progress('engine 1 MiB writes, qd16, apply then commit');
    const w2 = await writeChunks(open, 16, 2);
    const fioWriteSync = fio(fioDir, ['--rw=write', '--bs=1M', '--iodepth=16', '--fdatasync=1']);
    const chunks = Math.min(CHUNKS, w.ops);
    const read = await bracket(['--rw=read', '--bs=1M', '--iodepth=16'], '1 MiB reads, qd16', () =>
      readRandom(open, 16, MiB, chunks),
    );
    const r = read.engine;
    const fioRandRead1M = fio(fioDir, ['--rw=randread', '--bs=1M', '--iodepth=16']);
    const rand = await bracket(
      ['--rw=randread', '--bs=4k', '--iodepth=32'],
      '4 KiB random reads, qd32',
      () => readRandom(open, 32, 4096, chunks),
    );
    const r4 = rand.engine;
    const fioRandWrite = fio(fioDir, [
      '--rw=randwrite',
      '--bs=4k',
      '--iodepth=32',
      '--fdatasync=1',
    ]);
    progress('engine 4 KiB overwrites (copy-on-write), qd32');
    const o4 = await overwriteSmall(engine, 32, chunks);
    progress('engine 4 KiB appends (in place), qd32');
    const a4 = await appendSmall(engine, 32);
    rmSync(fioDir, { recursive: true, force: true });
    const fioWrite = { measure: write.fio, command: write.command };
    const fioRead = { measure: read.fio, command: read.command };
    const fioRand = { measure: rand.fio, command: rand.command };
    const ratio = (e: number, f: number | undefined) => (f ? round(e / f) : null);
    cases.push(
      {
        name: '1 MiB chunk write (durable) vs fio seq write direct',
        engine: w,
        fio: fioWrite.measure,
        fioCommand: fioWrite.command,
        ratio: ratio(w.mibPerSec, fioWrite.measure?.mibPerSec),
      },
      {
        name: '1 MiB chunk write (durable) vs fio seq write direct + fdatasync',
        engine: w,
        fio: fioWriteSync.measure,
        fioCommand: fioWriteSync.command,
        ratio: ratio(w.mibPerSec, fioWriteSync.measure?.mibPerSec),
      },
      {
        name: '1 MiB chunk write, apply then commit (durable) vs fio seq write direct',
        engine: w2,
        fio: fioWrite.measure,
        fioCommand: fioWrite.command,
        ratio: ratio(w2.mibPerSec, fioWrite.measure?.mibPerSec),
      },
      {
        name: '1 MiB chunk read vs fio seq read direct',
        engine: r,
        fio: fioRead.measure,
        fioCommand: fioRead.command,
        ratio: ratio(r.mibPerSec, fioRead.measure?.mibPerSec),
      },
      {
        name: '1 MiB chunk read vs fio random read direct',
        engine: r,
        fio: fioRandRead1M.measure,
        fioCommand: fioRandRead1M.command,
        ratio: ratio(r.mibPerSec, fioRandRead1M.measure?.mibPerSec),
      },
      {
        name: '4 KiB random read (IOPS) vs fio randread',
        engine: r4,
        fio: fioRand.measure,
        fioCommand: fioRand.command,
        ratio: ratio(r4.iops, fioRand.measure?.iops),
      },
      {
        name: '4 KiB overwrite in 1 MiB chunks, COW (IOPS) vs fio randwrite + fdatasync',
        engine: o4,
        fio: fioRandWrite.measure,
        fioCommand: fioRandWrite.command,
        ratio: ratio(o4.iops, fioRandWrite.measure?.iops),
      },
      {
        name: '4 KiB append, in place (IOPS) vs fio randwrite + fdatasync',
        engine: a4,
        fio: fioRandWrite.measure,
        fioCommand: fioRandWrite.command,
        ratio: ratio(a4.iops, fioRandWrite.measure?.iops),
      },
    );
    const status = engine.status();
    const results: EngineBenchResults = {
      bench: 'engine',
      directory: dir,
      ioBackend: status.ioBackend,
      directIo: status.directIo,
      loadAverageBefore,
      loadAverageAfter: loadavg().map(round),
      cpus: (await import('node:os')).cpus().length,
      cases,
      extra,
    };
    console.log(`engine bench (${status.ioBackend}, O_DIRECT ${status.directIo}) on ${dir}`);
    console.log(
      `load average before ${loadAverageBefore.join(' ')}, after ${results.loadAverageAfter.join(' ')} (${results.cpus} CPUs, shared)`,
    );
    for (const c of cases) {
      const unit = c.name.includes('IOPS') ? 'IOPS' : 'MiB/s';
      const value = (m: Measure | null) => (m ? (unit === 'IOPS' ? m.iops : m.mibPerSec) : 'n/a');
      console.log(
        `${c.name.padEnd(78)} cpu ${String(c.engine.cpuPerSec).padStart(4)} engine ${String(value(c.engine)).padStart(9)}  fio ${String(value(c.fio)).padStart(9)} ${unit}  ratio ${c.ratio ?? 'n/a'}`,
      );
    }
    console.log(
      `1 MiB writes per LMDB commit ${String(extra.updatesPerLmdbCommit)}, per data sync round ${String(extra.writesPerDataSyncRound)} (group commit)`,
    );
    const resultsDir = path.join(packageRoot, 'bench', 'results');
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(path.join(resultsDir, 'engine.json'), `${JSON.stringify(results, null, 2)}\n`);
    return results;
  } finally {
    await engine?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  await run();
}
