// USRBIO end to end: a real cluster, the FUSE daemon as its own process with its ring server,
// and this test process as the program (plus a child program that dies mid-batch). Reads and
// writes byte-exact against the same file through the mount, many in flight through a small ring
// (backpressure, nothing lost), bad SQEs and bad registrations answered with errors while the
// daemon keeps serving, and a program killed with I/O in flight.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { open, readFile, stat, writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type UsrbioCompletion, Usrbio } from '../../daemons/client/usrbio.js';
import { UsrbioOp } from '../../daemons/common/usrbio-native.js';
import { metricValue, testDir } from '../helpers/cluster.js';
import { FuseTestCluster } from '../fuse/fuse-cluster.js';
import { RawRing } from './raw-ring.js';
import { mulberry32 } from '../helpers/rng.js';

const MiB = 1024 * 1024;
const { errno } = constants;

describe('usrbio', () => {
  const cluster = new FuseTestCluster('usrbio');
  const socketDir = path.join(testDir('usrbio-sockets'), 'sock');
  let content: Buffer;
  let ring: Usrbio;

  before(async () => {
    mkdirSync(socketDir, { recursive: true });
    await cluster.start({ 'usrbio.dir': socketDir, 'usrbio.maxIoBytes': 8 * MiB });
    content = randomBytes(3 * MiB + 12_345);
    await writeFile(cluster.path('data'), content);
    ring = await Usrbio.open(cluster.mountpoint, { bytes: 32 * MiB, entries: 64, socketDir });
  });
  after(async () => {
    ring?.close();
    await cluster.stop();
  });

  it('reads a batch at random offsets byte-exact, across chunks and past the end', async () => {
    await readRandomBatch(ring, cluster.path('data'), content, {
      seed: 1,
      count: 48,
      maxLength: 700_000,
    });
    // The storage node on this host read straight into the ring: it has the region mapped.
    const status = [...cluster.meta.base.storage.values()][0]!.ready.status;
    const mapped = await metricValue(status, 'threefs_storage_shared_regions');
    assert.ok(mapped >= 1, `regions mapped on storage: ${mapped}`);
  });

  it('writes a batch that the mount then reads back byte-exact', async () => {
    const size = 4 * MiB;
    const mirror = Buffer.alloc(size);
    const fh = await open(cluster.path('written'), 'w+');
    await fh.truncate(size);
    const file = await ring.registerFile(fh.fd, { write: true });
    const pieces = Array.from({ length: 16 }, (_, i) => ({
      offset: i * 256 * 1024 + (i % 3) * 1000,
      data: randomBytes(200_000 + i * 1000),
    }));
    pieces.forEach((p, i) => {
      const buffer = ring.buffer(p.data.length);
      p.data.copy(buffer);
      p.data.copy(mirror, p.offset);
      assert.ok(ring.prepare({ op: 'write', file, offset: p.offset, buffer, userData: i }));
    });
    ring.submit();
    const done = await ring.wait(pieces.length, 20_000);
    for (const c of done) assert.equal(c.result, pieces[c.userData]!.data.length);
    await ring.unregisterFile(file);
    await fh.close();
    assert.ok((await readFile(cluster.path('written'))).equals(mirror));
  });

  it('a ring write past the end shows in stat and reads through the mount at once', async () => {
    const name = cluster.path('grown-by-ring');
    const fh = await open(name, 'w+');
    assert.equal((await stat(name)).size, 0); // the kernel now caches this size
    const file = await ring.registerFile(fh.fd, { write: true });
    const data = randomBytes(100_000);
    const buffer = ring.buffer(data.length);
    data.copy(buffer);
    assert.ok(ring.prepare({ op: 'write', file, offset: MiB, buffer, userData: 7 }));
    ring.submit();
    const [done] = await ring.wait(1, 20_000);
    assert.equal(done!.result, data.length);
    assert.equal((await stat(name)).size, MiB + data.length, 'stat right after the completion');
    await ring.unregisterFile(file);
    await fh.close();
    const back = await readFile(name);
    assert.equal(back.length, MiB + data.length);
    assert.ok(back.subarray(0, MiB).equals(Buffer.alloc(MiB)));
    assert.ok(back.subarray(MiB).equals(data));
  });

  it('keeps many I/Os in flight through a small ring: backpressure, none lost', async () => {
    const fh = await open(cluster.path('data'), 'r');
    const file = await ring.registerFile(fh.fd);
    const total = 1_000;
    const size = 4096;
    const random = mulberry32(2);
    const offsets = Array.from({ length: total }, () =>
      Math.floor(random() * (content.length - size)),
    );
    const seen = new Set<number>();
    let next = 0;
    let refused = 0;
    const started = Date.now();
    while (seen.size < total && Date.now() - started < 60_000) {
      while (next < total) {
        const slot = next % 64;
        const buffer = ring.data.subarray(slot * size, (slot + 1) * size);
        if (!ring.prepare({ op: 'read', file, offset: offsets[next]!, buffer, userData: next })) {
          refused++;
          break;
        }
        next++;
      }
      ring.submit();
      for (const c of await ring.wait(1, 10_000)) {
        assert.equal(c.result, size);
        const slot = c.userData % 64;
        const got = ring.data.subarray(slot * size, (slot + 1) * size);
        const want = content.subarray(offsets[c.userData]!, offsets[c.userData]! + size);
        assert.ok(got.equals(want), `read ${c.userData}`);
        assert.ok(!seen.has(c.userData), `completion ${c.userData} twice`);
        seen.add(c.userData);
      }
    }
    assert.equal(seen.size, total);
    assert.ok(refused > 0, 'the ring never filled: the test did not exercise backpressure');
    assert.equal(ring.space, ring.entries);
    await ring.unregisterFile(file);
    await fh.close();
  });

  it('rings the program only while it waits for completions', async () => {
    const status = cluster.fuse?.ready.status;
    const counts = async () => ({
      posted: await metricValue(status, 'threefs_usrbio_completion_batches_total'),
      rung: await metricValue(status, 'threefs_usrbio_completion_doorbells_total'),
    });
    const fh = await open(cluster.path('data'), 'r');
    const file = await ring.registerFile(fh.fd);
    const readAt = (offset: number, userData: number) =>
      assert.ok(
        ring.prepare({ op: 'read', file, offset, buffer: ring.data.subarray(0, 4096), userData }),
      );
    // Busy elsewhere: completions land in the ring with no doorbell, and a wait() without time
    // to wait (it never arms a wake-up) finds them there.
    const before = await counts();
    for (let i = 0; i < 8; i++) readAt(i * 65_536, i);
    ring.submit();
    const reaped: UsrbioCompletion[] = [];
    for (let polls = 0; reaped.length < 8 && polls < 500; polls++) {
      reaped.push(...(await ring.wait(8 - reaped.length, 0)));
      if (reaped.length < 8) await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(reaped.length, 8);
    const quiet = await counts();
    assert.ok(quiet.posted > before.posted, 'completions were posted');
    assert.equal(quiet.rung, before.rung, 'nobody waited, so nobody was rung');
    // Waiting: the program arms a wake-up and the daemon rings for the completion. Tried a few
    // times: a completion posted before the program armed is reaped without a doorbell.
    let rung = quiet.rung;
    for (let attempt = 0; attempt < 5 && rung === quiet.rung; attempt++) {
      readAt(attempt * 4096, 100 + attempt);
      ring.submit();
      const [done] = await ring.wait(1, 10_000);
      assert.equal(done?.result, 4096);
      rung = (await counts()).rung;
    }
    assert.ok(rung > quiet.rung, 'a waiting program got a doorbell');
    await ring.unregisterFile(file);
    await fh.close();
  });

  it('answers bad SQEs with error completions and keeps serving', async () => {
    const raw = new RawRing(16, 1 * MiB);
    await raw.connect(cluster.mountpoint, socketDir);
    raw.send(
      `${JSON.stringify({ t: 'hello', req: 1, fd: raw.native.fd, entries: 16, dataBytes: MiB })}\n`,
    );
    assert.equal((await raw.reply()).ok, true);
    const fh = await open(cluster.path('data'), 'r');
    raw.send(`${JSON.stringify({ t: 'file', req: 2, fd: fh.fd, write: false })}\n`);
    const reg = await raw.reply();
    assert.equal(reg.ok, true);
    const id = reg.id as number;
    const bad: Array<[string, number[], number]> = [
      ['unknown op', [7, id, 0, 4096, 0], -errno.EINVAL],
      ['zero length', [UsrbioOp.read, id, 0, 0, 0], -errno.EINVAL],
      ['huge length', [UsrbioOp.read, id, 0, 2 ** 40, 0], -errno.EINVAL],
      ['past the region', [UsrbioOp.read, id, 0, 8192, MiB - 4096], -errno.EFAULT],
      ['offset outside the region', [UsrbioOp.read, id, 0, 4096, 2 ** 40], -errno.EFAULT],
      ['unknown file', [UsrbioOp.read, 999, 0, 4096, 0], -errno.EBADF],
      ['write on a read-only file', [UsrbioOp.write, id, 0, 4096, 0], -errno.EBADF],
      ['offset beyond 2^53', [UsrbioOp.read, id, 2 ** 53 - 1, 4096, 0], -errno.EFBIG],
      ['good read', [UsrbioOp.read, id, 5000, 4096, 4096], 4096],
    ];
    bad.forEach(([, [op, file, off, len, buf]], i) =>
      assert.ok(raw.native.prepare(op!, file!, off!, len!, buf!, i)),
    );
    raw.native.submit();
    raw.send('{"t":"sq"}\n');
    const done = new Map(await raw.completions(bad.length));
    bad.forEach(([what, , expected], i) => assert.equal(done.get(i), expected, what));
    assert.ok(raw.native.data.subarray(4096, 8192).equals(content.subarray(5000, 9096)));
    raw.destroy();
    await fh.close();
  });

  it('refuses bad registrations and drops a connection that breaks the protocol', async () => {
    const outside = path.join(testDir('usrbio-outside'), 'f');
    await writeFile(outside, 'x');
    const other = await open(outside, 'r');
    await assert.rejects(ring.registerFile(other.fd), { code: 'EINVAL' });
    await other.close();
    const ro = await open(cluster.path('data'), 'r');
    await assert.rejects(ring.registerFile(ro.fd, { write: true }), { code: 'EBADF' });
    await ro.close();
    await assert.rejects(ring.registerFile(999_999), { code: 'EBADF' });

    const unsealed = new RawRing(16, MiB);
    await unsealed.connect(cluster.mountpoint, socketDir);
    // A region of the wrong shape (and a descriptor that is not a sealed memfd) is refused.
    unsealed.send(
      `${JSON.stringify({ t: 'hello', req: 1, fd: 0, entries: 16, dataBytes: MiB })}\n`,
    );
    assert.equal((await unsealed.reply()).ok, false);
    unsealed.send(
      `${JSON.stringify({ t: 'hello', req: 2, fd: unsealed.native.fd, entries: 16, dataBytes: 2 * MiB })}\n`,
    );
    assert.equal((await unsealed.reply()).ok, false);
    unsealed.send('this is not json\n');
    await assert.rejects(unsealed.reply(5_000), /closed/);

    const long = new RawRing(16, MiB);
    await long.connect(cluster.mountpoint, socketDir);
    long.send('x'.repeat(10_000));
    await assert.rejects(long.reply(5_000), /closed/);
    await readAgain(ring, cluster.path('data'), content);
  });

  it('stays healthy when a program dies with a batch in flight', async () => {
    const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'dying-program.js');
    for (let round = 0; round < 3; round++) {
      const child = spawn(
        process.execPath,
        [script, cluster.mountpoint, socketDir, cluster.path('data')],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      const exited = new Promise((resolve) => child.once('exit', resolve));
      for await (const line of createInterface({ input: child.stdout! }))
        if (line === 'submitted') break;
      child.kill('SIGKILL');
      await exited;
    }
    assert.equal(cluster.fuse?.proc.exitCode, null, 'the FUSE daemon exited');
    await readAgain(ring, cluster.path('data'), content);
    assert.ok((await readFile(cluster.path('data'))).equals(content));
  });
});

// The same reads when storage may not write into the rings: every byte comes back as a reply
// payload and the daemon copies it into the region (the path for storage on other hosts).
describe('usrbio without shared-memory reads', () => {
  const cluster = new FuseTestCluster('usrbio-copied');
  const socketDir = path.join(testDir('usrbio-copied'), 'sock');
  let content: Buffer;
  let ring: Usrbio;

  before(async () => {
    mkdirSync(socketDir, { recursive: true });
    await cluster.start({ 'usrbio.dir': socketDir, sharedMemoryReads: false });
    content = randomBytes(2 * MiB + 777);
    await writeFile(cluster.path('data'), content);
    ring = await Usrbio.open(cluster.mountpoint, { bytes: 8 * MiB, entries: 32, socketDir });
  });
  after(async () => {
    ring?.close();
    await cluster.stop();
  });

  it('reads byte-exact through reply payloads', async () => {
    await readRandomBatch(ring, cluster.path('data'), content, {
      seed: 2,
      count: 24,
      maxLength: 300_000,
    });
  });
});

/**
 * Reads `count` pieces of `file` at random offsets (some past the end) through the ring, all in
 * flight at once, and checks every byte against `content`.
 */
async function readRandomBatch(
  ring: Usrbio,
  file: string,
  content: Buffer,
  { seed, count, maxLength }: { seed: number; count: number; maxLength: number },
): Promise<void> {
  const fh = await open(file, 'r');
  const registered = await ring.registerFile(fh.fd);
  const random = mulberry32(seed);
  const ios = Array.from({ length: count }, (_, i) => {
    const length = 1 + Math.floor(random() * maxLength);
    const offset = Math.floor(random() * (content.length + maxLength / 7));
    return { offset, buffer: ring.data.subarray(i * maxLength, i * maxLength + length) };
  });
  ios.forEach((io, i) =>
    assert.ok(ring.prepare({ op: 'read', file: registered, ...io, userData: i })),
  );
  assert.equal(ring.submit(), ios.length);
  const done = await ring.wait(ios.length, 20_000);
  assert.equal(done.length, ios.length);
  for (const { userData, result, error } of done) {
    const io = ios[userData]!;
    const expected = content.subarray(io.offset, io.offset + io.buffer.length);
    assert.equal(error, undefined);
    assert.equal(result, expected.length, `read ${userData}`);
    assert.ok(io.buffer.subarray(0, result).equals(expected), `bytes of read ${userData}`);
  }
  await ring.unregisterFile(registered);
  await fh.close();
}

/** One more read through the ring, checked: the daemon still serves. */
async function readAgain(ring: Usrbio, file: string, content: Buffer): Promise<void> {
  const fh = await open(file, 'r');
  const registered = await ring.registerFile(fh.fd);
  const buffer = ring.data.subarray(0, 65_536);
  assert.ok(ring.prepare({ op: 'read', file: registered, offset: 1000, buffer, userData: 77 }));
  ring.submit();
  const [done] = (await ring.wait(1, 10_000)) as [UsrbioCompletion?];
  assert.equal(done?.result, 65_536);
  assert.ok(buffer.equals(content.subarray(1000, 1000 + 65_536)));
  await ring.unregisterFile(registered);
  await fh.close();
}
