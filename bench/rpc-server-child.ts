// The server half of the RPC benchmark, run in its own process so client and server do not share
// one event loop (as in a real cluster). Reports its addresses to the parent over IPC.
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger } from '../daemons/common/log.js';
import { CoreService, coreHandlers, RpcServer } from '../daemons/common/rpc/index.js';
import type { RpcTransportKind } from '../daemons/common/rpc/frame-socket.js';
import { BulkService, bulkHandlers } from './bulk-service.js';

const dir = mkdtempSync(path.join(tmpdir(), 'threefs-bench-'));

/** One server per transport, so the benchmark can print both in the same run. */
async function serve(transport: RpcTransportKind): Promise<RpcServer> {
  const server = new RpcServer({
    clusterId: 'bench',
    unixPath: path.join(dir, `${transport}.sock`),
    maxConcurrentPerConnection: 128,
    transport,
    log: createLogger({ role: 'bench-server', level: 'warn' }),
  });
  server.register(CoreService, coreHandlers);
  server.register(BulkService, bulkHandlers);
  await server.listen();
  return server;
}
const servers = { native: await serve('native'), node: await serve('node') };
// A bare Node echo socket (no framing, no CRC): the ceiling for any RPC layer on Node streams.
const raw = createServer({ noDelay: true }, (socket) => {
  socket.on('error', () => undefined);
  socket.pipe(socket);
});
await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
const rawAddress = raw.address();
if (rawAddress === null || typeof rawAddress === 'string') throw new Error('raw echo has no port');
process.send?.({
  native: { tcp: servers.native.address, unix: servers.native.unixAddress },
  node: { tcp: servers.node.address, unix: servers.node.unixAddress },
  rawPort: rawAddress.port,
});
process.on('disconnect', () => {
  void Promise.all([servers.native.close(100), servers.node.close(100)]).then(() =>
    process.exit(0),
  );
});
