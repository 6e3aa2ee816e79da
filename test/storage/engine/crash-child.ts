// The process the crash test kills: it resolves pending versions left by the previous kill
// (commit or abort, seeded), then runs the deterministic update stream on every chunk at once,
// printing "C <chunk> <version>" after each commit is durable. Odd chunks apply and commit in one
// step (as a chain's last replica does), even chunks update then commit. stdout to a pipe is synchronous on
// Linux, so a printed commit was acknowledged before the kill. Bounded in ops and time.
import { ChunkModel } from './crash-model.js';
import { chunkId, openTestEngine } from './helpers.js';

const [dir, seedArg, chunksArg, roundArg] = process.argv.slice(2);
if (!dir || !seedArg || !chunksArg || !roundArg) {
  console.error('usage: crash-child <dir> <seed> <chunks> <round>');
  process.exit(2);
}
const seed = Number(seedArg);
const chunks = Number(chunksArg);
const round = Number(roundArg);
const CHAIN = 1;
const MAX_OPS_PER_CHUNK = 2_000;
const deadline = Date.now() + 20_000;

const engine = await openTestEngine(dir, { extendBytes: 1 << 20 });
await Promise.all(
  Array.from({ length: chunks }, async (_, i) => {
    const id = chunkId(1, i);
    const meta = engine.meta(CHAIN, id);
    if (meta && meta.updateVer !== meta.commitVer) {
      if ((round + i) % 2 === 0) {
        await engine.commit(CHAIN, id, meta.updateVer, 1);
        process.stdout.write(`C ${i} ${meta.updateVer}\n`);
      } else {
        await engine.abortPending(CHAIN, id);
      }
    }
  }),
);
process.stdout.write('ready\n');
await Promise.all(
  Array.from({ length: chunks }, async (_, i) => {
    const model = new ChunkModel(seed, i);
    const id = chunkId(1, i);
    for (let n = 0; n < MAX_OPS_PER_CHUNK && Date.now() < deadline; n++) {
      const version = (engine.meta(CHAIN, id)?.commitVer ?? 0) + 1;
      if (i % 2 === 1) {
        // The last replica's path: applied and committed in one durable step.
        await engine.update({ ...model.request(CHAIN, id, version), commitChainVer: 1 });
      } else {
        await engine.update(model.request(CHAIN, id, version));
        await engine.commit(CHAIN, id, version, 1);
      }
      process.stdout.write(`C ${i} ${version}\n`);
    }
  }),
);
await engine.close();
