// A bound on bytes in use across many users, e.g. write-behind data in flight across every file
// of a mount: acquire(n) waits (first come, first served) until n more bytes fit, release(n) gives
// them back. A request larger than the whole budget is let through alone, so it cannot wait
// forever. Waiters are bounded too.
import { ThreeFsError } from './errors.js';

export class ByteBudget {
  private used = 0;
  private readonly waiters: Array<{ bytes: number; grant: () => void }> = [];

  constructor(
    readonly limit: number,
    private readonly maxWaiters = 65_536,
  ) {
    if (!Number.isSafeInteger(limit) || limit <= 0)
      throw new ThreeFsError('INVALID_ARGUMENT', `byte budget ${limit} is not a positive integer`);
  }

  get inUse(): number {
    return this.used;
  }

  acquire(bytes: number): Promise<void> {
    if (!Number.isSafeInteger(bytes) || bytes < 0)
      return Promise.reject(new ThreeFsError('INVALID_ARGUMENT', `cannot acquire ${bytes} bytes`));
    if (this.waiters.length === 0 && this.fits(bytes)) {
      this.used += bytes;
      return Promise.resolve();
    }
    if (this.waiters.length >= this.maxWaiters)
      return Promise.reject(
        new ThreeFsError('RESOURCE_EXHAUSTED', `${this.maxWaiters} waiters for the byte budget`),
      );
    return new Promise((resolve) => this.waiters.push({ bytes, grant: resolve }));
  }

  release(bytes: number): void {
    this.used -= bytes;
    if (this.used < 0) throw new ThreeFsError('INTERNAL', 'byte budget released more than held');
    while (this.waiters.length > 0 && this.fits(this.waiters[0]!.bytes)) {
      const next = this.waiters.shift()!;
      this.used += next.bytes;
      next.grant();
    }
  }

  private fits(bytes: number): boolean {
    return this.used + bytes <= this.limit || this.used === 0;
  }
}
