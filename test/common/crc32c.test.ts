import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  crc32c,
  crc32cHardware,
  crc32cGranules,
  crc32cHardwareAvailable,
  crc32cPortable,
} from '../../daemons/common/crc32c.js';

// Published CRC32C vectors: RFC 3720 (iSCSI) appendix B.4 and the common "123456789" check value.
const vectors: Array<[string, Buffer, number]> = [
  ['check value "123456789"', Buffer.from('123456789'), 0xe3069283],
  ['empty input', Buffer.alloc(0), 0x00000000],
  ['32 bytes of zeros', Buffer.alloc(32, 0x00), 0x8a9136aa],
  ['32 bytes of 0xff', Buffer.alloc(32, 0xff), 0x62a8ab43],
  ['32 incrementing bytes', Buffer.from(Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e],
  ['32 decrementing bytes', Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c],
  [
    'iSCSI SCSI read command PDU',
    Buffer.from(
      '01c00000000000000000000000000000' +
        '14000000000004000000001400000018' +
        '28000000000000000200000000000000',
      'hex',
    ),
    0xd9963a56,
  ],
];

const implementations: Array<[string, typeof crc32c]> = [
  ['dispatching', crc32c],
  ['portable', crc32cPortable],
];
if (crc32cHardwareAvailable) implementations.push(['sse4.2', crc32cHardware]);

describe('crc32c', () => {
  for (const [implName, fn] of implementations) {
    for (const [name, input, expected] of vectors) {
      it(`${implName}: ${name}`, () => assert.equal(fn(input), expected));
    }
  }

  it('chains across buffers and accepts a list', () => {
    const whole = randomBytes(10_000);
    const a = whole.subarray(0, 3_333);
    const b = whole.subarray(3_333);
    assert.equal(crc32c(b, crc32c(a)), crc32c(whole));
    assert.equal(crc32c([a, b]), crc32c(whole));
  });

  it('portable and hardware agree on random lengths and unaligned offsets', () => {
    for (let i = 0; i < 200; i++) {
      const buf = randomBytes(1 + ((i * 7919) % 5000));
      const view = buf.subarray(i % 7);
      assert.equal(crc32cPortable(view), crc32c(view));
    }
  });

  it('the three-lane path (4 KiB and up) agrees with the portable one, chained and unaligned', () => {
    const big = randomBytes(3 * 1024 * 1024 + 11);
    for (const length of [4095, 4096, 4097, 4119, 24 * 1000 + 5, 1 << 20, big.length - 7]) {
      for (const offset of [0, 1, 7]) {
        const view = big.subarray(offset, offset + length);
        assert.equal(crc32c(view), crc32cPortable(view), `length ${length} offset ${offset}`);
        assert.equal(crc32c(view, 0x12345678), crc32cPortable(view, 0x12345678));
      }
    }
  });

  it('per-granule CRCs (three granules interleaved) match each granule on its own', () => {
    const data = randomBytes(300 * 1024 + 3);
    for (const granule of [4096, 65536, 4100, 1000, 7, 1]) {
      for (const length of [
        0,
        1,
        granule - 1,
        granule,
        2 * granule + 1,
        3 * granule,
        7 * granule + 5,
      ]) {
        if (length > data.length) continue;
        for (const offset of [0, 3]) {
          const view = data.subarray(offset, offset + length);
          const expected = Array.from({ length: Math.ceil(length / granule) }, (_, i) =>
            crc32cPortable(view.subarray(i * granule, Math.min(length, (i + 1) * granule))),
          );
          assert.deepEqual(
            Array.from(crc32cGranules(view, granule)),
            expected,
            `${granule}/${length}`,
          );
        }
      }
    }
    assert.throws(() => crc32cGranules(data, 0), /granule/);
  });

  it('rejects values that are not bytes', () => {
    assert.throws(() => crc32c('text' as unknown as Uint8Array), /Uint8Array/);
    assert.throws(() => crc32c(new Uint16Array(4) as unknown as Uint8Array), /Uint8Array/);
  });
});
