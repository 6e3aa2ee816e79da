import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';
import { crc32c } from '../../../daemons/common/crc32c.js';
import { mulberry32 } from '../../helpers/rng.js';
import { ChunkModel } from './crash-model.js';
import { chunkId, openTestEngine, tempDisk } from './helpers.js';

// SIGKILL at random moments during a stream of updates and commits, then reopen: every chunk must
// be at its last acknowledged commit (or the one after it, if the kill landed between the commit
// and its print), byte-exact, and a pending version must hold exactly the next version's bytes.
const ROUNDS = 15;
const CHUNKS = 8;
const SEED = 20_261_122;
const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'crash-child.js');

interface RoundOutcome {
  printed: Map<number, number>;
  commitLines: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

function runUntilKilled(dir: string, round: number, delayMs: number): Promise<RoundOutcome> {
  return new Promise((resolve, reject) => {
    const proc = spawn(
      process.execPath,
      [child, dir, String(SEED), String(CHUNKS), String(round)],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const printed = new Map<number, number>();
    let commitLines = 0;
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    const safety = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    createInterface({ input: proc.stdout }).on('line', (line) => {
      if (line === 'ready') {
        timer = setTimeout(() => proc.kill('SIGKILL'), delayMs);
        return;
      }
      const [tag, chunk, version] = line.split(' ');
      if (tag !== 'C') return;
      printed.set(Number(chunk), Number(version));
      commitLines++;
    });
    proc.on('error', reject);
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(safety);
      resolve({ printed, commitLines, code, signal, stderr });
    });
  });
}

it(`survives ${ROUNDS} SIGKILLs mid-stream with every chunk intact`, async () => {
  const disk = tempDisk('crash');
  const rng = mulberry32(SEED);
  const models = Array.from({ length: CHUNKS }, (_, i) => new ChunkModel(SEED, i));
  const acknowledged = new Array<number>(CHUNKS).fill(0);
  let pendingSeen = 0;
  let commits = 0;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const delay = 20 + Math.floor(rng() * 400);
      const outcome = await runUntilKilled(disk.dir, round, delay);
      assert.equal(
        outcome.signal,
        'SIGKILL',
        `round ${round}: child ended by itself: ${outcome.stderr}`,
      );
      for (const [chunk, version] of outcome.printed) {
        acknowledged[chunk] = Math.max(acknowledged[chunk] ?? 0, version);
      }
      commits += outcome.commitLines;
      const engine = await openTestEngine(disk.dir);
      try {
        for (let i = 0; i < CHUNKS; i++) {
          const id = chunkId(1, i);
          const meta = engine.meta(1, id);
          const ack = acknowledged[i] ?? 0;
          const at = `round ${round} chunk ${i}`;
          if (!meta) {
            assert.equal(ack, 0, `${at}: acknowledged v${ack} is gone`);
            continue;
          }
          assert.ok(
            meta.commitVer >= ack,
            `${at}: commitVer ${meta.commitVer} < acknowledged ${ack}`,
          );
          assert.ok(meta.commitVer <= ack + 1, `${at}: commitVer ${meta.commitVer} from nowhere`);
          acknowledged[i] = meta.commitVer;
          const expected = models[i]!.content(meta.commitVer);
          const [read] = await engine.read([
            { chainId: 1, chunkId: id, offset: 0, length: 1 << 20 },
          ]);
          if (read instanceof Error || read === undefined) throw read ?? new Error('no read');
          assert.ok(read.data.equals(expected), `${at}: committed v${meta.commitVer} bytes differ`);
          assert.equal(meta.checksum, crc32c(expected), `${at}: checksum`);
          if (meta.updateVer !== meta.commitVer) {
            pendingSeen++;
            assert.equal(meta.updateVer, meta.commitVer + 1, `${at}: pending version`);
            const next = models[i]!.content(meta.updateVer);
            assert.ok((await engine.readPending(1, id)).equals(next), `${at}: pending bytes`);
            assert.equal(meta.pendingChecksum, crc32c(next));
          }
        }
      } finally {
        await engine.close();
      }
    }
    assert.ok(commits > ROUNDS * CHUNKS, `only ${commits} commits ran: the test proved little`);
    console.log(
      `crash test: ${ROUNDS} kills, ${commits} acknowledged commits, ${pendingSeen} pending versions found after a kill`,
    );
  } finally {
    disk.cleanup();
  }
});
