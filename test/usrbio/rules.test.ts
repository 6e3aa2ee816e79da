// The USRBIO protocol's pure rules row by row: line splitting with its bound, access modes from
// fdinfo, and where a mount's socket lives.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  accessOfFdinfo,
  MAX_LINE_BYTES,
  splitLines,
  usrbioSocketPath,
} from '../../daemons/common/usrbio-protocol.js';

describe('usrbio protocol rules', () => {
  it('splits lines and keeps the unfinished tail', () => {
    assert.deepEqual(splitLines('', 'a\nb\n'), { lines: ['a', 'b'], rest: '' });
    assert.deepEqual(splitLines('x', 'y\nz'), { lines: ['xy'], rest: 'z' });
    assert.deepEqual(splitLines('', '\n\n'), { lines: [], rest: '' });
  });

  it('refuses a line past the bound, finished or not', () => {
    assert.equal(splitLines('', 'a'.repeat(MAX_LINE_BYTES + 1)), null);
    assert.equal(splitLines('', `${'a'.repeat(MAX_LINE_BYTES + 1)}\n`), null);
    assert.notEqual(splitLines('', 'a'.repeat(MAX_LINE_BYTES)), null);
  });

  it('reads the access mode from fdinfo', () => {
    const rows: Array<[string, { read: boolean; write: boolean } | null]> = [
      ['pos:\t0\nflags:\t0100000\nmnt_id:\t1\n', { read: true, write: false }],
      ['flags:\t0100001\n', { read: false, write: true }],
      ['flags:\t02\n', { read: true, write: true }],
      ['flags:\t03\n', null],
      ['pos:\t0\n', null],
    ];
    for (const [text, expected] of rows) assert.deepEqual(accessOfFdinfo(text), expected, text);
  });

  it('names a mount socket by device number', () => {
    assert.equal(usrbioSocketPath('/run/x', 47), '/run/x/47.sock');
  });
});
