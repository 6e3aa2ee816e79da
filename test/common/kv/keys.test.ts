import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ThreeFsError } from '../../../daemons/common/errors.js';
import {
  compareKeys,
  encodeKey,
  keyAfter,
  prefixRange,
  readU64be,
  strinc,
  u64be,
} from '../../../daemons/common/kv/keys.js';

const hex = (text: string) => Buffer.from(text, 'hex');

describe('kv keys', () => {
  it('strinc drops trailing 0xff and increments the last byte', () => {
    const rows: Array<[string, string]> = [
      ['00', '01'],
      ['61', '62'],
      ['61ff', '62'],
      ['61ffff', '62'],
      ['01fe', '01ff'],
      ['00ff00', '00ff01'],
    ];
    for (const [input, expected] of rows) {
      assert.equal(strinc(hex(input)).toString('hex'), expected, input);
    }
    for (const bad of ['', 'ff', 'ffff']) {
      assert.throws(
        () => strinc(hex(bad)),
        (err: unknown) => err instanceof ThreeFsError && err.code === 'INVALID_ARGUMENT',
      );
    }
  });

  it('keyAfter is the immediate successor; prefixRange holds exactly the prefixed keys', () => {
    assert.equal(keyAfter(hex('61')).toString('hex'), '6100');
    assert.equal(keyAfter(hex('')).toString('hex'), '00');
    const { begin, end } = prefixRange(Buffer.from('DENT'));
    for (const inside of ['DENT', 'DENT\x00', 'DENT\xff\xff', 'DENTx']) {
      const key = Buffer.from(inside, 'latin1');
      assert.ok(compareKeys(begin, key) <= 0 && compareKeys(key, end) < 0, inside);
    }
    for (const outside of ['DENS\xff', 'DENU', 'DEN']) {
      const key = Buffer.from(outside, 'latin1');
      assert.ok(!(compareKeys(begin, key) <= 0 && compareKeys(key, end) < 0), outside);
    }
  });

  it('u64be sorts like the numbers and round-trips', () => {
    const ids = [0n, 1n, 255n, 256n, 65_535n, 1n << 32n, (1n << 63n) + 5n, (1n << 64n) - 1n];
    const encoded = ids.map((id) => u64be(id));
    for (let i = 1; i < encoded.length; i++) {
      assert.ok(compareKeys(encoded[i - 1] as Buffer, encoded[i] as Buffer) < 0);
    }
    ids.forEach((id, i) => assert.equal(readU64be(encoded[i] as Buffer, 0), id));
    assert.equal(u64be(4096).toString('hex'), '0000000000001000');
    for (const bad of [-1, 1.5, Number.MAX_SAFE_INTEGER + 1, -1n, 1n << 64n]) {
      assert.throws(
        () => u64be(bad),
        (err: unknown) => err instanceof ThreeFsError && err.code === 'INVALID_ARGUMENT',
        String(bad),
      );
    }
    assert.throws(() => readU64be(Buffer.alloc(7), 0), ThreeFsError);
  });

  it('encodeKey makes (tag, parent, name) keys whose dentries of one parent are contiguous', () => {
    const dentry = (parent: number, name: string) => encodeKey('DENT', parent, name);
    assert.equal(dentry(1, 'a').toString('hex'), '44454e54' + '0000000000000001' + '61');
    const keys = [dentry(2, 'a'), dentry(1, 'zz'), dentry(1, ''), dentry(256, 'a'), dentry(1, 'b')];
    const sorted = [...keys].sort(compareKeys).map((key) => key.toString('hex'));
    assert.deepEqual(
      sorted,
      [dentry(1, ''), dentry(1, 'b'), dentry(1, 'zz'), dentry(2, 'a'), dentry(256, 'a')].map(
        (key) => key.toString('hex'),
      ),
    );
    const { begin, end } = prefixRange(encodeKey('DENT', 1));
    const inParent = keys.filter(
      (key) => compareKeys(begin, key) <= 0 && compareKeys(key, end) < 0,
    );
    assert.equal(inParent.length, 3);
    assert.equal(encodeKey(Buffer.from([0xff]), 1n, 'é').toString('hex'), 'ff0000000000000001c3a9');
  });
});
