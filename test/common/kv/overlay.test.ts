import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mergeRange } from '../../../daemons/common/kv/merge.js';
import { WriteOverlay } from '../../../daemons/common/kv/overlay.js';
import type { KeyValue } from '../../../daemons/common/kv/types.js';

const b = (text: string) => Buffer.from(text, 'latin1');
// Stored 'e' holds the byte '1' (0x31): an add of 1 on it reads back as '2' (0x32) + 7 zero bytes.
const rowsOf = (text: string): KeyValue[] =>
  text
    .split(' ')
    .filter(Boolean)
    .map((pair) => {
      const [key, value] = pair.split('=');
      return { key: b(key as string), value: b(value as string) };
    });
const show = (rows: KeyValue[]) =>
  rows.map((row) => `${row.key.toString('latin1')}=${row.value.toString('latin1')}`).join(' ');

/** Stored rows of [begin, end) in scan order, as an engine would yield them. */
function scan(
  stored: KeyValue[],
  begin: Buffer,
  end: Buffer,
  reverse: boolean,
): Iterator<KeyValue> {
  const inRange = stored.filter(
    (row) => Buffer.compare(row.key, begin) >= 0 && Buffer.compare(row.key, end) < 0,
  );
  return (reverse ? inRange.reverse() : inRange)[Symbol.iterator]();
}

describe('kv write overlay', () => {
  it('keeps the last mutation per key and merges cleared ranges', () => {
    const overlay = new WriteOverlay();
    assert.ok(overlay.isEmpty);
    overlay.set(b('a'), b('1'));
    overlay.set(b('a'), b('2'));
    overlay.clear(b('b'));
    assert.deepEqual(overlay.pointAt(b('a')), { kind: 'set', value: b('2') });
    assert.deepEqual(overlay.pointAt(b('b')), { kind: 'clear' });
    overlay.clearRange(b('c'), b('e'));
    overlay.clearRange(b('g'), b('i'));
    overlay.clearRange(b('d'), b('g')); // bridges both
    assert.deepEqual(
      overlay.clearedRanges().map((r) => `${r.begin}-${r.end}`),
      ['c-i'],
    );
    overlay.clearRange(b('x'), b('z'));
    overlay.clearRange(b('a0'), b('a1'));
    assert.deepEqual(
      overlay.clearedRanges().map((r) => `${r.begin}-${r.end}`),
      ['a0-a1', 'c-i', 'x-z'],
    );
    for (const [key, cleared] of [
      ['c', true],
      ['h', true],
      ['i', false],
      ['b', false],
      ['y', true],
      ['z', false],
      ['a0', true],
    ] as const) {
      assert.equal(overlay.isRangeCleared(b(key)), cleared, key);
    }
    overlay.clearRange(b('a'), b('b')); // drops the point write of 'a'
    assert.equal(overlay.pointAt(b('a')), undefined);
    overlay.clearRange(b('q'), b('q')); // empty: no-op
    assert.equal(overlay.clearedRanges().length, 3);
  });

  it('folds adds into known values and sums them on unknown ones', () => {
    const overlay = new WriteOverlay();
    overlay.add(b('n'), 2n);
    overlay.add(b('n'), 3n);
    assert.deepEqual(overlay.pointAt(b('n')), { kind: 'add', delta: 5n });
    overlay.set(b('s'), Buffer.from('0a00000000000000', 'hex'));
    overlay.add(b('s'), 1n);
    assert.deepEqual(overlay.pointAt(b('s')), {
      kind: 'set',
      value: Buffer.from('0b00000000000000', 'hex'),
    });
    overlay.clearRange(b('r0'), b('r9'));
    overlay.add(b('r5'), 4n); // base known absent
    assert.deepEqual(overlay.pointAt(b('r5')), {
      kind: 'set',
      value: Buffer.from('0400000000000000', 'hex'),
    });
    assert.deepEqual(
      overlay.sortedPoints().map((p) => p.key.toString()),
      ['n', 'r5', 's'],
    );
  });
});

describe('kv range merge (read-your-writes)', () => {
  const stored = rowsOf('a=1 b=1 c=1 d=1 e=1');
  const overlay = new WriteOverlay();
  overlay.set(b('b'), b('2'));
  overlay.set(b('bb'), b('2'));
  overlay.clear(b('c'));
  overlay.clearRange(b('d'), b('e'));
  overlay.add(b('e'), 1n);
  const run = (begin: string, end: string, limit: number | undefined, reverse: boolean) =>
    mergeRange(scan(stored, b(begin), b(end), reverse), overlay, b(begin), b(end), limit, reverse);

  it('merges rows, own writes, clears and adds in both directions', () => {
    const forward = run('a', 'z', undefined, false);
    assert.equal(show(forward.rows), 'a=1 b=2 bb=2 e=2\x00\x00\x00\x00\x00\x00\x00');
    assert.equal(
      show(run('a', 'z', undefined, true).rows),
      'e=2\x00\x00\x00\x00\x00\x00\x00 bb=2 b=2 a=1',
    );
    assert.deepEqual([forward.depends.begin, forward.depends.end].map(String), ['a', 'z']);
    assert.equal(
      show(forward.stored),
      'a=1 b=1 c=1 d=1 e=1',
      'every stored row the result depends on',
    );
  });

  it('with a limit depends only on the rows up to the last one returned', () => {
    const forward = run('a', 'z', 2, false);
    assert.equal(show(forward.rows), 'a=1 b=2');
    assert.equal(forward.depends.end.toString('hex'), '6200', 'up to keyAfter(b)');
    assert.equal(show(forward.stored), 'a=1 b=1');
    const reverse = run('a', 'z', 2, true);
    assert.equal(show(reverse.rows), 'e=2\x00\x00\x00\x00\x00\x00\x00 bb=2');
    assert.deepEqual([reverse.depends.begin, reverse.depends.end].map(String), ['bb', 'z']);
    assert.equal(show(reverse.stored), 'c=1 d=1 e=1', 'ascending, including rows hidden by clears');
  });

  it('a limit larger than the rows depends on the whole range', () => {
    const all = run('b', 'd', 10, false);
    assert.equal(show(all.rows), 'b=2 bb=2');
    assert.deepEqual([all.depends.begin, all.depends.end].map(String), ['b', 'd']);
  });
});
