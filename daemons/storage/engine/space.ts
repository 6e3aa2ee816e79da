// Disk space as mgmtd sees it (brief §4.3): the file system's own numbers, plus the engine's
// preallocated blocks that hold no chunk (the file system counts them used; the engine can fill
// them). Thresholds: low space at 0.96 used, new chunks rejected at 0.98.
import type { SpaceInfo } from '../chunk-store.js';

export interface SpaceThresholds {
  lowSpace: number;
  rejectNewChunks: number;
}

export const defaultThresholds: SpaceThresholds = { lowSpace: 0.96, rejectNewChunks: 0.98 };

export function spaceInfo(
  fs: { capacityBytes: number; availableBytes: number },
  freePreallocatedBytes: number,
  thresholds: SpaceThresholds,
): SpaceInfo {
  const capacityBytes = fs.capacityBytes;
  const freeBytes = Math.min(capacityBytes, fs.availableBytes + freePreallocatedBytes);
  const usedBytes = capacityBytes - freeBytes;
  const ratio = capacityBytes > 0 ? usedBytes / capacityBytes : 1;
  return {
    capacityBytes,
    freeBytes,
    usedBytes,
    lowSpace: ratio > thresholds.lowSpace,
    rejectNewChunks: ratio > thresholds.rejectNewChunks,
  };
}
