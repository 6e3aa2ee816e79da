// The native transport's own hazards: sockets that reset or stop reading mid-payload, closes with
// writes in flight, recycled payload memory, and a clean shutdown (no fds, no handles, no extra
// threads). The rest of the RPC suite runs on this transport by default.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { retire } from '../../../daemons/common/pooled-views.js';
import { CoreService, defineService, type RpcClient } from '../../../daemons/common/rpc/index.js';
import { nativeTransport } from '../../../daemons/common/rpc/native-transport.js';
import {
  handshakeFrame,
  newClient,
  rawConnect,
  requestFrame,
  startServer,
  TestService,
  type TestServer,
  waitFor,
} from './helpers.js';

const MiB = 1024 * 1024;
const here = path.dirname(fileURLToPath(import.meta.url));

describe('native transport', () => {
  let fixture: TestServer;
  let bystander: RpcClient;
  before(async () => {
    fixture = await startServer({ transport: 'native', maxFrameBytes: 8 * MiB });
    bystander = newClient(fixture.server.address, { transport: 'native' });
    await bystander.call(CoreService.methods.echo, {});
  });
  after(async () => {
    await bystander.close();
    await fixture.close();
  });

  async function onlyBystanderLeft(): Promise<void> {
    await waitFor(() => fixture.server.connectionCount === 1, 5000, 'the server to drop the peer');
    const reply = await bystander.call(CoreService.methods.echo, { message: 'still here' });
    assert.equal(reply.body.message, 'still here');
  }

  it('a peer resetting in the middle of a 1 MiB payload is dropped; others carry on', async () => {
    const peer = await rawConnect(fixture.server.address);
    const request = requestFrame(CoreService.id, 1, 1, {}, Buffer.alloc(MiB, 7));
    peer.socket.write(handshakeFrame());
    peer.socket.write(request.subarray(0, request.length / 2));
    await waitFor(() => fixture.server.connectionCount === 2, 5000, 'the peer to be accepted');
    await new Promise((resolve) => setTimeout(resolve, 20)); // let half the payload arrive
    peer.socket.resetAndDestroy();
    await onlyBystanderLeft();
  });

  it('a peer that stops reading while 1 MiB replies queue up, then vanishes, is dropped', async () => {
    const peer = await rawConnect(fixture.server.address);
    peer.socket.pause(); // read nothing: the server's replies fill the socket and wait
    peer.socket.write(handshakeFrame());
    for (let id = 1; id <= 24; id++) {
      peer.socket.write(requestFrame(CoreService.id, 1, id, {}, Buffer.alloc(MiB, id)));
    }
    await waitFor(() => fixture.server.connectionCount === 2, 5000, 'the peer to be accepted');
    await new Promise((resolve) => setTimeout(resolve, 200));
    peer.socket.resetAndDestroy();
    await onlyBystanderLeft();
  });

  it('a client closing with 1 MiB calls in flight fails them as UNAVAILABLE', async () => {
    const client = newClient(fixture.server.address, { transport: 'native' });
    await client.call(CoreService.methods.echo, {});
    const payload = Buffer.alloc(MiB, 3);
    const calls = Array.from({ length: 16 }, () =>
      client.call(CoreService.methods.echo, {}, { payload }).then(
        () => 'ok',
        (err: { code?: string }) => err.code,
      ),
    );
    await client.close();
    const outcomes = await Promise.all(calls);
    assert.ok(
      outcomes.every((o) => o === 'ok' || o === 'UNAVAILABLE'),
      `outcomes: ${outcomes.join(',')}`,
    );
    await onlyBystanderLeft();
  });

  it('a refused connect fails the call as UNAVAILABLE naming the address', async () => {
    const listener = await startServer({ transport: 'native' });
    const address = listener.server.address;
    await listener.close();
    const client = newClient(address, { transport: 'native' });
    await assert.rejects(client.call(CoreService.methods.echo, {}), (err: Error) => {
      assert.match(err.message, /ECONNREFUSED/);
      assert.equal((err as { code?: string }).code, 'UNAVAILABLE');
      return true;
    });
    await client.close();
  });

  it('holds no socket for connections that are gone', async () => {
    // The fixture's listener, its bystander connection (both ends) and nothing else.
    await waitFor(() => nativeTransport().openSockets === 3, 5000, 'closed sockets to be freed');
  });

  it('out of fds: the listener backs off instead of spinning, and serves again afterwards', async () => {
    const child = spawn(
      'sh',
      [
        '-c',
        `ulimit -n 256 && exec "${process.execPath}" "${path.join(here, 'native-emfile-child.js')}"`,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const cpuTicks = () => {
      const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]?.split(' ');
      return Number(fields?.[11]) + Number(fields?.[12]); // utime + stime
    };
    const raw: Socket[] = [];
    try {
      const address = await new Promise<string>((resolve, reject) => {
        child.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString().trim()));
        child.once('exit', (code) => reject(new Error(`server child exited with ${code}`)));
      });
      const [host, port] = [
        address.slice(0, address.lastIndexOf(':')),
        Number(address.split(':')[1]),
      ];
      for (let i = 0; i < 60; i++) {
        const socket = connect({ host, port });
        socket.on('error', () => undefined);
        raw.push(socket);
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
      const before = cpuTicks();
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const busy = cpuTicks() - before; // clock ticks, 100 a second
      assert.ok(busy < 50, `the server used ${busy} ticks in 1 s while out of fds`);
      for (const socket of raw.splice(0)) socket.destroy();
      const client = newClient(address, { transport: 'native', connectTimeoutMs: 2000 });
      let reply;
      for (let attempt = 0; attempt < 50 && reply === undefined; attempt++) {
        reply = await client
          .call(CoreService.methods.echo, { message: 'back' })
          .catch(
            () => new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 100)),
          );
      }
      assert.equal(reply?.body.message, 'back');
      await client.close();
    } finally {
      for (const socket of raw) socket.destroy();
      child.stdin.end();
      await new Promise((resolve) => child.once('exit', resolve));
    }
  });

  it('a retired payload block still being sent is not reused until the send is done', async () => {
    // The server echoes a 12 MiB payload back to a peer that is not reading, then its owner
    // retires the payload (pooled-views.ts) while the reply still sits in the send queue. Another
    // 12 MiB frame then arrives: without the send's hold on the block it would land in it, and the
    // stalled reply would carry its bytes.
    const RetireService = defineService({
      id: 101,
      name: 'Retire',
      methods: { echo: { id: 1, request: z.object({}), response: z.object({}) } },
    });
    const server = await startServer({ transport: 'native', maxFrameBytes: 16 * MiB });
    let retired = false;
    server.server.register(RetireService, {
      echo: (_req, ctx) => {
        setTimeout(() => {
          retire(ctx.payload);
          retired = true;
        }, 50);
        return { body: {}, payload: ctx.payload };
      },
    });
    const other = newClient(server.server.address, { transport: 'native' });
    const peer = await rawConnect(server.server.address);
    try {
      let aa = 0;
      let bb = 0;
      let received = 0;
      peer.socket.removeAllListeners('data'); // count bytes here: the helper's decoder caps frames at 1 MiB
      peer.socket.on('data', (chunk: Buffer) => {
        received += chunk.length;
        for (const byte of chunk) {
          if (byte === 0xaa) aa++;
          else if (byte === 0xbb) bb++;
        }
      });
      peer.socket.pause();
      peer.socket.write(handshakeFrame());
      peer.socket.write(requestFrame(RetireService.id, 1, 1, {}, Buffer.alloc(12 * MiB, 0xaa)));
      await waitFor(() => retired, 5000, 'the handler to retire its payload');
      const reply = await other.call(
        TestService.methods.checksum,
        {},
        { payload: Buffer.alloc(12 * MiB, 0xbb) },
      );
      assert.equal(reply.payload?.length, 12 * MiB);
      peer.socket.resume();
      await waitFor(() => aa >= 12 * MiB, 10_000, 'the stalled reply to arrive');
      assert.equal(bb, 0, `the stalled reply carried ${bb} bytes of the later frame`);
      assert.ok(received >= 12 * MiB);
    } finally {
      peer.socket.destroy();
      await other.close();
      await server.close();
    }
  });

  it('closes cleanly (also when stopped with calls in flight): same fds and threads, kept payloads intact, blocks returned', () => {
    const child = spawnSync(
      process.execPath,
      ['--expose-gc', path.join(here, 'native-lifecycle-child.js')],
      { encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(child.status, 0, `child failed: ${child.stderr}`);
    const report = JSON.parse(child.stdout.trim().split('\n').pop() ?? '{}') as {
      fdsBefore: number;
      fdsAfter: number;
      threadsBefore: number;
      threadsAfter: number;
      openSockets: number;
      keptIntact: boolean;
      cutOutcome: string;
      pool: { totalBytes: number; inUseBytes: number; badReleases: number };
    };
    assert.equal(report.fdsAfter, report.fdsBefore, 'no fd left open');
    assert.equal(report.threadsAfter, report.threadsBefore, 'no thread left running');
    assert.equal(report.openSockets, 0);
    assert.ok(report.keptIntact, 'payload Buffers the caller kept never changed');
    assert.equal(report.pool.badReleases, 0);
    assert.ok(report.pool.totalBytes > 0, 'payloads came from the pool');
    assert.equal(report.pool.inUseBytes, 0, 'every collected payload returned its block');
    assert.equal(report.cutOutcome, 'UNAVAILABLE', 'stopping the transport fails calls in flight');
  });
});
