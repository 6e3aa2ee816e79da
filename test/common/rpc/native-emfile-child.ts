// Run by native-transport.test.ts under a low fd limit: a native RPC server with its fd table all
// but full, that prints its address and serves until its stdin closes.
import { closeSync, openSync } from 'node:fs';
import { CoreService, coreHandlers, RpcServer } from '../../../daemons/common/rpc/index.js';
import { createLogger } from '../../../daemons/common/log.js';

const server = new RpcServer({
  clusterId: 'test-cluster',
  transport: 'native',
  log: createLogger({ role: 'emfile', level: 'error' }),
});
server.register(CoreService, coreHandlers);
await server.listen();
// Use up the fd table (the parent set a low limit), leaving room for just a few connections.
const hoard: number[] = [];
for (;;) {
  try {
    hoard.push(openSync('/dev/null', 'r'));
  } catch {
    break;
  }
}
for (const fd of hoard.splice(0, 4)) closeSync(fd);
console.log(server.address);
process.stdin.resume();
process.stdin.on('end', () => void server.close(100).then(() => process.exit(0)));
