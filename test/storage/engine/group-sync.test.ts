// GroupSync rows: a request is answered only by a round that started after it, requests that
// arrive during a round share the next one, each file of a round is synced once, a failed file
// fails only its own waiters, and the queue is bounded.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ThreeFsError } from '../../../daemons/common/errors.js';
import { GroupSync } from '../../../daemons/storage/engine/group-sync.js';

/** A syncFiles whose rounds the test completes by hand, recording what each round synced. */
function manualSyncs() {
  const rounds: Array<{ fds: number[]; finish: (results?: number[]) => void }> = [];
  const syncFiles = (fds: readonly number[]) =>
    new Promise<number[]>((resolve, reject) => {
      rounds.push({
        fds: [...fds],
        finish: (results) => (results ? resolve(results) : reject(new Error('disk gone'))),
      });
    });
  return { rounds, syncFiles };
}

const failure = (fd: number, errno: number) =>
  new ThreeFsError('UNAVAILABLE', `fdatasync of ${fd} failed: ${errno}`);
const tick = () => new Promise((resolve) => setImmediate(resolve));

test('the first request starts a round at once, with its file', async () => {
  const { rounds, syncFiles } = manualSyncs();
  const syncs = new GroupSync(syncFiles, 100, failure);
  const done = syncs.sync(7);
  await tick();
  assert.deepEqual(
    rounds.map((r) => r.fds),
    [[7]],
  );
  rounds[0]!.finish([0]);
  await done;
  assert.deepEqual(syncs.stats, { rounds: 1, requests: 1 });
});

test('requests made during a round wait for the next one, which syncs each file once', async () => {
  const { rounds, syncFiles } = manualSyncs();
  const syncs = new GroupSync(syncFiles, 100, failure);
  let firstDone = false;
  const first = syncs.sync(1).then(() => (firstDone = true));
  await tick();
  const later = [syncs.sync(2), syncs.sync(3), syncs.sync(2), syncs.sync(1)];
  let laterDone = 0;
  for (const p of later) void p.then(() => laterDone++);
  await tick();
  assert.equal(rounds.length, 1, 'no second round while the first runs');
  rounds[0]!.finish([0]);
  await first;
  assert.equal(firstDone, true);
  await tick();
  assert.equal(laterDone, 0, 'the first round covers only the request made before it');
  assert.equal(rounds.length, 2);
  assert.deepEqual([...rounds[1]!.fds].sort(), [1, 2, 3]);
  rounds[1]!.finish([0, 0, 0]);
  await Promise.all(later);
  assert.deepEqual(syncs.stats, { rounds: 2, requests: 5 });
});

test('a failed file fails only the requests for it; the others succeed', async () => {
  const { rounds, syncFiles } = manualSyncs();
  const syncs = new GroupSync(syncFiles, 100, failure);
  const blocker = syncs.sync(9);
  await tick();
  const ok = syncs.sync(4);
  const bad = syncs.sync(5);
  const badToo = syncs.sync(5);
  rounds[0]!.finish([0]);
  await blocker;
  await tick();
  const order = rounds[1]!.fds;
  rounds[1]!.finish(order.map((fd) => (fd === 5 ? -5 : 0)));
  await ok;
  await assert.rejects(bad, /fdatasync of 5 failed: -5/);
  await assert.rejects(badToo, /fdatasync of 5 failed: -5/);
});

test('a round that throws fails its waiters, and later rounds still run', async () => {
  const { rounds, syncFiles } = manualSyncs();
  const syncs = new GroupSync(syncFiles, 100, failure);
  const doomed = syncs.sync(1);
  await tick();
  rounds[0]!.finish(undefined);
  await assert.rejects(doomed, /disk gone/);
  const next = syncs.sync(1);
  await tick();
  assert.equal(rounds.length, 2);
  rounds[1]!.finish([0]);
  await next;
});

test('a short result list is an internal error, never a silent success', async () => {
  const { rounds, syncFiles } = manualSyncs();
  const syncs = new GroupSync(syncFiles, 100, failure);
  const blocker = syncs.sync(1);
  await tick();
  const a = syncs.sync(2);
  const b = syncs.sync(3);
  rounds[0]!.finish([0]);
  await blocker;
  await tick();
  rounds[1]!.finish([0]);
  await assert.rejects(a, (err: unknown) => err instanceof ThreeFsError && err.code === 'INTERNAL');
  await assert.rejects(b, (err: unknown) => err instanceof ThreeFsError && err.code === 'INTERNAL');
});

test('past the bound, requests fail fast with RESOURCE_EXHAUSTED', async () => {
  const { rounds, syncFiles } = manualSyncs();
  const syncs = new GroupSync(syncFiles, 2, failure);
  const running = syncs.sync(1);
  await tick();
  const queued = [syncs.sync(1), syncs.sync(2)];
  await assert.rejects(
    syncs.sync(3),
    (err: unknown) => err instanceof ThreeFsError && err.code === 'RESOURCE_EXHAUSTED',
  );
  rounds[0]!.finish([0]);
  await running;
  await tick();
  rounds[1]!.finish(rounds[1]!.fds.map(() => 0));
  await Promise.all(queued);
  assert.throws(() => new GroupSync(syncFiles, 0, failure), /positive count/);
});
