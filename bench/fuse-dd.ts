// A quick FUSE throughput check (the full fio benchmark comes later): sequential 1 MiB dd write
// (with fsync) and read of BENCH_FUSE_MIB (256) MiB through a real mount (mgmtd, one storage
// process with four one-replica chains, one meta process, the FUSE daemon), beside the same dd on
// the local disk the storage targets live on and iperf3 over loopback, measured in the same run.
// Reads after reopen go to the daemon (no keep_cache), not the page cache.
// `node dist/bench/fuse-dd.js`; prints MB/s and ratios, writes bench/results/fuse-dd.json.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { FuseTestCluster } from '../test/fuse/fuse-cluster.js';
import { FileApi } from '../daemons/client/file-api.js';
import { quietLog, testDir } from '../test/helpers/cluster.js';
import { iperf3LoopbackBytesPerSecond } from './loopback-limit.js';

const MIB = Number(process.env.BENCH_FUSE_MIB ?? 256);

/** Runs dd; returns MB/s (10^6 bytes per second) from wall time. */
function dd(args: string[]): number {
  const started = performance.now();
  const out = spawnSync('dd', [...args, 'status=none'], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`dd ${args.join(' ')} failed: ${out.stderr}`);
  return (MIB * 1024 * 1024) / 1e6 / ((performance.now() - started) / 1000);
}

function pair(file: string, directRead: boolean) {
  const write = dd(['if=/dev/zero', `of=${file}`, 'bs=1M', `count=${MIB}`, 'conv=fsync']);
  const read = dd([`if=${file}`, 'of=/dev/null', 'bs=1M', ...(directRead ? ['iflag=direct'] : [])]);
  return { write, read };
}

/** The same sequential 1 MiB pattern through the file API in this process (no kernel, no FUSE). */
async function throughFileApi(cluster: FuseTestCluster): Promise<{ write: number; read: number }> {
  const meta = cluster.meta.client();
  await meta.startSession();
  const api = new FileApi({ meta, storage: cluster.meta.base.client, log: quietLog });
  const root = { uid: 0, gid: 0 };
  const block = Buffer.alloc(1024 * 1024);
  const mbps = (ms: number) => (MIB * 1024 * 1024) / 1e6 / (ms / 1000);
  let started = performance.now();
  const f = await api.create('/api-dd', 0o644, { write: true }, root);
  for (let i = 0; i < MIB; i++) await f.write(block, i * block.length);
  await f.fsync();
  await f.close();
  const write = mbps(performance.now() - started);
  started = performance.now();
  const r = await api.open('/api-dd', { read: true }, root);
  for (let i = 0; i < MIB; i++) await r.read(block, i * block.length);
  await r.close();
  const read = mbps(performance.now() - started);
  await api.close();
  return { write, read };
}

export async function run(): Promise<unknown> {
  const local = testDir('bench-fuse-local');
  const disk = pair(path.join(local, 'dd'), true);
  rmSync(local, { recursive: true, force: true });
  const loopback = await iperf3LoopbackBytesPerSecond(3);

  const cluster = new FuseTestCluster('bench-fuse', undefined, 'bench');
  let fuse;
  let api;
  try {
    await cluster.start();
    fuse = pair(cluster.path('dd'), false);
    api = await throughFileApi(cluster);
  } finally {
    await cluster.stop();
  }
  const loopMBps = loopback === undefined ? undefined : loopback / 1e6;
  const round = (n: number | undefined) => (n === undefined ? undefined : Math.round(n));
  const ratio = (a: number, b: number | undefined) =>
    b === undefined ? 'n/a' : (a / b).toFixed(2);
  console.log(`sequential 1 MiB, ${MIB} MiB, one storage replica on the local disk`);
  console.log(
    `  local disk dd: write+fsync ${round(disk.write)} MB/s, read (O_DIRECT) ${round(disk.read)} MB/s`,
  );
  console.log(`  loopback iperf3: ${round(loopMBps) ?? 'n/a'} MB/s`);
  console.log(
    `  file API in-process (the client library alone): write+fsync ${round(api.write)} MB/s, read ${round(api.read)} MB/s`,
  );
  console.log(
    `  FUSE / file API: write ${ratio(fuse.write, api.write)}, read ${ratio(fuse.read, api.read)}`,
  );
  console.log(
    `  FUSE mount:    write+fsync ${round(fuse.write)} MB/s (${ratio(fuse.write, disk.write)} of disk, ${ratio(fuse.write, loopMBps)} of loopback), ` +
      `read ${round(fuse.read)} MB/s (${ratio(fuse.read, disk.read)} of disk, ${ratio(fuse.read, loopMBps)} of loopback)`,
  );
  const result = { mib: MIB, disk, loopbackMBps: loopMBps, api, fuse };
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/fuse-dd.json', `${JSON.stringify(result, null, 2)}\n`);
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
