import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  checkHeartbeat,
  freshTargetReports,
  type HeartbeatHeader,
  type NodeRecord,
} from '../../daemons/mgmtd/heartbeat-rules.js';

const policy = { allowUnregistered: false, maxClockSkewMs: 30_000 };
const record: NodeRecord = {
  nodeId: 7,
  type: 'STORAGE',
  disabled: false,
  lastHeartbeatVersion: 10,
};
const hb = (over: Partial<HeartbeatHeader> = {}): HeartbeatHeader => ({
  nodeId: 7,
  type: 'STORAGE',
  heartbeatVersion: 11,
  sentAtMs: 1_000_000,
  ...over,
});

describe('heartbeat rules', () => {
  it('accepts a heartbeat from a registered node with a newer version', () => {
    assert.deepEqual(checkHeartbeat(record, hb(), 1_000_000, policy), { registers: false });
  });

  const rejected: Array<[string, NodeRecord | undefined, HeartbeatHeader, string, RegExp]> = [
    ['an unknown node', undefined, hb(), 'NOT_FOUND', /not registered/],
    ['a disabled node', { ...record, disabled: true }, hb(), 'PERMISSION_DENIED', /disabled/],
    [
      'a stale heartbeat version',
      record,
      hb({ heartbeatVersion: 10 }),
      'FAILED_PRECONDITION',
      /stale heartbeat version 10 \(last accepted 10\)/,
    ],
    [
      'the wrong node type',
      record,
      hb({ type: 'META' }),
      'INVALID_ARGUMENT',
      /registered as STORAGE but sent a META/,
    ],
    [
      'a clock 31 s ahead',
      record,
      hb({ sentAtMs: 1_031_000 }),
      'FAILED_PRECONDITION',
      /clock differs .* by 31 s/,
    ],
    ['a clock 31 s behind', record, hb({ sentAtMs: 969_000 }), 'FAILED_PRECONDITION', /by -31 s/],
  ];
  for (const [name, rec, header, code, message] of rejected) {
    it(`rejects ${name}`, () => {
      assert.throws(
        () => checkHeartbeat(rec, header, 1_000_000, policy),
        (err: Error & { code?: string }) => err.code === code && message.test(err.message),
      );
    });
  }

  it('registers unknown nodes only when the policy allows it', () => {
    assert.deepEqual(
      checkHeartbeat(undefined, hb(), 1_000_000, { ...policy, allowUnregistered: true }),
      { registers: true },
    );
  });

  it('ignores target reports made against an older chain version', () => {
    const versions = new Map([
      [1, 5],
      [2, 5],
    ]);
    const reports = freshTargetReports(
      [
        { targetId: 1, localState: 'OFFLINE', chainVersion: 4 },
        { targetId: 2, localState: 'UPTODATE', chainVersion: 5 },
        { targetId: 3, localState: 'ONLINE', chainVersion: 1 },
      ],
      (id) => versions.get(id),
    );
    assert.deepEqual(
      reports.map((r) => r.targetId),
      [2, 3],
    );
  });
});
