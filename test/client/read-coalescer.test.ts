// ReadCoalescer rows: reads of one turn share a call per node, batches split at their bounds,
// each caller gets its own bytes or status, and a failed call fails or retries only its batch;
// and which replica a read joins.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  chooseReplica,
  payloadOutcomes,
  placedOutcomes,
  ReadCoalescer,
  type ReadOutcome,
  retryOnRetryable,
  type WireRead,
  type WireResult,
} from '../../daemons/client/read-coalescer.js';
import { ThreeFsError } from '../../daemons/common/errors.js';

interface Call {
  address: string;
  ios: WireRead[];
}

/** A node that answers every read with `length` bytes of (chainId & 0xff), unless told otherwise. */
function fakeNode(answer?: (io: WireRead) => WireResult) {
  const calls: Call[] = [];
  const send = (address: string, ios: WireRead[]) => {
    calls.push({ address, ios });
    const results = ios.map((io) => answer?.(io) ?? { status: 'ok', length: io.length });
    const payload = Buffer.concat(
      ios.map((io, i) =>
        results[i]!.status === 'ok'
          ? Buffer.alloc(results[i]!.length ?? 0, io.chainId & 0xff)
          : Buffer.alloc(0),
      ),
    );
    return Promise.resolve(payloadOutcomes(ios, results, payload));
  };
  return { calls, send };
}

const io = (chainId: number, length = 4096): WireRead => ({
  chainId,
  chainVersion: 1,
  chunkId: Buffer.alloc(16, chainId),
  offset: 0,
  length,
});

const bytesOf = (outcome: ReadOutcome) => {
  assert.equal(outcome.kind, 'data');
  return outcome.kind === 'data' ? outcome.data : Buffer.alloc(0);
};

