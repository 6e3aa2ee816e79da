// Reconnect delays: exponential from `initialMs` to `maxMs` with full jitter in the upper half, so
// a crowd of clients that lost the same server does not reconnect in lockstep.
import { ThreeFsError } from '../errors.js';

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 50, maxMs: 5000 };

/** Delay before reconnect attempt number `failures` (1 = after the first failure); 0 for none. */
export function backoffDelay(
  policy: BackoffPolicy,
  failures: number,
  random = Math.random,
): number {
  if (!(policy.initialMs > 0) || policy.maxMs < policy.initialMs) {
    throw new ThreeFsError('INTERNAL', `bad backoff policy ${JSON.stringify(policy)}`);
  }
  if (failures <= 0) return 0;
  const ceiling = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(failures - 1, 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
