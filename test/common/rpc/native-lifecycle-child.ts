// Run by native-transport.test.ts in its own process (with --expose-gc): serves and calls over
// the native transport, closes everything, and prints one JSON line of what it saw. The parent
// checks the process then exits on its own, which proves no socket or handle was left open.
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  nativeTransport,
  stopNativeTransport,
} from '../../../daemons/common/rpc/native-transport.js';
import { CoreService } from '../../../daemons/common/rpc/index.js';
import { newClient, startServer, TestService } from './helpers.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');
const collect = async () => {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 10)); // FinalizationRegistry callbacks run
  }
};
const fds = () => readdirSync('/proc/self/fd').length;
const threads = () => readdirSync('/proc/self/task').length;

const fdsBefore = fds();
const threadsBefore = threads();
const unixPath = path.join(mkdtempSync(path.join(tmpdir(), 'threefs-native-')), 'rpc.sock');
const fixture = await startServer({ transport: 'native', unixPath });
const client = newClient(fixture.server.address, { transport: 'native' });
const unixClient = newClient(fixture.server.unixAddress, { transport: 'native' });

// Replies kept by the caller must never change, however many blocks are recycled meanwhile.
// (In functions: a suspended async frame keeps its locals, which would pin a block.)
async function keepSome(kept: { sent: Buffer; received: Buffer }[]): Promise<void> {
  for (let i = 0; i < 5; i++) {
    const sent = randomBytes(256 * 1024);
    const reply = await client.call(CoreService.methods.echo, {}, { payload: sent });
    kept.push({ sent, received: reply.payload ?? Buffer.alloc(0) });
  }
}
async function churn(): Promise<void> {
  for (let round = 0; round < 20; round++) {
    const calls = Array.from({ length: 8 }, () => {
      const sent = randomBytes(256 * 1024 + round);
      return client
        .call(CoreService.methods.echo, {}, { payload: sent })
        .then((reply) => assert.ok(reply.payload?.equals(sent), 'echo returns the same bytes'));
    });
    await Promise.all(calls);
    await collect();
  }
}
async function keptSurviveChurn(): Promise<boolean> {
  const kept: { sent: Buffer; received: Buffer }[] = [];
  await keepSome(kept);
  await churn();
  return kept.every(({ sent, received }) => received.equals(sent));
}
const keptIntact = await keptSurviveChurn();
await unixClient.call(CoreService.methods.echo, { message: 'x' });
await collect();
const pool = nativeTransport().payloadPool;

await client.close();
await unixClient.close();
await fixture.close();

// stopNativeTransport() with a connection open: the call in flight fails, every socket closes.
const second = await startServer({ transport: 'native' });
const late = newClient(second.server.address, { transport: 'native' });
await late.call(CoreService.methods.echo, {});
const cut = late.call(TestService.methods.sleep, { ms: 5000 }).then(
  () => 'replied',
  (err: { code?: string }) => err.code,
);
await new Promise((resolve) => setTimeout(resolve, 20));
stopNativeTransport();
const cutOutcome = await cut;
await late.close();
await second.server.close(100);
await new Promise((resolve) => setTimeout(resolve, 50));
console.log(
  JSON.stringify({
    fdsBefore,
    fdsAfter: fds(),
    threadsBefore,
    threadsAfter: threads(),
    openSockets: nativeTransport().openSockets,
    keptIntact,
    pool,
    cutOutcome,
  }),
);
