#!/usr/bin/env node
// Reads a file of a threefs mount at random 4 KiB-aligned offsets in batches through the
// zero-copy ring API, and prints the rate. Run after `npm run build`:
//   node examples/usrbio-reader.mjs /mnt/3fs/some-file [blockBytes=65536] [batch=32] [batches=100]
import { open } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import path from 'node:path';
import { Usrbio } from '../dist/daemons/client/usrbio.js';

const [file, blockArg = '65536', batchArg = '32', batchesArg = '100'] = process.argv.slice(2);
if (!file) {
  console.error('usage: usrbio-reader.mjs <file on a threefs mount> [block] [batch] [batches]');
  process.exit(2);
}
const block = Number(blockArg);
const batch = Number(batchArg);
const batches = Number(batchesArg);
const fh = await open(file, 'r');
const { size } = await fh.stat();
if (size < block) throw new Error(`${file} is smaller than one block`);
// The daemon is found from the mount's device number; any directory of the mount works.
const ring = await Usrbio.open(path.dirname(file), { bytes: block * batch, entries: batch });
const registered = await ring.registerFile(fh.fd);
const buffers = Array.from({ length: batch }, () => ring.buffer(block));
const started = performance.now();
let bytes = 0;
for (let b = 0; b < batches; b++) {
  buffers.forEach((buffer, i) => {
    const offset = Math.floor((Math.random() * (size - block)) / 4096) * 4096;
    ring.prepare({ op: 'read', file: registered, offset, buffer, userData: i });
  });
  ring.submit();
  for (const done of await ring.wait(batch, 30_000)) {
    if (done.result < 0) throw new Error(`read ${done.userData} failed: ${done.error}`);
    bytes += done.result;
  }
}
const seconds = (performance.now() - started) / 1000;
console.log(
  `${batches} batches of ${batch} × ${block} B: ${(bytes / 2 ** 20 / seconds).toFixed(1)} MiB/s, ` +
    `${Math.round((batches * batch) / seconds)} reads/s`,
);
ring.close();
await fh.close();
