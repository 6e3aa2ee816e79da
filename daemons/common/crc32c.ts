// CRC32C over whole buffers, computed in native code (SSE4.2 when the CPU has it). Chainable:
// crc32c(b, crc32c(a)) === crc32c(concat(a, b)), so frames and chunks never need concatenating.
import { loadAddon } from './native.js';

interface Crc32cAddon {
  crc32c(data: Uint8Array | readonly Uint8Array[], seed?: number): number;
  crc32cPortable(data: Uint8Array | readonly Uint8Array[], seed?: number): number;
  crc32cHardware(data: Uint8Array | readonly Uint8Array[], seed?: number): number;
  crc32cGranules(data: Uint8Array, granule: number): Uint32Array;
  hardwareAvailable: boolean;
}

const addon = loadAddon<Crc32cAddon>('threefs_crc32c');

/** CRC32C of one buffer, or of several buffers as if concatenated; `seed` continues a prior CRC. */
export const crc32c: (data: Uint8Array | readonly Uint8Array[], seed?: number) => number =
  addon.crc32c;

/** The CRC32C of each `granule`-byte piece of `data` (the last may be shorter), as chunks keep them. */
export const crc32cGranules: (data: Uint8Array, granule: number) => Uint32Array =
  addon.crc32cGranules;

/** The table-driven implementation, for tests and CPUs without SSE4.2. */
export const crc32cPortable = addon.crc32cPortable;

/** The SSE4.2 implementation; throws on a CPU without it. */
export const crc32cHardware = addon.crc32cHardware;

export const crc32cHardwareAvailable: boolean = addon.hardwareAvailable;
