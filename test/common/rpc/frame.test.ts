import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ThreeFsError } from '../../../daemons/common/errors.js';
import { parseAddress } from '../../../daemons/common/rpc/address.js';
import { backoffDelay } from '../../../daemons/common/rpc/backoff.js';
import { decodeBody, encodeBody } from '../../../daemons/common/rpc/body-codec.js';
import { decodeErrorBody, encodeErrorBody } from '../../../daemons/common/rpc/error-body.js';
import {
  encodeFrame,
  FrameKind,
  HEADER_BYTES,
  parseHeader,
} from '../../../daemons/common/rpc/frame.js';
import { FrameDecoder } from '../../../daemons/common/rpc/frame-decoder.js';
import { z } from 'zod';

function frameBytes(requestId: number, body: unknown, payload?: Buffer): Buffer {
  const [head, tail] = encodeFrame(
    { kind: FrameKind.Request, serviceId: 7, methodId: 9, requestId, timeoutMs: 1234 },
    encodeBody(body),
    payload,
  );
  return tail === undefined ? head : Buffer.concat([head, tail]);
}

const isCode = (code: string) => (err: unknown) => err instanceof ThreeFsError && err.code === code;

describe('frame header', () => {
  it('round-trips every field, including a request id above 2^32', () => {
    const bytes = frameBytes(2 ** 40 + 5, { a: 1 }, Buffer.from('xyz'));
    const header = parseHeader(bytes.subarray(0, HEADER_BYTES), 1 << 20);
    assert.equal(header.kind, FrameKind.Request);
    assert.equal(header.serviceId, 7);
    assert.equal(header.methodId, 9);
    assert.equal(header.requestId, 2 ** 40 + 5);
    assert.equal(header.timeoutMs, 1234);
    assert.equal(header.payloadLength, 3);
  });

  it('rejects, row by row: bad magic, other version, header CRC, length over the limit', () => {
    const good = frameBytes(1, { a: 1 }, Buffer.alloc(100));
    const rows: [string, (b: Buffer) => void, string, RegExp, number?][] = [
      ['bad magic', (b) => b.writeUInt32LE(0xdeadbeef, 0), 'PROTOCOL_ERROR', /magic/],
      ['other version', (b) => b.writeUInt8(9, 4), 'HANDSHAKE_REFUSED', /version mismatch.*sent 9/],
      [
        'flipped length bit',
        (b) => (b[24] = (b[24] as number) ^ 0x10),
        'PROTOCOL_ERROR',
        /header CRC/,
      ],
      ['over the limit', () => undefined, 'PROTOCOL_ERROR', /over the limit of 50/, 50],
    ];
    for (const [name, mutate, code, message, limit] of rows) {
      const header = Buffer.from(good.subarray(0, HEADER_BYTES));
      mutate(header);
      assert.throws(
        () => parseHeader(header, limit ?? 1 << 20),
        (err: unknown) => isCode(code)(err) && message.test((err as Error).message),
        name,
      );
    }
  });

  it('refuses to encode out-of-range ids', () => {
    assert.throws(
      () =>
        encodeFrame(
          { kind: FrameKind.Request, serviceId: 70000, methodId: 1, requestId: 1, timeoutMs: 0 },
          Buffer.alloc(0),
        ),
      isCode('INTERNAL'),
    );
  });
});

describe('frame decoder', () => {
  it('decodes the same frames whatever the chunk boundaries', () => {
    const payload = Buffer.alloc(5000, 3);
    const stream = Buffer.concat([
      frameBytes(1, { m: 'a' }),
      frameBytes(2, { m: 'b' }, payload),
      frameBytes(3, {}),
    ]);
    for (const size of [1, 7, 39, 40, 41, 1000, stream.length]) {
      const decoder = new FrameDecoder(1 << 20);
      const ids: number[] = [];
      for (let at = 0; at < stream.length; at += size) {
        decoder.push(stream.subarray(at, at + size));
        for (let frame = decoder.next(); frame; frame = decoder.next()) {
          ids.push(frame.header.requestId);
          if (frame.header.requestId === 2) assert.ok(frame.payload?.equals(payload));
        }
      }
      assert.deepEqual(ids, [1, 2, 3], `chunk size ${size}`);
      assert.equal(decoder.midFrame, false);
    }
  });

  it('hands out a payload inside one chunk as a view of that chunk (no copy)', () => {
    const chunk = frameBytes(1, {}, Buffer.alloc(4096, 9));
    const decoder = new FrameDecoder(1 << 20);
    decoder.push(chunk);
    const frame = decoder.next();
    assert.ok(frame?.payload);
    assert.equal(frame.payload.buffer, chunk.buffer, 'payload shares the chunk memory');
  });

  it('rejects a length over the limit from the header alone, before the bytes arrive', () => {
    const decoder = new FrameDecoder(1024);
    decoder.push(frameBytes(1, {}, Buffer.alloc(2048)).subarray(0, HEADER_BYTES));
    assert.throws(() => decoder.next(), isCode('PROTOCOL_ERROR'));
    assert.throws(() => decoder.next(), isCode('PROTOCOL_ERROR'), 'stays failed');
  });

  it('rejects a flipped payload bit by the data CRC', () => {
    const bytes = frameBytes(1, {}, Buffer.alloc(64, 1));
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1;
    const decoder = new FrameDecoder(1 << 20);
    decoder.push(bytes);
    assert.throws(
      () => decoder.next(),
      (err: unknown) => isCode('PROTOCOL_ERROR')(err) && /data CRC/.test((err as Error).message),
    );
  });
});

