import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { crc32c } from '../../../daemons/common/crc32c.js';
import { ThreeFsError } from '../../../daemons/common/errors.js';
import { CoreService, RpcClientPool } from '../../../daemons/common/rpc/index.js';
import {
  CLUSTER,
  captureLog,
  newClient,
  startServer,
  TestService,
  type TestServer,
  waitFor,
} from './helpers.js';

describe('rpc calls over TCP', () => {
  let fixture: TestServer;
  before(async () => {
    fixture = await startServer();
  });
  after(async () => {
    await fixture.close();
  });

  it('echoes a body and a payload, the payload byte for byte', async () => {
    const client = newClient(fixture.server.address);
    try {
      const payload = Buffer.alloc(3 * 1024 * 1024 + 7);
      for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;
      const reply = await client.call(CoreService.methods.echo, { message: 'hello' }, { payload });
      assert.deepEqual(reply.body, { message: 'hello' });
      assert.ok(reply.payload !== undefined && payload.equals(reply.payload));
      const empty = await client.call(CoreService.methods.echo, {}, { payload: Buffer.alloc(0) });
      assert.equal(empty.payload?.length, 0, 'an empty payload is still a payload');
      const none = await client.call(CoreService.methods.echo, {});
      assert.equal(none.payload, undefined);
      assert.equal(none.body.message, '', 'missing field takes its default');
    } finally {
      await client.close();
    }
  });

  it('a known payload CRC32C stands in for reading the payload, and a wrong one is refused', async () => {
    const client = newClient(fixture.server.address);
    try {
      const payload = Buffer.alloc(1024 * 1024 + 3);
      for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
      const crc = crc32c(payload);
      const sent = await client.call(
        TestService.methods.checksum,
        { replyCrc: crc },
        { payload, payloadCrc: crc },
      );
      assert.equal(sent.body.payloadCrc, crc, 'the handler learns the CRC from the frame');
      assert.ok(sent.payload?.equals(payload));
      const none = await client.call(TestService.methods.checksum, {});
      assert.equal(none.body.payloadCrc, 0);
      // A wrong CRC makes a frame whose data CRC does not match: the receiver drops it.
      await assert.rejects(
        client.call(TestService.methods.checksum, {}, { payload, payloadCrc: crc ^ 1 }),
      );
      await assert.rejects(
        client.call(TestService.methods.checksum, { replyCrc: crc ^ 1 }, { payload }),
      );
      const again = await client.call(TestService.methods.checksum, {}, { payload });
      assert.equal(again.body.payloadCrc, crc, 'the client reconnects and carries on');
    } finally {
      await client.close();
    }
  });

  it('keeps many calls in flight on one connection and matches out-of-order replies', async () => {
    const client = newClient(fixture.server.address);
    try {
      // Later calls sleep less, so replies come back in roughly reverse order.
      const count = 200;
      const calls = Array.from({ length: count }, (_, i) =>
        client.call(TestService.methods.sleep, { ms: Math.floor((count - i) / 10), tag: i }),
      );
      await waitFor(() => client.inFlightCalls > 1, 2000, 'several calls in flight');
      const replies = await Promise.all(calls);
      replies.forEach((reply, i) => assert.equal(reply.body.tag, i));
      assert.equal(fixture.server.connectionCount, 1, 'all calls shared one connection');
    } finally {
      await client.close();
    }
  });

  it('rethrows a handler ThreeFsError with its code, message and details', async () => {
    const client = newClient(fixture.server.address);
    try {
      await assert.rejects(
        client.call(TestService.methods.fail, { code: 'NOT_FOUND', message: 'no such inode 7' }),
        (err: unknown) =>
          err instanceof ThreeFsError &&
          err.code === 'NOT_FOUND' &&
          err.message === 'no such inode 7' &&
          err.details?.where === 'test',
      );
    } finally {
      await client.close();
    }
  });

  it('turns a plain throw into INTERNAL and logs its stack', async () => {
    const client = newClient(fixture.server.address);
    try {
      await assert.rejects(
        client.call(TestService.methods.fail, { code: 'x', message: 'boom', plain: true }),
        (err: unknown) =>
          err instanceof ThreeFsError && err.code === 'INTERNAL' && /boom/.test(err.message),
      );
      const line = fixture.logs.lines.find(
        (l) => l.level === 'error' && /Test\.fail threw/.test(String(l.msg)),
      );
      assert.ok(line, 'an error line was logged');
      assert.match(String((line.err as { stack: string }).stack), /TypeError: boom/);
      assert.equal(typeof line.requestId, 'number');
    } finally {
      await client.close();
    }
  });

  it('fails with DEADLINE_EXCEEDED and the server handler sees its signal abort', async () => {
    const client = newClient(fixture.server.address);
    try {
      const started = Date.now();
      await assert.rejects(
        client.call(TestService.methods.hang, { key: 'deadline' }, { timeoutMs: 100 }),
        (err: unknown) => err instanceof ThreeFsError && err.code === 'DEADLINE_EXCEEDED',
      );
      assert.ok(Date.now() - started < 2000);
      await waitFor(() => fixture.aborts.has('deadline'), 2000, 'handler abort');
      // Either the server's own deadline timer or the client's cancel frame gets there first.
      assert.ok(
        ['DEADLINE_EXCEEDED', 'CANCELLED'].includes(fixture.aborts.get('deadline') as string),
      );
    } finally {
      await client.close();
    }
  });

  it('cancels with an AbortSignal: CANCELLED for the caller, an aborted signal for the handler', async () => {
    const client = newClient(fixture.server.address);
    try {
      const controller = new AbortController();
      const call = client.call(
        TestService.methods.hang,
        { key: 'cancel' },
        { signal: controller.signal, timeoutMs: 0 },
      );
      await waitFor(
        () => fixture.server.peakConcurrency > 0 && client.inFlightCalls === 1,
        2000,
        'call started',
      );
      await new Promise((resolve) => setTimeout(resolve, 20));
      controller.abort();
      await assert.rejects(
        call,
        (err: unknown) => err instanceof ThreeFsError && err.code === 'CANCELLED',
      );
      await waitFor(() => fixture.aborts.has('cancel'), 2000, 'handler abort');
      assert.equal(fixture.aborts.get('cancel'), 'CANCELLED');
    } finally {
      await client.close();
    }
  });

  it('aborts running handlers when the client connection closes', async () => {
    const client = newClient(fixture.server.address);
    const call = client.call(TestService.methods.hang, { key: 'disconnect' }, { timeoutMs: 0 });
    await waitFor(() => client.isConnected && client.inFlightCalls === 1, 2000, 'connected');
    await new Promise((resolve) => setTimeout(resolve, 20));
    await client.close();
    await assert.rejects(
      call,
      (err: unknown) => err instanceof ThreeFsError && err.code === 'UNAVAILABLE',
    );
    await waitFor(() => fixture.aborts.has('disconnect'), 2000, 'handler abort');
    assert.equal(fixture.aborts.get('disconnect'), 'UNAVAILABLE');
  });

  it('exports call, byte and in-flight metrics to the given registry', async () => {
    const registry = new Registry();
    const served = await startServer({ registry });
    const client = newClient(served.server.address, { registry });
    try {
      await client.call(
        CoreService.methods.echo,
        { message: 'm' },
        { payload: Buffer.alloc(1000) },
      );
      // 256 KiB: received into the native transport's payload pool (64 KiB and up).
      await client.call(CoreService.methods.echo, {}, { payload: Buffer.alloc(256 * 1024) });
      await assert.rejects(
        client.call(TestService.methods.fail, { code: 'NOT_FOUND', message: 'x' }),
      );
      const text = await registry.metrics();
      assert.match(
        text,
        /threefs_rpc_calls_total\{side="server",service="Core",method="echo",code="OK"\} 2/,
      );
      assert.match(
        text,
        /threefs_rpc_calls_total\{side="client",service="Test",method="fail",code="NOT_FOUND"\} 1/,
      );
      assert.match(text, /threefs_rpc_in_flight\{side="client"\} 0/);
      const bytesIn = /threefs_rpc_bytes_total\{side="server",direction="in"\} (\d+)/.exec(text);
      assert.ok(bytesIn && Number(bytesIn[1]) > 1000);
      assert.match(
        text,
        /threefs_rpc_call_duration_seconds_count\{side="server",service="Core",method="echo"\} 2/,
      );
      const poolTotal = /threefs_rpc_payload_pool_bytes\{state="total"\} (\d+)/.exec(text);
      assert.ok(poolTotal && Number(poolTotal[1]) >= 256 * 1024, 'the payload pool is reported');
      assert.match(text, /threefs_rpc_payload_pool_bytes\{state="in_use"\} \d+/);
    } finally {
      await client.close();
      await served.close();
    }
  });

  it('bounds queued calls: RESOURCE_EXHAUSTED past maxInFlight + maxQueued', async () => {
    const client = newClient(fixture.server.address, { maxInFlight: 2, maxQueued: 3 });
    try {
      const calls = Array.from({ length: 5 }, (_, i) =>
        client.call(TestService.methods.sleep, { ms: 50, tag: i }),
      );
      assert.equal(client.inFlightCalls, 2);
      assert.equal(client.queuedCalls, 3);
      await assert.rejects(
        client.call(TestService.methods.sleep, { ms: 1 }),
        (err: unknown) => err instanceof ThreeFsError && err.code === 'RESOURCE_EXHAUSTED',
      );
      const replies = await Promise.all(calls);
      assert.deepEqual(
        replies.map((r) => r.body.tag),
        [0, 1, 2, 3, 4],
      );
    } finally {
      await client.close();
    }
  });

  it('pools one client per address', async () => {
    const pool = new RpcClientPool({ clusterId: CLUSTER, log: captureLog().log, maxClients: 2 });
    try {
      const a = pool.get(fixture.server.address);
      assert.equal(pool.get(fixture.server.address), a);
      const reply = await a.call(CoreService.methods.echo, { message: 'pooled' });
      assert.equal(reply.body.message, 'pooled');
      pool.get('127.0.0.1:1');
      pool.get('127.0.0.1:2');
      assert.equal(pool.size, 2, 'the least recently used idle client was evicted');
    } finally {
      await pool.close();
    }
  });
});

describe('rpc calls over a unix socket', () => {
  it('serves the same services on a unix socket beside TCP', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'threefs-rpc-'));
    const unixPath = path.join(dir, 'rpc.sock');
    const fixture = await startServer({ unixPath });
    const client = newClient(`unix:${unixPath}`);
    try {
      const payload = Buffer.alloc(256 * 1024, 7);
      const reply = await client.call(CoreService.methods.echo, { message: 'local' }, { payload });
      assert.equal(reply.body.message, 'local');
      assert.ok(reply.payload?.equals(payload));
    } finally {
      await client.close();
      await fixture.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
