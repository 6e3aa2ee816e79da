import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  compareReleaseVersions,
  decideLease,
  type LeaseCandidate,
  type LeaseRecord,
  leaseTrusted,
} from '../../daemons/mgmtd/lease.js';

const timings = { leaseLengthMs: 60_000, suspiciousMarginMs: 20_000, checkReleaseVersion: true };
const me: LeaseCandidate = {
  nodeId: 1,
  address: '127.0.0.1:9001',
  releaseVersion: '1.2.0',
  disabled: false,
};
const held = (
  nodeId: number,
  startMs: number,
  endMs: number,
  releaseVersion = '1.2.0',
): LeaseRecord => ({
  primary: { nodeId, address: `127.0.0.1:900${nodeId}` },
  leaseStartMs: startMs,
  leaseEndMs: endMs,
  releaseVersion,
});

describe('lease decisions (brief §1.2)', () => {
  it('no lease stored: acquire it from now for one lease length', () => {
    const d = decideLease(undefined, me, 1_000, timings);
    assert.equal(d.action, 'acquire');
    assert.deepEqual(d.action === 'acquire' && d.record, held(1, 1_000, 61_000));
  });

  it('own lease: extend the end, keep the original start', () => {
    const d = decideLease(held(1, 500, 50_000), me, 20_000, timings);
    assert.equal(d.action, 'extend');
    assert.deepEqual(d.action === 'extend' && d.record, held(1, 500, 80_000));
  });

  it('own lease with a full length left: nothing to write', () => {
    assert.equal(decideLease(held(1, 0, 80_000), me, 20_000, timings).action, 'none');
  });

  it("another node's live lease: leave it, even a moment before it ends", () => {
    const d = decideLease(held(2, 0, 60_000), me, 59_999, timings);
    assert.deepEqual(d, { action: 'none', reason: 'node 2 holds the lease' });
  });

  it('an expired lease: take over with a fresh start', () => {
    const d = decideLease(held(2, 0, 60_000), me, 60_001, timings);
    assert.equal(d.action, 'acquire');
    assert.deepEqual(d.action === 'acquire' && d.record, held(1, 60_001, 120_001));
  });

  it('an older release may not take over an expired lease; an equal or newer one may', () => {
    assert.equal(decideLease(held(2, 0, 10, '1.10.0'), me, 100, timings).action, 'none');
    assert.equal(decideLease(held(2, 0, 10, '1.2.0'), me, 100, timings).action, 'acquire');
    assert.equal(decideLease(held(2, 0, 10, '1.1.9'), me, 100, timings).action, 'acquire');
    assert.equal(
      decideLease(held(2, 0, 10, '1.10.0'), me, 100, { ...timings, checkReleaseVersion: false })
        .action,
      'acquire',
    );
  });

  it('a disabled node releases its own lease and never takes one', () => {
    const disabled = { ...me, disabled: true };
    const d = decideLease(held(1, 0, 50_000), disabled, 10_000, timings);
    assert.equal(d.action, 'release');
    assert.equal(d.action === 'release' && d.record.leaseEndMs, 10_000);
    assert.equal(decideLease(undefined, disabled, 0, timings).action, 'none');
    assert.equal(decideLease(held(2, 0, 10), disabled, 100, timings).action, 'none');
  });

  it('a lease is trusted only by its holder and only with the safety margin left', () => {
    const record = held(1, 0, 60_000);
    assert.equal(leaseTrusted(record, 1, 39_999, timings), true);
    assert.equal(leaseTrusted(record, 1, 40_000, timings), false);
    assert.equal(leaseTrusted(record, 2, 0, timings), false);
    assert.equal(leaseTrusted(undefined, 1, 0, timings), false);
  });

  it('compares release versions numerically', () => {
    assert.equal(compareReleaseVersions('1.10.0', '1.9.9'), 1);
    assert.equal(compareReleaseVersions('1.2', '1.2.0'), 0);
    assert.equal(compareReleaseVersions('0.9.0', '1.0.0'), -1);
  });
});
