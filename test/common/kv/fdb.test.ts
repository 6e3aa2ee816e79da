// The FoundationDB engine's parts that run without a cluster: its error mapping, and the clear
// error when the client library or the package is missing (the case on this project's CI).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ThreeFsError } from '../../../daemons/common/errors.js';
import { kvConfig } from '../../../daemons/common/kv/config.js';
import { mapFdbError } from '../../../daemons/common/kv/fdb.js';
import { openKvStore } from '../../../daemons/common/kv/open.js';

async function fdbLoadable(): Promise<boolean> {
  try {
    const name = 'foundationdb';
    await import(name);
    return true;
  } catch {
    return false;
  }
}

const fdbError = (code: number) => Object.assign(new Error(`fdb ${code}`), { code });

describe('kv fdb engine', () => {
  it('maps FoundationDB errors to status codes', () => {
    const rows: Array<[number, string]> = [
      [1020, 'TXN_CONFLICT'],
      [1009, 'TXN_CONFLICT'],
      [1007, 'TXN_TOO_OLD'],
      [2101, 'TXN_TOO_LARGE'],
      [2102, 'INVALID_ARGUMENT'],
      [2103, 'INVALID_ARGUMENT'],
      [1021, 'UNAVAILABLE'],
      [1031, 'DEADLINE_EXCEEDED'],
      [4100, 'UNAVAILABLE'],
    ];
    for (const [code, expected] of rows) {
      const mapped = mapFdbError(fdbError(code));
      assert.ok(mapped instanceof ThreeFsError, String(code));
      assert.equal(mapped.code, expected, String(code));
      assert.equal(mapped.details?.fdbCode, code);
    }
    const plain = new Error('not from fdb');
    assert.equal(mapFdbError(plain), plain, 'errors without an fdb code pass through');
  });

  it('says what to install when FoundationDB cannot be loaded', async (t) => {
    if (await fdbLoadable()) {
      t.skip('the foundationdb package and libfdb_c are installed here');
      return;
    }
    await assert.rejects(
      openKvStore(kvConfig({ engine: 'fdb' })),
      (err: unknown) =>
        err instanceof ThreeFsError &&
        err.code === 'FAILED_PRECONDITION' &&
        /libfdb_c\.so/.test(err.message) &&
        /npm install foundationdb/.test(err.message),
    );
  });
});
