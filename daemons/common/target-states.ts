// Target states shared by mgmtd, storage, clients and the operator (brief §2.4).
import { z } from 'zod';

/** Public state: decided by mgmtd, stored with the chain, shipped to everyone in routing info. */
export const PublicTargetState = z.enum(['SERVING', 'LASTSRV', 'SYNCING', 'WAITING', 'OFFLINE']);
export type PublicTargetState = z.infer<typeof PublicTargetState>;

/** Local state: reported by the storage service in heartbeats; kept only in mgmtd's memory. */
export const LocalTargetState = z.enum(['UPTODATE', 'ONLINE', 'OFFLINE']);
export type LocalTargetState = z.infer<typeof LocalTargetState>;

/** Which public states may serve reads and accept writes. */
export const publicStateServes: Record<PublicTargetState, { read: boolean; write: boolean }> = {
  SERVING: { read: true, write: true },
  SYNCING: { read: false, write: true },
  WAITING: { read: false, write: false },
  LASTSRV: { read: false, write: false },
  OFFLINE: { read: false, write: false },
};
