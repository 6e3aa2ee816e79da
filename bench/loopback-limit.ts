// The machine's own loopback TCP limit, measured with iperf3 bound to 127.0.0.1, so RPC figures can
// be printed as ratios of what this machine can do right now.
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Loopback TCP throughput in bytes/s over one stream, or undefined (with a message) without iperf3. */
export async function iperf3LoopbackBytesPerSecond(seconds: number): Promise<number | undefined> {
  if (spawnSync('iperf3', ['--version']).error !== undefined) {
    console.log(
      'iperf3 is not installed (apt-get install iperf3): no loopback limit to compare with',
    );
    return undefined;
  }
  const port = await freePort();
  const server = spawn(
    'iperf3',
    ['-s', '-B', '127.0.0.1', '-p', String(port), '-1', '--forceflush'],
    { stdio: 'pipe' },
  );
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('iperf3 server did not start in 5 s')), 5000);
      server.stdout.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('listening')) {
          clearTimeout(timer);
          resolve();
        }
      });
      server.once('exit', (code) => reject(new Error(`iperf3 server exited with ${code}`)));
    });
    const client = spawnSync(
      'iperf3',
      ['-c', '127.0.0.1', '-p', String(port), '-t', String(seconds), '-J'],
      {
        encoding: 'utf8',
        timeout: (seconds + 15) * 1000,
      },
    );
    if (client.status !== 0)
      throw new Error(`iperf3 client failed: ${client.stderr || client.stdout}`);
    const report = JSON.parse(client.stdout) as {
      end: { sum_received: { bits_per_second: number } };
    };
    return report.end.sum_received.bits_per_second / 8;
  } finally {
    server.kill();
  }
}
