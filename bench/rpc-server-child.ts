// The server half of the RPC benchmark, run in its own process so client and server do not share
// one event loop (as in a real cluster). Reports its addresses to the parent over IPC.
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger } from '../daemons/common/log.js';
import { CoreService, coreHandlers, RpcServer } from '../daemons/common/rpc/index.js';

const unixPath = path.join(mkdtempSync(path.join(tmpdir(), 'threefs-bench-')), 'rpc.sock');
const server = new RpcServer({
  clusterId: 'bench',
  unixPath,
  maxConcurrentPerConnection: 128,
  log: createLogger({ role: 'bench-server', level: 'warn' }),
});
server.register(CoreService, coreHandlers);
await server.listen();
// A bare Node echo socket (no framing, no CRC): the ceiling for any RPC layer on Node streams.
const raw = createServer({ noDelay: true }, (socket) => {
  socket.on('error', () => undefined);
  socket.pipe(socket);
});
await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
const rawAddress = raw.address();
if (rawAddress === null || typeof rawAddress === 'string') throw new Error('raw echo has no port');
process.send?.({ tcp: server.address, unix: server.unixAddress, rawPort: rawAddress.port });
process.on('disconnect', () => {
  void server.close(100).then(() => process.exit(0));
});
