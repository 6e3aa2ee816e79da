// Every kind of bad input gets an error reply or a closed connection plus a log line, and the
// server keeps answering other connections.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeErrorBody } from '../../../daemons/common/rpc/error-body.js';
import { FrameKind } from '../../../daemons/common/rpc/frame.js';
import { CoreService, type RpcClient } from '../../../daemons/common/rpc/index.js';
import {
  handshakeFrame,
  HEADER_BYTES,
  newClient,
  rawConnect,
  requestFrame,
  startServer,
  TestService,
  type TestServer,
} from './helpers.js';

describe('bad input', () => {
  let fixture: TestServer;
  let bystander: RpcClient;
  before(async () => {
    fixture = await startServer({ maxFrameBytes: 1024 * 1024 });
    bystander = newClient(fixture.server.address);
    await bystander.call(CoreService.methods.echo, {});
  });
  after(async () => {
    await bystander.close();
    await fixture.close();
  });

  /** The other connection, open all along, still gets answers. */
  async function bystanderStillServed(): Promise<void> {
    const reply = await bystander.call(CoreService.methods.echo, { message: 'still here' });
    assert.equal(reply.body.message, 'still here');
  }

  function protocolErrorLogged(pattern: RegExp): void {
    assert.ok(
      fixture.logs.lines.some((l) => l.level === 'warn' && pattern.test(String(l.msg))),
      `a warn line matching ${pattern}`,
    );
  }

  async function expectClosedWithError(
    bytes: Buffer,
    pattern: RegExp,
    handshake = true,
  ): Promise<void> {
    const peer = await rawConnect(fixture.server.address);
    if (handshake) peer.socket.write(handshakeFrame());
    peer.socket.write(bytes);
    const { frames } = await peer.closed;
    const errors = frames.filter(
      (f) => f.header.kind === FrameKind.Error && f.header.requestId === 0,
    );
    assert.equal(errors.length, 1, 'one connection-level error frame before the close');
    const err = decodeErrorBody((errors[0] as (typeof errors)[0]).body);
    assert.equal(err.code, 'PROTOCOL_ERROR');
    assert.match(err.message, pattern);
    protocolErrorLogged(pattern);
    await bystanderStillServed();
  }

  it('random bytes: closed with PROTOCOL_ERROR (bad magic)', async () => {
    await expectClosedWithError(
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.padEnd(64, 'x')),
      /bad frame magic/,
      false,
    );
  });

  it('a length over the limit: refused from the header, nothing allocated', async () => {
    const huge = requestFrame(CoreService.id, 1, 1, {}, Buffer.alloc(2 * 1024 * 1024));
    await expectClosedWithError(huge.subarray(0, HEADER_BYTES), /over the limit of 1048576/);
  });

  it('a bad data CRC: closed with PROTOCOL_ERROR', async () => {
    const frame = requestFrame(CoreService.id, 1, 1, { message: 'x' }, Buffer.alloc(100, 1));
    frame[frame.length - 1] = (frame[frame.length - 1] as number) ^ 0xff;
    await expectClosedWithError(frame, /data CRC32C/);
  });

  it('a request before the handshake: closed with PROTOCOL_ERROR', async () => {
    await expectClosedWithError(
      requestFrame(CoreService.id, 1, 1, {}),
      /expected a handshake frame first/,
      false,
    );
  });

  it('a truncated frame then close: logged, nothing else affected', async () => {
    const peer = await rawConnect(fixture.server.address);
    peer.socket.write(handshakeFrame());
    const frame = requestFrame(CoreService.id, 1, 1, { message: 'cut' }, Buffer.alloc(1000));
    peer.socket.end(frame.subarray(0, 500));
    await peer.closed;
    protocolErrorLogged(/connection ended inside a frame/);
    await bystanderStillServed();
  });

  it('an unknown service or method: UNIMPLEMENTED reply, the connection stays usable', async () => {
    const peer = await rawConnect(fixture.server.address);
    try {
      peer.socket.write(handshakeFrame());
      assert.equal((await peer.nextFrame()).header.kind, FrameKind.Handshake);
      peer.socket.write(requestFrame(999, 1, 1, {}));
      peer.socket.write(requestFrame(TestService.id, 77, 2, {}));
      peer.socket.write(requestFrame(CoreService.id, 1, 3, { message: 'after' }));
      const [a, b, c] = [await peer.nextFrame(), await peer.nextFrame(), await peer.nextFrame()];
      assert.equal(a.header.kind, FrameKind.Error);
      assert.equal(decodeErrorBody(a.body).code, 'UNIMPLEMENTED');
      assert.match(decodeErrorBody(a.body).message, /unknown service id 999/);
      assert.match(decodeErrorBody(b.body).message, /service Test \(id 100\) has no method id 77/);
      assert.equal(c.header.kind, FrameKind.Response);
      assert.equal(c.header.requestId, 3);
    } finally {
      peer.socket.destroy();
    }
    await bystanderStillServed();
  });

  it('a body failing validation: INVALID_ARGUMENT naming the field, the connection stays usable', async () => {
    const peer = await rawConnect(fixture.server.address);
    try {
      peer.socket.write(handshakeFrame());
      await peer.nextFrame();
      peer.socket.write(
        requestFrame(TestService.id, 4, 1, { values: [1, 2], limits: { max: -1 } }),
      );
      peer.socket.write(requestFrame(TestService.id, 4, 2, { values: [1, 2], limits: { max: 5 } }));
      const bad = await peer.nextFrame();
      const err = decodeErrorBody(bad.body);
      assert.equal(err.code, 'INVALID_ARGUMENT');
      assert.match(err.message, /request of Test\.sum failed validation: limits\.max:/);
      const good = await peer.nextFrame();
      assert.equal(good.header.kind, FrameKind.Response);
    } finally {
      peer.socket.destroy();
    }
    await bystanderStillServed();
  });

  it('a valid frame whose body is not MessagePack: INVALID_ARGUMENT', async () => {
    const peer = await rawConnect(fixture.server.address);
    try {
      peer.socket.write(handshakeFrame());
      await peer.nextFrame();
      const { encodeFrame } = await import('../../../daemons/common/rpc/frame.js');
      const [head] = encodeFrame(
        {
          kind: FrameKind.Request,
          serviceId: CoreService.id,
          methodId: 1,
          requestId: 5,
          timeoutMs: 0,
        },
        Buffer.from([0xc1, 0xc1, 0xc1]),
      );
      peer.socket.write(head);
      const reply = await peer.nextFrame();
      assert.equal(decodeErrorBody(reply.body).code, 'INVALID_ARGUMENT');
    } finally {
      peer.socket.destroy();
    }
    await bystanderStillServed();
  });

  it('the client side survives a garbage-speaking "server" with UNAVAILABLE, not a crash', async () => {
    const { createServer } = await import('node:net');
    const liar = createServer((socket) => {
      socket.resume(); // read (and drop) what the client says, so its close is seen
      socket.end(Buffer.alloc(100, 0xab));
    });
    await new Promise<void>((resolve) => liar.listen(0, '127.0.0.1', resolve));
    const address = liar.address();
    assert.ok(address !== null && typeof address !== 'string');
    const client = newClient(`127.0.0.1:${address.port}`);
    try {
      await assert.rejects(client.call(CoreService.methods.echo, {}), (err: unknown) => {
        const e = err as { code?: string; message?: string };
        return e.code === 'UNAVAILABLE' && /bad frame magic/.test(e.message ?? '');
      });
    } finally {
      await client.close();
      await new Promise((resolve) => liar.close(resolve));
    }
  });
});
