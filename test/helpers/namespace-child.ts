// The local disk as another user, for the namespace comparison (OtherUserSide): the parent spawns
// this with that uid and gid; each line in is {root, op}, each line out the operation's outcome.
import { createInterface } from 'node:readline';
import { DirectorySide, type Op } from './namespace-ops.js';

for await (const line of createInterface({ input: process.stdin })) {
  const { root, op } = JSON.parse(line) as { root: string; op: Op };
  process.stdout.write(`${JSON.stringify(new DirectorySide(root).apply(op))}\n`);
}
