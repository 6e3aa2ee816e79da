// RPC benchmark, each figure beside the loopback TCP limit iperf3 measures in the same run, for
// both transports (native I/O thread, and Node net.Socket as the baseline):
//   (a) 1 MiB payload echo on one connection, 4 in flight;
//   (b) small-call round trips per second on one connection, 64 in flight;
//   (c) one-way bulk: 1 MiB write (payload in, empty reply) and 1 MiB read (payload out).
// An echo moves each payload byte across loopback twice while iperf3 moves it once, so ratios to
// iperf3 are computed on bytes moved (both directions), printed beside the payload rate one way.
// The server runs in a forked child. Run: `npm run bench -- rpc`. Writes bench/results/rpc.json.
import { fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../daemons/common/log.js';
import { packageRoot } from '../daemons/common/native.js';
import { CoreService, RpcClient } from '../daemons/common/rpc/index.js';
import type { RpcTransportKind } from '../daemons/common/rpc/frame-socket.js';
import { BulkService } from './bulk-service.js';
import { iperf3LoopbackBytesPerSecond } from './loopback-limit.js';

const MiB = 1024 * 1024;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const SMALL_CALL_BAR = 40_000;
const THROUGHPUT_BAR = 0.7;

interface Measurement {
  calls: number;
  seconds: number;
}

/** Keeps `depth` calls in flight for `seconds` (bounded by time and by a call count cap). */
async function drive(
  depth: number,
  seconds: number,
  callOnce: () => Promise<unknown>,
): Promise<Measurement> {
  const maxCalls = 50_000_000;
  const until = performance.now() + seconds * 1000;
  let calls = 0;
  const worker = async () => {
    while (performance.now() < until && calls < maxCalls) {
      await callOnce();
      calls++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: depth }, worker));
  return { calls, seconds: (performance.now() - started) / 1000 };
}

interface ServerAddresses {
  tcp: string;
  unix: string;
}
interface ChildAddresses {
  native: ServerAddresses;
  node: ServerAddresses;
  rawPort: number;
}

/** 1 MiB writes echoed by a bare Node socket, 4 MiB in flight: Node streams' own ceiling for (a). */
async function rawNodeEcho(port: number): Promise<number> {
  const socket = connect({ host: '127.0.0.1', port, noDelay: true });
  await new Promise((resolve) => socket.once('connect', resolve));
  const block = Buffer.alloc(MiB, 0x5a);
  let received = 0;
  let wake: (() => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
    wake?.();
  });
  const started = performance.now();
  const until = started + SECONDS * 1000;
  let sent = 0;
  while (performance.now() < until) {
    while (sent - received >= 4 * MiB) await new Promise<void>((resolve) => (wake = resolve));
    socket.write(block);
    sent += MiB;
  }
  const seconds = (performance.now() - started) / 1000;
  socket.destroy();
  return received / seconds;
}

async function startServerChild(): Promise<ChildAddresses & { stop: () => void }> {
  const child = fork(
    path.join(path.dirname(fileURLToPath(import.meta.url)), 'rpc-server-child.js'),
    [],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  );
  const addresses = await new Promise<ChildAddresses>((resolve, reject) => {
    child.once('message', (message) => resolve(message as ChildAddresses));
    child.once('exit', (code) => reject(new Error(`benchmark server exited with ${code}`)));
  });
  return { ...addresses, stop: () => child.disconnect() };
}

/** Calls per second of `call` on a fresh client, after a short warm-up. */
async function rate(
  address: string,
  transport: RpcTransportKind,
  depth: number,
  call: (rpc: RpcClient) => Promise<unknown>,
): Promise<number> {
  const rpc = new RpcClient({
    address,
    clusterId: 'bench',
    maxInFlight: 128,
    transport,
    log: createLogger({ role: 'bench-client', level: 'warn' }),
  });
  await drive(depth, 0.5, () => call(rpc)); // warm up: connect, JIT
  const result = await drive(depth, SECONDS, () => call(rpc));
  await rpc.close();
  return result.calls / result.seconds;
}

const payload = Buffer.alloc(MiB, 0x5a);
const echoBulk = (rpc: RpcClient) => rpc.call(CoreService.methods.echo, {}, { payload });
const echoSmall = (rpc: RpcClient) => rpc.call(CoreService.methods.echo, { message: 'ping' });
const write = (rpc: RpcClient) => rpc.call(BulkService.methods.write, {}, { payload });
const read = (rpc: RpcClient) => rpc.call(BulkService.methods.read, { bytes: MiB });

const fmt = (value: number, digits = 0) =>
  value.toLocaleString('en-US', { maximumFractionDigits: digits });

interface Row {
  name: string;
  /** Payload bytes per second one way (bulk rows). */
  payload?: number;
  /** Bytes crossing loopback per second, both directions (bulk rows). */
  moved?: number;
  /** Calls per second (small-call rows). */
  calls?: number;
  note: string;
}

async function measureTransport(
  transport: RpcTransportKind,
  addresses: ServerAddresses,
): Promise<Record<string, number>> {
  const echo = (await rate(addresses.tcp, transport, 4, echoBulk)) * MiB;
  const echoUnix = (await rate(addresses.unix, transport, 4, echoBulk)) * MiB;
  const small = await rate(addresses.tcp, transport, 64, echoSmall);
  const smallUnix = await rate(addresses.unix, transport, 64, echoSmall);
  const writeRate = (await rate(addresses.tcp, transport, 4, write)) * MiB;
  const readRate = (await rate(addresses.tcp, transport, 4, read)) * MiB;
  return { echo, echoUnix, small, smallUnix, write: writeRate, read: readRate };
}

