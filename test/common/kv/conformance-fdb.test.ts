// The conformance suite on FoundationDB. It runs only when FDB_CLUSTER_FILE names a cluster file
// (and the FoundationDB client library plus the `foundationdb` package are installed); otherwise
// it is reported as skipped with the reason. CI has no FoundationDB server, so CI skips it.
import { existsSync } from 'node:fs';
import { kvConfig } from '../../../daemons/common/kv/config.js';
import { conformanceSuite } from './conformance.js';

const clusterFile = process.env.FDB_CLUSTER_FILE ?? '';

function skipReason(): string | false {
  if (clusterFile === '') return 'FDB_CLUSTER_FILE is not set (no FoundationDB cluster to test)';
  if (!existsSync(clusterFile)) return `FDB_CLUSTER_FILE=${clusterFile} does not exist`;
  return false;
}

conformanceSuite({
  name: 'FoundationDB',
  skip: skipReason(),
  config: (input) => kvConfig({ ...input, engine: 'fdb', fdbClusterFile: clusterFile }),
});
