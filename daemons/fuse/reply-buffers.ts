// Reusable memory for read replies. The kernel copies a reply out of the Buffer during replyBuf,
// so a Buffer is free again as soon as its reply went out. Allocating one per read instead made
// every large read a new ArrayBuffer, which V8 counts as external memory and answers with full
// mark-compacts (one per 64 MiB read). Small reads come from Node's own slab and are not kept.
const MIN_POOLED = 64 * 1024;

export class ReplyBuffers {
  /** Free Buffers by capacity (powers of two from MIN_POOLED). */
  private readonly free = new Map<number, Buffer[]>();

  /** `maxPerSize` bounds the free Buffers kept per capacity; more are left to the GC. */
  constructor(private readonly maxPerSize = 64) {}

  /** A Buffer of at least `length` bytes; hand it back with give() once its reply is sent. */
  take(length: number): Buffer {
    if (length < MIN_POOLED) return Buffer.allocUnsafe(length);
    const capacity = 2 ** Math.ceil(Math.log2(length));
    return this.free.get(capacity)?.pop() ?? Buffer.allocUnsafeSlow(capacity);
  }

  /** Returns a Buffer from take(); it must not be used afterwards. */
  give(buffer: Buffer): void {
    const capacity = buffer.length;
    if (capacity < MIN_POOLED || capacity !== 2 ** Math.round(Math.log2(capacity))) return;
    let list = this.free.get(capacity);
    if (list === undefined) this.free.set(capacity, (list = []));
    if (list.length < this.maxPerSize) list.push(buffer);
  }
}
