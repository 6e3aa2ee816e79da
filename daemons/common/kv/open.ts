// Opens the KV store a config asks for. The FoundationDB engine is imported only here and only
// when selected, so nothing else in the process depends on the FDB client library being present.
import type { KvConfig } from './config.js';
import { LmdbKvStore } from './lmdb-store.js';
import type { KvStore } from './types.js';

export async function openKvStore(config: KvConfig): Promise<KvStore> {
  switch (config.engine) {
    case 'embedded':
      return LmdbKvStore.open(config);
    case 'fdb': {
      const { FdbKvStore } = await import('./fdb.js');
      return FdbKvStore.open(config);
    }
  }
}
