// Idempotent remove and rename (brief §5.5, IDEM keys): the result of a mutating request is stored
// under (client id, request id) in the transaction that performs it. A retry after a lost reply
// finds the record and gets the same answer instead of ENOENT. Records expire after a TTL; an
// expiry index (IDEX, by time) lets the cleaner find them without scanning every record.
// A create that makes a new file needs no record: its dentry carries the request's tag (as 3FS's
// dentry carries a uuid), and a retry that finds its own tag at the name knows it already ran.
import { createHash } from 'node:crypto';
import { ThreeFsError } from '../common/errors.js';
import type { Transaction } from '../common/kv/index.js';
import { packValue, unpackValue } from './inode.js';
import { idempotencyExpiryKey, idempotencyExpiryRange, idempotencyKey } from './keys.js';
import type { MetaTxn } from './meta-txn.js';

/** What a create derives from its (client id, request id): see `requestMarks`. */
export interface RequestMarks {
  /** Stored in the dentry the create adds; a retry that finds it there made that dentry. */
  tag: string;
  /** The write session a write-create opens, so a retry can return the same one. */
  sessionId: string;
}

/**
 * One SHA-256 over the ids gives both marks: 64 bits as the dentry's tag (16 characters in every
 * dentry instead of the ~70 of the ids; two requests share a tag with probability 2^-64) and 128
 * bits shaped as a UUID (version 8, "custom") for the session id.
 */
export function requestMarks(clientId: string, requestId: string): RequestMarks {
  const digest = createHash('sha256').update(clientId).update('\0').update(requestId).digest();
  digest[14] = (digest[14]! & 0x0f) | 0x80; // version 8
  digest[16] = (digest[16]! & 0x3f) | 0x80; // RFC 9562 variant
  const hex = digest.toString('hex', 8, 24);
  return {
    tag: digest.toString('hex', 0, 8),
    sessionId: `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`,
  };
}

export interface IdempotencyRecord {
  method: string;
  expiresAtMs: number;
  result: unknown;
}

/** The stored result of this request, if it already ran (any other method's record is a misuse). */
export async function previousResult(
  mt: MetaTxn,
  clientId: string,
  requestId: string,
  method: string,
): Promise<{ result: unknown } | undefined> {
  const value = await mt.tx.get(idempotencyKey(clientId, requestId));
  if (value === undefined) return undefined;
  const record = unpackValue(value) as IdempotencyRecord;
  if (record.method !== method) {
    throw new ThreeFsError(
      'INVALID_ARGUMENT',
      `request id ${requestId} was already used for ${record.method}, not ${method}`,
    );
  }
  return { result: record.result };
}

export function recordResult(
  mt: MetaTxn,
  clientId: string,
  requestId: string,
  method: string,
  result: unknown,
  ttlMs: number,
): void {
  const expiresAtMs = mt.now + ttlMs;
  mt.tx.set(idempotencyKey(clientId, requestId), packValue({ method, expiresAtMs, result }));
  mt.tx.set(
    idempotencyExpiryKey(expiresAtMs, clientId, requestId),
    packValue([clientId, requestId]),
  );
}

/** Deletes up to `limit` expired records; returns how many. */
export async function expireRecords(
  tx: Transaction,
  nowMs: number,
  limit: number,
): Promise<number> {
  const { begin } = idempotencyExpiryRange();
  const end = idempotencyExpiryKey(nowMs, '', '');
  const rows = await tx.getRange(begin, end, { limit });
  for (const row of rows) {
    const [clientId, requestId] = unpackValue(row.value) as [string, string];
    tx.clear(idempotencyKey(clientId, requestId));
    tx.clear(row.key);
  }
  return rows.length;
}
