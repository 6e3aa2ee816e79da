// Idempotent remove and rename (brief §5.5, IDEM keys): the result of a mutating request is stored
// under (client id, request id) in the transaction that performs it. A retry after a lost reply
// finds the record and gets the same answer instead of ENOENT. Records expire after a TTL; an
// expiry index (IDEX, by time) lets the cleaner find them without scanning every record.
import { ThreeFsError } from '../common/errors.js';
import type { Transaction } from '../common/kv/index.js';
import { packValue, unpackValue } from './inode.js';
import { idempotencyExpiryKey, idempotencyExpiryRange, idempotencyKey } from './keys.js';
import type { MetaTxn } from './meta-txn.js';

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
