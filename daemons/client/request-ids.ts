// Request ids that sort in the order a client issued them. Meta keys each idempotency record by
// (client id, request id): with random ids every create and remove wrote a record at a random
// place in the B-tree, one more page per LMDB commit; time-ordered ids put one client's records
// side by side (and near the end), so a commit touches few pages. Unique per client: a 48-bit
// millisecond clock, a 32-bit counter for calls within one millisecond (and a clock that steps
// back), and 32 random bits so two clients sharing an id still differ.
import { randomBytes } from 'node:crypto';

const MAX_COUNTER = 0xffff_ffff;

export class RequestIds {
  private lastMs = 0;
  private counter = 0;
  private readonly salt = randomBytes(4).toString('hex');

  constructor(private readonly now: () => number = Date.now) {}

  /** `tttttttttttt-cccccccc-ssssssss`: fixed-width hex, so byte order is issue order. */
  next(): string {
    const ms = Math.max(this.now(), this.lastMs);
    if (ms === this.lastMs) {
      this.counter++;
      if (this.counter > MAX_COUNTER)
        throw new Error('more than 2^32 request ids in one millisecond');
    } else {
      this.lastMs = ms;
      this.counter = 0;
    }
    const time = ms.toString(16).padStart(12, '0');
    const count = this.counter.toString(16).padStart(8, '0');
    return `${time}-${count}-${this.salt}`;
  }
}
