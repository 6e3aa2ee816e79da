// A second process for the conformance suite: it opens the same store as the test (same LMDB
// directory, or the same FoundationDB cluster) and plays one role, talking to the parent through
// stdout/stdin lines. Modes:
//   skew <rounds>   doctors on call: each round read both doctors' keys, report `read R`, wait for
//                   `go R`, then go off call if both are on; report `committed R` or `conflict R`,
//                   and after a conflict retry with run() (which must then see the other's write).
//   commit-loop     commit transactions of 3 keys each, printing `committed I` after each commit.
//   stage           write keys without committing, print `staged`, then wait to be killed.
import { createInterface } from 'node:readline';
import { hasCode } from '../../../daemons/common/errors.js';
import { openKvStore } from '../../../daemons/common/kv/open.js';
import type { KvConfig } from '../../../daemons/common/kv/config.js';
import { encodeKey } from '../../../daemons/common/kv/keys.js';
import { doctorKey } from './harness.js';

interface ChildArgs {
  mode: 'skew' | 'commit-loop' | 'stage';
  config: KvConfig;
  prefix: string; // hex
  doctor?: 0 | 1;
  rounds?: number;
}

const MAX_LOOP_COMMITS = 100_000; // the parent kills us long before this
const ON = Buffer.from([1]);
const OFF = Buffer.from([0]);

const args = JSON.parse(process.argv[2] ?? '{}') as ChildArgs;
const prefix = Buffer.from(args.prefix, 'hex');
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

async function expectLine(expected: string): Promise<void> {
  const next = await lines.next();
  if (next.done === true || next.value !== expected) {
    throw new Error(`expected '${expected}' from the parent, got '${String(next.value)}'`);
  }
}

async function main(): Promise<void> {
  const store = await openKvStore(args.config);
  if (args.mode === 'skew') {
    const me = args.doctor ?? 0;
    for (let round = 0; round < (args.rounds ?? 0); round++) {
      const tx = store.createTransaction();
      const a = await tx.get(doctorKey(prefix, round, 0));
      const b = await tx.get(doctorKey(prefix, round, 1));
      console.log(`read ${round}`);
      await expectLine(`go ${round}`);
      if (a?.[0] === 1 && b?.[0] === 1) tx.set(doctorKey(prefix, round, me), OFF);
      try {
        await tx.commit();
        console.log(`committed ${round}`);
      } catch (err) {
        if (!hasCode(err, 'TXN_CONFLICT')) throw err;
        console.log(`conflict ${round}`);
        await store.run(async (retry) => {
          const a2 = await retry.get(doctorKey(prefix, round, 0));
          const b2 = await retry.get(doctorKey(prefix, round, 1));
          if (a2?.[0] === 1 && b2?.[0] === 1) retry.set(doctorKey(prefix, round, me), OFF);
        });
      }
      await expectLine(`next ${round}`);
    }
  } else if (args.mode === 'commit-loop') {
    for (let i = 0; i < MAX_LOOP_COMMITS; i++) {
      await store.run(async (tx) => {
        for (const part of ['a', 'b', 'c']) tx.set(encodeKey(prefix, 'loop', i, part), ON);
      });
      console.log(`committed ${i}`);
    }
  } else {
    const tx = store.createTransaction();
    for (let i = 0; i < 100; i++) tx.set(encodeKey(prefix, 'staged', i), ON);
    console.log('staged');
    await new Promise(() => setInterval(() => undefined, 1_000)); // never commits
  }
  await store.close();
  process.exit(0);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
