import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import { crc32c } from '../../daemons/common/crc32c.js';
import { crc32cCombine, crc32cOfTail } from '../../daemons/common/crc32c-combine.js';

it('combines and splits CRC32Cs exactly as checksumming the concatenation', () => {
  const rows: Array<[number, number]> = [
    [0, 0],
    [0, 1],
    [1, 0],
    [5, 3],
    [40, 1_048_576],
    [123, 4_097],
    [65_536, 65_536],
    [7, 3 * 1_048_576 + 7],
  ];
  for (const [lengthA, lengthB] of rows) {
    const a = randomBytes(lengthA);
    const b = randomBytes(lengthB);
    const whole = crc32c([a, b]);
    assert.equal(crc32cCombine(crc32c(a), crc32c(b), lengthB), whole, `${lengthA}+${lengthB}`);
    assert.equal(crc32cOfTail(whole, crc32c(a), lengthB), crc32c(b), `${lengthA}+${lengthB}`);
  }
  // A wrong tail CRC never combines into the right whole.
  const a = randomBytes(100);
  const b = randomBytes(1000);
  assert.notEqual(crc32cCombine(crc32c(a), crc32c(b) ^ 1, 1000), crc32c([a, b]));
  assert.throws(() => crc32cCombine(0, 0, -1), RangeError);
  assert.throws(() => crc32cOfTail(0, 0, 1.5), RangeError);
});