describe('read coalescer', () => {
  it('reads queued in one turn go to each node in one call, in order', async () => {
    const node = fakeNode();
    const c = new ReadCoalescer(node.send, { maxIos: 128, maxBytes: 1 << 20 }, retryOnRetryable);
    const outcomes = await Promise.all([
      c.read('a', io(1)),
      c.read('b', io(2)),
      c.read('a', io(3, 100)),
      c.read('a', io(4)),
    ]);
    assert.deepEqual(
      node.calls.map((call) => [call.address, call.ios.map((x) => x.chainId)]),
      [
        ['a', [1, 3, 4]],
        ['b', [2]],
      ],
    );
    assert.deepEqual(
      outcomes.map((o) => [...new Set(bytesOf(o))].concat(bytesOf(o).length)),
      [
        [1, 4096],
        [2, 4096],
        [3, 100],
        [4, 4096],
      ],
    );
    assert.equal(c.queued, 0);
  });

  it('a batch goes out at its read or byte bound without waiting for the turn to end', async () => {
    const node = fakeNode();
    const c = new ReadCoalescer(node.send, { maxIos: 2, maxBytes: 10_000 }, retryOnRetryable);
    const pending = [c.read('a', io(1)), c.read('a', io(2))];
    assert.equal(node.calls.length, 1, 'two reads fill a batch');
    pending.push(c.read('a', io(3, 8000)), c.read('a', io(4, 8000)));
    assert.equal(node.calls.length, 2, 'the fourth read would pass the byte bound');
    await Promise.all(pending);
    assert.deepEqual(
      node.calls.map((call) => call.ios.map((x) => x.chainId)),
      [[1, 2], [3], [4]],
    );
  });

  it('each read gets its own status: missing, retry, or an error of its own', async () => {
    const node = fakeNode((x) =>
      x.chainId === 2
        ? { status: 'NOT_FOUND' }
        : x.chainId === 3
          ? { status: 'NOT_COMMITTED' }
          : x.chainId === 4
            ? { status: 'CHECKSUM_MISMATCH' }
            : x.chainId === 5
              ? { status: 'EINVAL', message: 'bad' }
              : { status: 'ok', length: x.length },
    );
    const c = new ReadCoalescer(node.send, { maxIos: 128, maxBytes: 1 << 20 }, retryOnRetryable);
    const settled = await Promise.allSettled([1, 2, 3, 4, 5].map((n) => c.read('a', io(n))));
    const value = (k: number) => {
      const s = settled[k]!;
      assert.equal(s.status, 'fulfilled', `read ${k}`);
      return s.status === 'fulfilled' ? s.value : undefined;
    };
    assert.equal(bytesOf(value(0)!).length, 4096);
    assert.deepEqual(value(1), { kind: 'missing' });
    assert.deepEqual(value(2), { kind: 'retry' });
    assert.deepEqual(value(3), { kind: 'retry' }, 'a corrupt copy: another replica may be good');
    const failed = settled[4]!;
    assert.equal(failed.status, 'rejected');
    assert.match(String(failed.status === 'rejected' ? failed.reason : ''), /EINVAL bad/);
  });

  it('a retryable call failure retries the batch; any other fails it', async () => {
    const retryable = new ReadCoalescer(
      () => Promise.reject(new ThreeFsError('UNAVAILABLE', 'gone')),
      { maxIos: 128, maxBytes: 1 << 20 },
      retryOnRetryable,
    );
    assert.deepEqual(await retryable.read('a', io(1)), { kind: 'retry' });
    const fatal = new ReadCoalescer(
      () => Promise.reject(new ThreeFsError('PERMISSION_DENIED', 'no')),
      { maxIos: 128, maxBytes: 1 << 20 },
      retryOnRetryable,
    );
    await assert.rejects(fatal.read('a', io(1)), /no/);
  });

  it('a reply that does not match its batch is a protocol error for every read of it', async () => {
    const fewer = new ReadCoalescer(
      (_key, ios: WireRead[]) =>
        Promise.resolve(payloadOutcomes(ios, [{ status: 'ok', length: 1 }], Buffer.alloc(1))),
      { maxIos: 128, maxBytes: 1 << 20 },
      retryOnRetryable,
    );
    const both = [fewer.read('a', io(1)), fewer.read('a', io(2))];
    for (const p of both) await assert.rejects(p, { code: 'PROTOCOL_ERROR' });
    const short = new ReadCoalescer(
      (_key, ios: WireRead[]) =>
        Promise.resolve(payloadOutcomes(ios, [{ status: 'ok', length: 10 }], Buffer.alloc(3))),
      { maxIos: 128, maxBytes: 1 << 20 },
      retryOnRetryable,
    );
    await assert.rejects(short.read('a', io(1)), /payload is short/);
    assert.throws(
      () =>
        new ReadCoalescer(
          () => Promise.reject(new Error()),
          { maxIos: 0, maxBytes: 1 },
          () => undefined,
        ),
    );
  });

  it('placed outcomes carry the lengths the server put in shared memory', () => {
    assert.deepEqual(
      placedOutcomes(
        [io(1), io(2), io(3)],
        [{ status: 'ok', length: 77 }, { status: 'NOT_FOUND' }, { status: 'UNAVAILABLE' }],
      ),
      [{ kind: 'placed', length: 77 }, { kind: 'missing' }, { kind: 'retry' }],
    );
  });

  it('a read joins the fullest call with room, else an idle replica, else the least full', () => {
    const rows: Array<[fills: number[], random: number, chosen: number]> = [
      [[0], 0.9, 0], // the only replica
      [[0, 0.2, 0], 0.9, 1], // one call gathered: join it
      [[0.1, 0.5, 0.05], 0, 1], // several: the fullest
      [[0.1, 1, 0.05], 0, 0], // the fullest with room (1 is full)
      [[1.5, 0, 0], 0, 1], // every call full: an idle replica, the random's first...
      [[1.5, 0, 0], 0.99, 2], // ...or its second
      [[0, 0, 0], 0.5, 1], // nothing gathered: a random replica
      [[1.2, 1.1, 1], 0.3, 2], // every replica full: the least full call
      [[4, 4, 4], 0, 0], // equally full: at random...
      [[4, 4, 4], 0.5, 1],
      [[4, 4, 4], 0.99, 2],
      [[4, 2, 2], 0.99, 2], // ...among the least full
    ];
    for (const [fills, random, chosen] of rows)
      assert.equal(
        chooseReplica(fills, () => random),
        chosen,
        JSON.stringify(fills),
      );
    assert.throws(() => chooseReplica([]), { code: 'INTERNAL' });
  });

  it('a call is as full as the fuller of its reads and bytes against the bound', () => {
    const c = new ReadCoalescer(
      fakeNode().send,
      { maxIos: 128, maxBytes: 1 << 20 },
      retryOnRetryable,
    );
    const bound = { maxIos: 4, maxBytes: 16_384 };
    assert.equal(c.fill('a', bound), 0);
    void c.read('a', io(1, 1024));
    assert.equal(c.fill('a', bound), 0.25);
    void c.read('a', io(2, 12_288));
    assert.equal(c.fill('a', bound), 13_312 / 16_384);
    assert.equal(c.fill('b', bound), 0);
  });

  it('a turn of reads that could go anywhere shares calls up to the join bound', async () => {
    const node = fakeNode();
    const c = new ReadCoalescer(node.send, { maxIos: 1024, maxBytes: 64 << 20 }, retryOnRetryable);
    const replicas = ['a', 'b', 'c'];
    const bound = { maxIos: 16, maxBytes: 256 * 1024 };
    const read = (i: number, length: number) =>
      c.read(replicas[chooseReplica(replicas.map((r) => c.fill(r, bound)))]!, io(i, length));
    await Promise.all(Array.from({ length: 40 }, (_, i) => read(i + 1, 4096)));
    assert.deepEqual(
      node.calls.map((call) => call.ios.length),
      [16, 16, 8],
    );
    assert.equal(new Set(node.calls.map((call) => call.address)).size, 3);
    // Reads as large as the bound's bytes each go to a replica of their own.
    node.calls.length = 0;
    await Promise.all(Array.from({ length: 3 }, (_, i) => read(i + 1, 1 << 20)));
    assert.deepEqual(
      node.calls.map((call) => call.ios.length),
      [1, 1, 1],
    );
    assert.equal(new Set(node.calls.map((call) => call.address)).size, 3);
  });
});
