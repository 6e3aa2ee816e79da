import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyAdd, decodeInt64LE, encodeInt64LE } from '../../../daemons/common/kv/atomic.js';

const hex = (text: string) => Buffer.from(text, 'hex');

describe('kv atomic add (FoundationDB ADD, 8-byte operand)', () => {
  it('follows the ADD rules row by row', () => {
    // existing value (hex or absent), delta, expected result (hex)
    const rows: Array<[string | undefined, bigint, string]> = [
      [undefined, 1n, '0100000000000000'], // absent counts as zero
      [undefined, -1n, 'ffffffffffffffff'],
      ['0100000000000000', 1n, '0200000000000000'],
      ['ff00000000000000', 1n, '0001000000000000'], // carries across bytes
      ['ffffffffffffffff', 1n, '0000000000000000'], // wraps at 2^64
      ['05', 1n, '0600000000000000'], // shorter: zero-extended
      ['', 7n, '0700000000000000'], // empty: zero
      ['0100000000000000ff', 1n, '0200000000000000'], // longer: truncated to 8 bytes
      ['0a00000000000000', -3n, '0700000000000000'],
    ];
    for (const [existing, delta, expected] of rows) {
      const result = applyAdd(existing === undefined ? undefined : hex(existing), delta);
      assert.equal(result.toString('hex'), expected, `${existing} + ${delta}`);
    }
  });

  it('encodes and decodes int64 little-endian, rejecting deltas outside int64', () => {
    assert.equal(encodeInt64LE(-2n).toString('hex'), 'feffffffffffffff');
    assert.equal(decodeInt64LE(hex('feffffffffffffff')), -2n);
    assert.equal(decodeInt64LE(undefined), 0n);
    assert.equal(decodeInt64LE(hex('01')), 1n);
    assert.throws(() => encodeInt64LE(1n << 63n), /outside int64/);
    assert.throws(() => encodeInt64LE(-(1n << 63n) - 1n), /outside int64/);
  });
});
