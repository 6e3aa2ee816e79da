// Write sessions (brief §5.4): a write open records (inode, session id) → owning client, so meta
// knows the file's length is still moving and GC must not remove its chunks. Read opens record
// nothing. Sessions of clients that mgmtd no longer knows are closed by the session pruner.
import { randomUUID } from 'node:crypto';
import { ThreeFsError } from '../common/errors.js';
import { packValue, unpackValue } from './inode.js';
import { sessionKey, sessionRange } from './keys.js';
import type { MetaTxn } from './meta-txn.js';

export interface SessionRecord {
  clientId: string;
  openedAtMs: number;
}

export function newSessionId(): string {
  return randomUUID();
}

export function openSession(
  mt: MetaTxn,
  inodeId: number,
  clientId: string,
  sessionId: string = newSessionId(),
): string {
  mt.tx.set(sessionKey(inodeId, sessionId), packValue({ clientId, openedAtMs: mt.now }));
  return sessionId;
}

/** Whether this write session is open (conflict-tracked). */
export async function hasSession(
  mt: MetaTxn,
  inodeId: number,
  sessionId: string,
): Promise<boolean> {
  return (await mt.tx.get(sessionKey(inodeId, sessionId))) !== undefined;
}

export function decodeSession(value: Uint8Array): SessionRecord {
  const record = unpackValue(value) as Partial<SessionRecord> | null;
  if (typeof record?.clientId !== 'string' || typeof record.openedAtMs !== 'number') {
    throw new ThreeFsError('INTERNAL', 'malformed write session record');
  }
  return record as SessionRecord;
}

/** Whether any write session is open on the inode (conflict-tracked: a new open retries us). */
export async function hasOpenSessions(mt: MetaTxn, inodeId: number): Promise<boolean> {
  const { begin, end } = sessionRange(inodeId);
  return (await mt.tx.getRange(begin, end, { limit: 1 })).length > 0;
}
