import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ContentRef } from '../../../daemons/storage/engine/chunk-record.js';
import {
  oldBytesNeeded,
  planUpdate,
  type PlanRequest,
} from '../../../daemons/storage/engine/update-plan.js';

const MiB = 2 ** 20;
// 100 000 bytes committed in a 128 KiB block (granule 4 KiB).
const committed: ContentRef = {
  length: 100_000,
  checksum: 1,
  block: { cls: 1, file: 0, block: 3 },
  crcs: new Uint32Array(25),
};
const none: ContentRef = { length: 0, checksum: 0, block: null, crcs: new Uint32Array(0) };

const write = (offset: number, dataLength: number, extra: Partial<PlanRequest> = {}) =>
  ({
    kind: 'write',
    offset,
    dataLength,
    length: 0,
    chunkSize: MiB,
    syncing: false,
    ...extra,
  }) as PlanRequest;
const truncate = (length: number) =>
  ({ kind: 'truncate', offset: 0, dataLength: 0, length, chunkSize: MiB, syncing: false }) as const;

describe('update plans', () => {
  it('a new chunk is copy-on-write into the smallest class that fits', () => {
    assert.deepEqual(planUpdate(none, false, write(0, 4096)), {
      kind: 'cow',
      newLength: 4096,
      cls: 0,
      segments: [{ from: 'data' }],
    });
  });

  it('a write past the end of a new chunk zero-fills the gap', () => {
    const plan = planUpdate(none, false, write(70_000, 10));
    assert.deepEqual(plan, {
      kind: 'cow',
      newLength: 70_010,
      cls: 1,
      segments: [{ from: 'zeros', length: 70_000 }, { from: 'data' }],
    });
  });

  it('an overwrite inside committed bytes is copy-on-write keeping head and tail', () => {
    const plan = planUpdate(committed, false, write(10, 20));
    assert.deepEqual(plan, {
      kind: 'cow',
      newLength: 100_000,
      cls: 1,
      segments: [
        { from: 'old', start: 0, end: 10 },
        { from: 'data' },
        { from: 'old', start: 30, end: 100_000 },
      ],
    });
    assert.deepEqual(oldBytesNeeded(plan), { start: 0, end: 100_000 });
  });

  it('a full overwrite reads nothing old', () => {
    const plan = planUpdate(committed, false, write(0, 100_000));
    assert.equal(plan.kind, 'cow');
    assert.equal(oldBytesNeeded(plan), null);
  });

  it('an append that fits the block writes in place from the tail granule', () => {
    const plan = planUpdate(committed, false, write(100_000, 1000));
    assert.deepEqual(plan, {
      kind: 'in-place',
      newLength: 101_000,
      writeFrom: 98_304,
      segments: [{ from: 'old', start: 98_304, end: 100_000 }, { from: 'data' }],
    });
  });

  it('an append with a gap writes zeros then data in place', () => {
    const plan = planUpdate(committed, false, write(110_000, 10));
    assert.equal(plan.kind, 'in-place');
    assert.deepEqual(plan.kind === 'in-place' && plan.segments.slice(1), [
      { from: 'zeros', length: 10_000 },
      { from: 'data' },
    ]);
  });

  it('an append past the block grows into a bigger class by copy-on-write', () => {
    const plan = planUpdate(committed, false, write(100_000, 40_000));
    assert.equal(plan.kind, 'cow');
    assert.equal(plan.kind === 'cow' && plan.cls, 2);
  });

  it('an append while a version is pending, or when syncing, is copy-on-write', () => {
    assert.equal(planUpdate(committed, true, write(100_000, 10)).kind, 'cow');
    assert.equal(planUpdate(committed, false, write(0, 10, { syncing: true })).kind, 'cow');
  });

  it('a syncing write replaces the content with exactly the data', () => {
    assert.deepEqual(planUpdate(committed, true, write(0, 10, { syncing: true })), {
      kind: 'cow',
      newLength: 10,
      cls: 0,
      segments: [{ from: 'data' }],
    });
    assert.throws(() => planUpdate(committed, false, write(5, 10, { syncing: true })), {
      code: 'INVALID_ARGUMENT',
    });
  });

  it('truncate: shrink is a view, extend is an in-place zero fill, to 0 is a shrink', () => {
    assert.deepEqual(planUpdate(committed, false, truncate(50_000)), {
      kind: 'shrink',
      newLength: 50_000,
    });
    assert.deepEqual(planUpdate(committed, false, truncate(120_000)), {
      kind: 'in-place',
      newLength: 120_000,
      writeFrom: 98_304,
      segments: [
        { from: 'old', start: 98_304, end: 100_000 },
        { from: 'zeros', length: 20_000 },
      ],
    });
    assert.deepEqual(planUpdate(committed, false, truncate(0)), { kind: 'shrink', newLength: 0 });
    assert.deepEqual(planUpdate(none, false, truncate(0)), {
      kind: 'cow',
      newLength: 0,
      cls: null,
      segments: [],
    });
  });

  it('remove is its own plan', () => {
    assert.deepEqual(planUpdate(committed, false, { ...truncate(0), kind: 'remove' }), {
      kind: 'remove',
    });
  });

  it('refuses content past the chunk size and bad numbers', () => {
    assert.throws(() => planUpdate(committed, false, write(MiB - 10, 20)), {
      code: 'INVALID_ARGUMENT',
    });
    assert.throws(() => planUpdate(committed, false, write(-1, 20)), {
      code: 'INVALID_ARGUMENT',
    });
    assert.throws(() => planUpdate(committed, false, write(0, 20, { chunkSize: 2 ** 27 })), {
      code: 'INVALID_ARGUMENT',
    });
    assert.throws(() => planUpdate(committed, false, write(0.5, 20)), {
      code: 'INVALID_ARGUMENT',
    });
  });
});
