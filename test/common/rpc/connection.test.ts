// Connection lifecycle: handshake refusals, reconnect after a server restart, graceful close.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ThreeFsError } from '../../../daemons/common/errors.js';
import { decodeErrorBody } from '../../../daemons/common/rpc/error-body.js';
import { FrameKind } from '../../../daemons/common/rpc/frame.js';
import { CoreService } from '../../../daemons/common/rpc/index.js';
import {
  handshakeFrame,
  newClient,
  rawConnect,
  startServer,
  TestService,
  waitFor,
} from './helpers.js';

const refused = (pattern: RegExp) => (err: unknown) =>
  err instanceof ThreeFsError && err.code === 'HANDSHAKE_REFUSED' && pattern.test(err.message);

describe('handshake', () => {
  it('refuses a client of another cluster with a message naming both ids', async () => {
    const fixture = await startServer();
    const client = newClient(fixture.server.address, { clusterId: 'other' });
    try {
      await assert.rejects(
        client.call(CoreService.methods.echo, {}),
        refused(/cluster id mismatch: server is 'test-cluster', client sent 'other'/),
      );
      assert.ok(
        fixture.logs.lines.some((l) => /handshake refused/.test(String(l.msg))),
        'one log line',
      );
    } finally {
      await client.close();
      await fixture.close();
    }
  });

  it('requires the token when the cluster has one, and accepts the right one', async () => {
    const fixture = await startServer({ token: 's3cret' });
    const none = newClient(fixture.server.address);
    const wrong = newClient(fixture.server.address, { token: 'guess' });
    const right = newClient(fixture.server.address, { token: 's3cret' });
    try {
      await assert.rejects(
        none.call(CoreService.methods.echo, {}),
        refused(/requires a token and the client sent none/),
      );
      await assert.rejects(wrong.call(CoreService.methods.echo, {}), refused(/token mismatch/));
      assert.equal(
        (await right.call(CoreService.methods.echo, { message: 'in' })).body.message,
        'in',
      );
    } finally {
      await Promise.all([none.close(), wrong.close(), right.close()]);
      await fixture.close();
    }
  });

  it('refuses a peer speaking another protocol version, then closes', async () => {
    const fixture = await startServer();
    try {
      const peer = await rawConnect(fixture.server.address);
      peer.socket.write(handshakeFrame(undefined, 2));
      const { frames } = await peer.closed;
      assert.equal(frames.length, 1);
      const frame = frames[0];
      assert.ok(frame);
      assert.equal(frame.header.kind, FrameKind.Error);
      const err = decodeErrorBody(frame.body);
      assert.equal(err.code, 'HANDSHAKE_REFUSED');
      assert.match(err.message, /protocol version mismatch: this peer speaks 1, the other sent 2/);
    } finally {
      await fixture.close();
    }
  });

  it('closes a connection that never handshakes', async () => {
    const fixture = await startServer({ handshakeTimeoutMs: 100 });
    try {
      const peer = await rawConnect(fixture.server.address);
      await peer.closed;
      assert.ok(fixture.logs.lines.some((l) => /no handshake in time/.test(String(l.msg))));
    } finally {
      await fixture.close();
    }
  });
});

describe('reconnect and close', () => {
  it('fails calls with UNAVAILABLE while the server is down and reconnects when it is back on the same port', async () => {
    const first = await startServer();
    const address = first.server.address;
    const port = Number(address.split(':')[1]);
    const client = newClient(address, { backoff: { initialMs: 20, maxMs: 200 } });
    try {
      assert.equal(
        (await client.call(CoreService.methods.echo, { message: '1' })).body.message,
        '1',
      );
      await first.close();
      await waitFor(() => !client.isConnected, 2000, 'client to notice');
      await assert.rejects(
        client.call(CoreService.methods.echo, {}),
        (err: unknown) =>
          err instanceof ThreeFsError && err.code === 'UNAVAILABLE' && err.retryable,
      );
      const second = await startServer({ port });
      try {
        // Bounded retry loop: the backoff delay is at most 200 ms.
        let reply: string | undefined;
        for (let attempt = 0; attempt < 20 && reply === undefined; attempt++) {
          try {
            reply = (await client.call(CoreService.methods.echo, { message: '2' })).body.message;
          } catch (err) {
            assert.equal((err as ThreeFsError).code, 'UNAVAILABLE');
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        }
        assert.equal(reply, '2');
        assert.equal(second.server.connectionCount, 1);
      } finally {
        await client.close();
        await second.close();
      }
    } finally {
      await client.close();
    }
  });

  it('closes gracefully: running calls finish, then connections close', async () => {
    const fixture = await startServer();
    const client = newClient(fixture.server.address);
    try {
      const slow = client.call(TestService.methods.sleep, { ms: 150, tag: 9 });
      await waitFor(() => fixture.server.peakConcurrency === 1, 2000, 'call running');
      const closed = fixture.server.close(2000);
      assert.equal((await slow).body.tag, 9, 'the running call still got its reply');
      await closed;
      await waitFor(() => !client.isConnected, 2000, 'client sees the close');
    } finally {
      await client.close();
    }
  });
});
