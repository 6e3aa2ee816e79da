// The per-disk chunk engine (issue 4): openChunkEngine() gives the storage service a ChunkStore.
import type { Logger } from '../../common/log.js';
import { ChunkEngine } from './chunk-engine.js';
import type { ChunkEngineOptions } from './config.js';

export { ChunkEngine, type ChunkEngineStatus } from './chunk-engine.js';
export { chunkEngineOptionsSchema, type ChunkEngineOptions } from './config.js';

/** Opens (creating if needed) the chunk engine of one disk directory. */
export function openChunkEngine(options: ChunkEngineOptions, log?: Logger): Promise<ChunkEngine> {
  return ChunkEngine.open(options, log);
}
