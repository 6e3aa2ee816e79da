// The file system's first transaction: the root directory, created once by whichever meta server
// starts first (the transaction makes concurrent starts agree on one root).
import type { KvStore } from '../common/kv/index.js';
import type { Layout } from '../common/layout.js';
import { MetaTxn } from './meta-txn.js';
import { ROOT_ID } from './keys.js';

export async function ensureRoot(
  kv: KvStore,
  layout: Omit<Layout, 'chains' | 'chainTableVersion'>,
): Promise<boolean> {
  return kv.run(async (tx) => {
    const mt = new MetaTxn(tx, Date.now());
    if (await mt.inode(ROOT_ID)) return false;
    mt.putInode({
      id: ROOT_ID,
      type: 'dir',
      mode: 0o755,
      uid: 0,
      gid: 0,
      nlink: 1,
      atimeMs: mt.now,
      mtimeMs: mt.now,
      ctimeMs: mt.now,
      length: 0,
      truncateVer: 0,
      dynStripe: 0,
      parent: ROOT_ID,
      name: '',
      layout: { ...layout, chainTableVersion: 0, chains: { kind: 'empty' } },
      quotaRoots: [],
    });
    return true;
  });
}