describe('body codec and error bodies', () => {
  const Schema = z.object({
    name: z.string(),
    size: z.number().int(),
    tags: z.array(z.string()).default([]),
  });

  it('round-trips plain objects, bigints and buffers', () => {
    const value = {
      n: 1.5,
      big: 2n ** 60n,
      s: 'ü',
      list: [1, 'a', null],
      nested: { b: Buffer.from('hi') },
    };
    const decoded = decodeBody(z.any(), encodeBody(value), 'x') as typeof value;
    assert.equal(decoded.big, 2n ** 60n);
    assert.ok(Buffer.from(decoded.nested.b).equals(Buffer.from('hi')));
    assert.deepEqual({ ...decoded, nested: undefined }, { ...value, nested: undefined });
  });

  it('names the failing field', () => {
    assert.throws(
      () => decodeBody(Schema, encodeBody({ name: 'f', size: 'big' }), 'request of Meta.stat'),
      (err: unknown) =>
        isCode('INVALID_ARGUMENT')(err) &&
        /request of Meta\.stat failed validation: size:/.test((err as Error).message),
    );
    assert.throws(() => decodeBody(Schema, Buffer.from([0xc1]), 'x'), isCode('INVALID_ARGUMENT'));
  });

  it('carries an error code, message and details; keeps an unknown code in details', () => {
    const err = decodeErrorBody(
      encodeErrorBody(new ThreeFsError('NOT_PRIMARY', 'ask 2', { primary: 2 })),
    );
    assert.equal(err.code, 'NOT_PRIMARY');
    assert.equal(err.message, 'ask 2');
    assert.deepEqual(err.details, { primary: 2 });
    const future = decodeErrorBody(encodeBody({ code: 'FROM_THE_FUTURE', message: 'm' }));
    assert.equal(future.code, 'INTERNAL');
    assert.equal(future.details?.unknownCode, 'FROM_THE_FUTURE');
  });
});

describe('backoff and addresses', () => {
  it('grows from initial to max with jitter in the upper half', () => {
    const policy = { initialMs: 50, maxMs: 5000 };
    const rows: [number, number, number][] = [
      // failures, delay at random()=0, delay at random()=1
      [0, 0, 0],
      [1, 25, 50],
      [2, 50, 100],
      [5, 400, 800],
      [8, 2500, 5000],
      [1000, 2500, 5000],
    ];
    for (const [failures, low, high] of rows) {
      assert.equal(
        backoffDelay(policy, failures, () => 0),
        low,
        `failures ${failures} low`,
      );
      assert.equal(
        backoffDelay(policy, failures, () => 1),
        high,
        `failures ${failures} high`,
      );
    }
    assert.throws(() => backoffDelay({ initialMs: 0, maxMs: 1 }, 1), isCode('INTERNAL'));
  });

  it('parses host:port, [v6]:port and unix paths, and rejects the rest', () => {
    assert.deepEqual(parseAddress('127.0.0.1:9000'), {
      kind: 'tcp',
      host: '127.0.0.1',
      port: 9000,
    });
    assert.deepEqual(parseAddress('[::1]:9000'), { kind: 'tcp', host: '::1', port: 9000 });
    assert.deepEqual(parseAddress('unix:/run/x.sock'), { kind: 'unix', path: '/run/x.sock' });
    assert.deepEqual(parseAddress('/run/x.sock'), { kind: 'unix', path: '/run/x.sock' });
    for (const bad of ['nohost', ':9000', 'h:0', 'h:70000', 'h:x', 'unix:']) {
      assert.throws(() => parseAddress(bad), isCode('INVALID_ARGUMENT'), bad);
    }
  });
});
