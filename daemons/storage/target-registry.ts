// The targets this node holds: which disk each lives on, its identity file, and its local state.
// Targets are created by mgmtd (admin create-targets); this node learns of them from routing info
// and lays out `<disk>/targets/<targetId>/target.json` the first time it sees one. The identity
// file guards against a disk moved to the wrong slot or another cluster's disk.
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { writeFileDurably } from '../common/durable-files.js';
import { ThreeFsError } from '../common/errors.js';
import type { RoutingInfo } from '../common/routing.js';
import type { ChunkStore } from './chunk-store.js';
import {
  type LocalEvent,
  type LocalTarget,
  nextLocalTarget,
  startingTarget,
} from './local-state.js';

const Identity = z.object({
  clusterId: z.string(),
  targetId: z.number().int().positive(),
  chainId: z.number().int().positive(),
  nodeId: z.number().int().positive(),
  diskIndex: z.number().int().min(0),
});
type Identity = z.infer<typeof Identity>;

export interface HeldTarget extends Identity {
  store: ChunkStore;
  state: LocalTarget;
}

export class TargetRegistry {
  private readonly targets = new Map<number, HeldTarget>();
  private readonly byChain = new Map<number, HeldTarget>();

  constructor(
    private readonly clusterId: string,
    private readonly nodeId: number,
    private readonly disks: readonly string[],
    private readonly stores: readonly ChunkStore[],
  ) {}

  get all(): HeldTarget[] {
    return [...this.targets.values()];
  }

  byChainId(chainId: number): HeldTarget | undefined {
    return this.byChain.get(chainId);
  }

  get(targetId: number): HeldTarget | undefined {
    return this.targets.get(targetId);
  }

  /** Adopts every target routing assigns to this node; returns the ones new to this process. */
  syncWithRouting(routing: RoutingInfo): HeldTarget[] {
    const added: HeldTarget[] = [];
    for (const t of routing.targets) {
      if (t.nodeId !== this.nodeId || this.targets.has(t.targetId)) continue;
      const store = this.stores[t.diskIndex];
      const disk = this.disks[t.diskIndex];
      if (!store || !disk) {
        throw new ThreeFsError(
          'FAILED_PRECONDITION',
          `target ${t.targetId} is on disk ${t.diskIndex}, but this node has ${this.disks.length} disks`,
        );
      }
      const identity = this.ensureIdentity(disk, {
        clusterId: this.clusterId,
        targetId: t.targetId,
        chainId: t.chainId,
        nodeId: this.nodeId,
        diskIndex: t.diskIndex,
      });
      const held: HeldTarget = { ...identity, store, state: startingTarget };
      this.targets.set(t.targetId, held);
      this.byChain.set(t.chainId, held);
      added.push(held);
    }
    return added;
  }

  /** Applies a local-state event to one target; returns whether its state changed. */
  apply(target: HeldTarget, event: LocalEvent): boolean {
    const next = nextLocalTarget(target.state, event);
    if (next === target.state) return false;
    target.state = next;
    return true;
  }

  private ensureIdentity(disk: string, expected: Identity): Identity {
    const dir = path.join(disk, 'targets', String(expected.targetId));
    const file = path.join(dir, 'target.json');
    let text: string | undefined;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text === undefined) {
      mkdirSync(dir, { recursive: true });
      writeFileDurably(file, `${JSON.stringify(expected, null, 2)}\n`);
      return expected;
    }
    const found = Identity.safeParse(JSON.parse(text));
    if (!found.success)
      throw new ThreeFsError('FAILED_PRECONDITION', `${file} is damaged: ${found.error.message}`);
    for (const key of Object.keys(expected) as Array<keyof Identity>) {
      if (found.data[key] !== expected[key]) {
        throw new ThreeFsError(
          'FAILED_PRECONDITION',
          `${file} says ${key}=${found.data[key]} but routing says ${expected[key]}: wrong disk or another cluster's disk`,
        );
      }
    }
    return found.data;
  }
}
