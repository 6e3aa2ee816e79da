// LocalRegions rows (a fake mapper stands in for the native one): only same-host connections map,
// a region is usable only by the connection that mapped it, and everything a connection mapped
// is unmapped when it closes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ConnectionScope } from '../../daemons/common/rpc/index.js';
import { LocalRegions, MAX_REGIONS_PER_CONNECTION } from '../../daemons/storage/local-regions.js';
import { quietLog } from '../helpers/cluster.js';

function connection(id: number, local = true) {
  const cleanups: Array<() => void> = [];
  const scope: ConnectionScope = { id, local, onClose: (c) => cleanups.push(c) };
  return { scope, close: () => cleanups.splice(0).forEach((c) => c()) };
}

function fakeMapper() {
  let next = 1;
  const mapped = new Set<number>();
  return {
    mapped,
    mapper: {
      map: () => {
        mapped.add(next);
        return next++;
      },
      unmap: (id: number) => mapped.delete(id),
    },
  };
}

describe('local regions', () => {
  it('maps only for connections from the unix socket', () => {
    const { mapper } = fakeMapper();
    const regions = new LocalRegions(mapper, quietLog);
    assert.throws(() => regions.map(connection(1, false).scope, '/proc/1/fd/3', 4096), {
      code: 'PERMISSION_DENIED',
    });
  });

  it('a region belongs to the connection that mapped it', () => {
    const { mapper, mapped } = fakeMapper();
    const regions = new LocalRegions(mapper, quietLog);
    const a = connection(1);
    const b = connection(2);
    const id = regions.map(a.scope, '/proc/1/fd/3', 8192);
    assert.equal(regions.bytesOf(a.scope, id), 8192);
    assert.throws(() => regions.bytesOf(b.scope, id), { code: 'NOT_FOUND' });
    assert.throws(() => regions.unmap(b.scope, id), { code: 'NOT_FOUND' });
    regions.unmap(a.scope, id);
    assert.equal(mapped.size, 0);
    assert.throws(() => regions.bytesOf(a.scope, id), { code: 'NOT_FOUND' });
  });

  it('closing a connection unmaps what it mapped, and only that', () => {
    const { mapper, mapped } = fakeMapper();
    const regions = new LocalRegions(mapper, quietLog);
    const a = connection(1);
    const b = connection(2);
    regions.map(a.scope, '/proc/1/fd/3', 4096);
    regions.map(a.scope, '/proc/1/fd/4', 4096);
    const kept = regions.map(b.scope, '/proc/2/fd/3', 4096);
    a.close();
    assert.deepEqual([...mapped], [kept]);
    assert.equal(regions.count, 1);
    b.close();
    assert.equal(regions.count, 0);
  });

  it('bounds the regions of one connection', () => {
    const { mapper } = fakeMapper();
    const regions = new LocalRegions(mapper, quietLog);
    const a = connection(1);
    for (let i = 0; i < MAX_REGIONS_PER_CONNECTION; i++) regions.map(a.scope, `/proc/1/fd/${i}`, 1);
    assert.throws(() => regions.map(a.scope, '/proc/1/fd/999', 1), { code: 'RESOURCE_EXHAUSTED' });
  });
});