function rowsFor(transport: RpcTransportKind, m: Record<string, number>): Row[] {
  const get = (key: string) => m[key] ?? Number.NaN;
  const label = transport === 'native' ? 'native' : 'node  ';
  return [
    {
      name: `${label} (a) 1 MiB echo, TCP, 4 in flight`,
      payload: get('echo'),
      moved: 2 * get('echo'),
      note: `bar ${THROUGHPUT_BAR * 100}% of iperf3`,
    },
    {
      name: `${label} (a) 1 MiB echo, unix socket`,
      payload: get('echoUnix'),
      moved: 2 * get('echoUnix'),
      note: '',
    },
    {
      name: `${label} (b) small echo, TCP, 64 in flight`,
      calls: get('small'),
      note: `bar ${fmt(SMALL_CALL_BAR)} calls/s`,
    },
    { name: `${label} (b) small echo, unix socket`, calls: get('smallUnix'), note: '' },
    {
      name: `${label} (c) 1 MiB write, TCP, 4 in flight`,
      payload: get('write'),
      moved: get('write'),
      note: 'payload in, empty reply',
    },
    {
      name: `${label} (c) 1 MiB read, TCP, 4 in flight`,
      payload: get('read'),
      moved: get('read'),
      note: 'small request, payload out',
    },
  ];
}

export async function run(): Promise<void> {
  console.log(`measuring loopback TCP with iperf3 (${SECONDS} s)...`);
  const iperfBefore = await iperf3LoopbackBytesPerSecond(SECONDS);
  const server = await startServerChild();
  try {
    console.log('measuring RPC...');
    const rawEcho = await rawNodeEcho(server.rawPort);
    const native = await measureTransport('native', server.native);
    const node = await measureTransport('node', server.node);
    console.log(`measuring loopback TCP with iperf3 again (${SECONDS} s)...`);
    const iperfAfter = await iperf3LoopbackBytesPerSecond(SECONDS);
    // On a shared machine one sample can catch a busy moment: the higher one is the limit, which
    // makes every ratio below conservative.
    const iperf =
      iperfBefore === undefined || iperfAfter === undefined
        ? (iperfBefore ?? iperfAfter)
        : Math.max(iperfBefore, iperfAfter);
    const ratio = (moved: number | undefined) =>
      iperf === undefined || moved === undefined ? '' : `${fmt((moved / iperf) * 100, 1)}%`;
    const rows: Row[] = [
      {
        name: 'iperf3 loopback TCP, 1 stream',
        moved: iperf,
        note: `the machine limit: higher of ${fmt((iperfBefore ?? 0) / MiB)} (before) and ${fmt((iperfAfter ?? 0) / MiB)} (after) MiB/s`,
      },
      ...rowsFor('native', native),
      ...rowsFor('node', node),
      {
        name: 'bare Node socket echo, 1 MiB, 4 in flight',
        payload: rawEcho,
        moved: 2 * rawEcho,
        note: 'ceiling on Node streams',
      },
    ];
    console.log(
      'payload = payload MiB/s one way; moved = MiB/s crossing loopback, both directions\n' +
        '(an echo moves each payload byte twice); % of iperf3 is computed on bytes moved.',
    );
    console.log(
      `${'run'.padEnd(46)} ${'payload'.padStart(12)} ${'moved'.padStart(12)} ${'% iperf3'.padStart(9)}  note`,
    );
    for (const row of rows) {
      const payloadText = row.payload === undefined ? '' : `${fmt(row.payload / MiB)} MiB/s`;
      const movedText =
        row.calls !== undefined
          ? `${fmt(row.calls)} calls/s`
          : row.moved === undefined
            ? 'n/a'
            : `${fmt(row.moved / MiB)} MiB/s`;
      const pct =
        row.calls !== undefined
          ? `${fmt((row.calls / SMALL_CALL_BAR) * 100)}% bar`
          : ratio(row.moved);
      console.log(
        `${row.name.padEnd(46)} ${payloadText.padStart(12)} ${movedText.padStart(16)} ${pct.padStart(9)}  ${row.note}`,
      );
    }
    const results = {
      when: new Date().toISOString(),
      seconds: SECONDS,
      iperf3BytesPerSecond: iperf ?? null,
      iperf3Samples: [iperfBefore ?? null, iperfAfter ?? null],
      bareNodeEchoBytesPerSecond: rawEcho,
      note: 'bulk figures are payload bytes/s one way; echo moves twice that across loopback',
      native,
      node,
      nativeEchoMovedRatioToIperf3: iperf ? (2 * (native.echo ?? 0)) / iperf : null,
      bars: { echoMovedRatio: THROUGHPUT_BAR, smallCallsPerSecond: SMALL_CALL_BAR },
    };
    const dir = path.join(packageRoot, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'rpc.json'), JSON.stringify(results, null, 2) + '\n');
    console.log(`wrote ${path.join(dir, 'rpc.json')}`);
  } finally {
    server.stop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await run();
