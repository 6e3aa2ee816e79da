// RPC benchmark: (a) 1 MiB payload echo throughput on one connection, (b) small-call round trips
// per second on one connection with 64 calls in flight, each beside the loopback TCP limit that
// iperf3 measures in the same run. The server runs in a forked child process.
// Run: `npm run bench -- rpc` or `node dist/bench/rpc.js`. Writes bench/results/rpc.json.
import { fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../daemons/common/log.js';
import { packageRoot } from '../daemons/common/native.js';
import { CoreService, RpcClient } from '../daemons/common/rpc/index.js';
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

interface ChildAddresses {
  tcp: string;
  unix: string;
  rawPort: number;
}

/** 1 MiB writes echoed by a bare Node socket, 4 MiB in flight: Node's own ceiling for (a). */
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
    {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
  const addresses = await new Promise<ChildAddresses>((resolve, reject) => {
    child.once('message', (message) => resolve(message as ChildAddresses));
    child.once('exit', (code) => reject(new Error(`benchmark server exited with ${code}`)));
  });
  return { ...addresses, stop: () => child.disconnect() };
}

function client(address: string): RpcClient {
  return new RpcClient({
    address,
    clusterId: 'bench',
    maxInFlight: 128,
    log: createLogger({ role: 'bench-client', level: 'warn' }),
  });
}

async function echoThroughput(address: string, depth: number): Promise<number> {
  const rpc = client(address);
  const payload = Buffer.alloc(MiB, 0x5a);
  const echo = () => rpc.call(CoreService.methods.echo, {}, { payload });
  await drive(depth, 0.5, echo); // warm up: connect, JIT
  const result = await drive(depth, SECONDS, echo);
  await rpc.close();
  return (result.calls * MiB) / result.seconds;
}

async function smallCalls(address: string, depth: number): Promise<number> {
  const rpc = client(address);
  const echo = () => rpc.call(CoreService.methods.echo, { message: 'ping' });
  await drive(depth, 0.5, echo);
  const result = await drive(depth, SECONDS, echo);
  await rpc.close();
  return result.calls / result.seconds;
}

const fmt = (value: number, digits = 0) =>
  value.toLocaleString('en-US', { maximumFractionDigits: digits });

export async function run(): Promise<void> {
  console.log(`measuring loopback TCP with iperf3 (${SECONDS} s)...`);
  const iperf = await iperf3LoopbackBytesPerSecond(SECONDS);
  const server = await startServerChild();
  try {
    console.log('measuring RPC...');
    const rawEcho = await rawNodeEcho(server.rawPort);
    const echoTcp = await echoThroughput(server.tcp, 4);
    const echoUnix = await echoThroughput(server.unix, 4);
    const smallTcp = await smallCalls(server.tcp, 64);
    const smallUnix = await smallCalls(server.unix, 64);
    const ratio = (value: number) =>
      iperf === undefined ? 'n/a' : `${fmt((value / iperf) * 100, 1)}%`;
    const rows: [string, string, string, string][] = [
      [
        'iperf3 loopback TCP, 1 stream',
        iperf === undefined ? 'n/a' : `${fmt(iperf / MiB)} MiB/s`,
        '100%',
        '',
      ],
      [
        '(a) 1 MiB echo, TCP, 1 conn, 4 in flight',
        `${fmt(echoTcp / MiB)} MiB/s`,
        ratio(echoTcp),
        `bar ${THROUGHPUT_BAR * 100}% of iperf3`,
      ],
      [
        '    bare Node socket echo, same sizes',
        `${fmt(rawEcho / MiB)} MiB/s`,
        ratio(rawEcho),
        'ceiling on Node streams',
      ],
      ['(a) 1 MiB echo, unix socket', `${fmt(echoUnix / MiB)} MiB/s`, ratio(echoUnix), ''],
      [
        '(b) small echo, TCP, 1 conn, 64 in flight',
        `${fmt(smallTcp)} calls/s`,
        `${fmt((smallTcp / SMALL_CALL_BAR) * 100)}% of bar`,
        `bar ${fmt(SMALL_CALL_BAR)} calls/s`,
      ],
      [
        '(b) small echo, unix socket',
        `${fmt(smallUnix)} calls/s`,
        `${fmt((smallUnix / SMALL_CALL_BAR) * 100)}% of bar`,
        '',
      ],
    ];
    console.log('MiB/s counts payload bytes one way; each echo also carries them back.');
    for (const row of rows)
      console.log(`${row[0].padEnd(44)} ${row[1].padStart(16)} ${row[2].padStart(12)}  ${row[3]}`);
    const results = {
      when: new Date().toISOString(),
      seconds: SECONDS,
      iperf3BytesPerSecond: iperf ?? null,
      bareNodeEchoBytesPerSecond: rawEcho,
      echo1MiB: {
        tcpBytesPerSecond: echoTcp,
        unixBytesPerSecond: echoUnix,
        ratioToIperf3: iperf ? echoTcp / iperf : null,
        bar: THROUGHPUT_BAR,
      },
      smallCalls: {
        tcpPerSecond: smallTcp,
        unixPerSecond: smallUnix,
        inFlight: 64,
        bar: SMALL_CALL_BAR,
      },
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
