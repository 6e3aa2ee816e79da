// Reusable memory for read replies. The kernel copies a reply out of the Buffer during replyBuf,
// so a Buffer is free again as soon as its reply went out. Allocating one per read instead made
// every large read a new ArrayBuffer, which V8 counts as external memory and answers with full
// mark-compacts (one per 64 MiB read). Small reads come from Node's own slab and are not kept.
//
// With a shared region, replies come from fixed slots of it first: storage servers on this host
// read straight into a slot (region-reads.ts), so the bytes reach the kernel's reply without ever
// passing through a socket or a copy here. Past the free slots, replies use ordinary memory.
import type { SharedRegion } from '../client/region-reads.js';

const MIN_POOLED = 64 * 1024;

/** Memory for one reply; `shared` says where it lies in the shared region, if it does. */
export interface ReplyMemory {
  buffer: Buffer;
  shared?: { region: SharedRegion; offset: number };
}

export interface SharedSlots {
  region: SharedRegion;
  /** The whole region, mapped here. */
  data: Buffer;
  slotBytes: number;
}

export class ReplyBuffers {
  /** Free Buffers by capacity (powers of two from MIN_POOLED). */
  private readonly free = new Map<number, Buffer[]>();
  private readonly freeSlots: number[] = [];

  /** `maxPerSize` bounds the free Buffers kept per capacity; more are left to the GC. */
  constructor(
    private readonly maxPerSize = 64,
    private readonly slots?: SharedSlots,
  ) {
    const count = slots ? Math.floor(slots.data.length / slots.slotBytes) : 0;
    for (let i = count - 1; i >= 0; i--) this.freeSlots.push(i);
  }

  /** Memory of at least `length` bytes; hand it back with give() once its reply is sent. */
  take(length: number): ReplyMemory {
    const slots = this.slots;
    if (slots && length <= slots.slotBytes && this.freeSlots.length > 0) {
      const offset = this.freeSlots.pop()! * slots.slotBytes;
      return {
        buffer: slots.data.subarray(offset, offset + slots.slotBytes),
        shared: { region: slots.region, offset },
      };
    }
    if (length < MIN_POOLED) return { buffer: Buffer.allocUnsafe(length) };
    const capacity = 2 ** Math.ceil(Math.log2(length));
    return { buffer: this.free.get(capacity)?.pop() ?? Buffer.allocUnsafeSlow(capacity) };
  }

  /** Returns memory from take(); it must not be used afterwards. */
  give(memory: ReplyMemory): void {
    if (memory.shared && this.slots) {
      this.freeSlots.push(memory.shared.offset / this.slots.slotBytes);
      return;
    }
    const buffer = memory.buffer;
    const capacity = buffer.length;
    if (capacity < MIN_POOLED || capacity !== 2 ** Math.round(Math.log2(capacity))) return;
    let list = this.free.get(capacity);
    if (list === undefined) this.free.set(capacity, (list = []));
    if (list.length < this.maxPerSize) list.push(buffer);
  }
}
