// A program that dies mid-batch: opens a ring on the mount, registers a file, submits a batch of
// 1 MiB reads, prints "submitted", then waits to be SIGKILLed by the test (or exits itself after
// 30 s, so it can never outlive a broken test run).
// `node dist/test/usrbio/dying-program.js <mountpoint> <socketDir> <file>`
import { open } from 'node:fs/promises';
import { Usrbio } from '../../daemons/client/usrbio.js';

const [mountPoint, socketDir, file] = process.argv.slice(2);
if (!mountPoint || !socketDir || !file) throw new Error('usage: <mountpoint> <socketDir> <file>');
const ring = await Usrbio.open(mountPoint, { bytes: 64 * 1024 * 1024, entries: 64, socketDir });
const fh = await open(file, 'r');
const registered = await ring.registerFile(fh.fd);
for (let i = 0; i < 64; i++) {
  const ok = ring.prepare({
    op: 'read',
    file: registered,
    offset: (i % 4) * 1024 * 1024,
    buffer: ring.data.subarray(i * 1024 * 1024, (i + 1) * 1024 * 1024),
    userData: i,
  });
  if (!ok) throw new Error('ring full below its size');
}
ring.submit();
console.log('submitted');
setTimeout(() => process.exit(3), 30_000);
